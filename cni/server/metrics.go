package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plexus-project/plexus/cni/attach"
)

// Metrics are the CNI server's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	attach   *prometheus.HistogramVec
	requests *prometheus.HistogramVec
	failures *prometheus.CounterVec
	inflight prometheus.Gauge
	queued   prometheus.Gauge
}

var _ attach.Metrics = (*Metrics)(nil)

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	m := &Metrics{
		attach: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "plexus_cni_attach_duration_seconds",
			Help: "Time of one delegate ADD, by the delegate's plugin type(s).", Buckets: buckets}, []string{"delegate_type"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "plexus_cni_request_duration_seconds",
			Help: "Time of one CNI call from the shim, queueing included, by command and result.", Buckets: buckets}, []string{"command", "result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plexus_cni_failures_total",
			Help: "Failed CNI calls and delegate ADDs, by command and reason."}, []string{"command", "reason"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "plexus_cni_requests_in_flight", Help: "CNI calls being worked on."}),
		queued:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "plexus_cni_requests_queued", Help: "CNI calls waiting for a slot."}),
	}
	reg.MustRegister(m.attach, m.requests, m.failures, m.inflight, m.queued)
	return m
}

// Attached observes one delegate ADD.
func (m *Metrics) Attached(delegateType string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.attach.WithLabelValues(delegateType).Observe(d.Seconds())
}

// Failed counts a failure.
func (m *Metrics) Failed(command, reason string) { m.failed(command, reason) }

func (m *Metrics) failed(command, reason string) {
	if m == nil {
		return
	}
	m.failures.WithLabelValues(command, reason).Inc()
}

func (m *Metrics) observeRequest(command string, d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "success"
	if err != nil {
		result = "error"
	}
	m.requests.WithLabelValues(command, result).Observe(d.Seconds())
}

func (m *Metrics) inFlight(delta float64) {
	if m != nil {
		m.inflight.Add(delta)
	}
}

func (m *Metrics) setQueued(n int64) {
	if m != nil {
		m.queued.Set(float64(n))
	}
}
