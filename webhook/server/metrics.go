package server

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	latency   *prometheus.HistogramVec
	decisions *prometheus.CounterVec
	certReads *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "plexus_webhook_admission_duration_seconds",
			Help:    "Time to answer one AdmissionReview, from the request read to the response written, by webhook (mutate, validate).",
			Buckets: []float64{0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
		}, []string{"webhook"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_webhook_admission_decisions_total",
			Help: "Admission decisions by webhook (mutate, validate), allowed (true, false) and reason (Injected, NoNetworks, UnknownNetwork, InUse, ...).",
		}, []string{"webhook", "allowed", "reason"}),
		certReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_webhook_certificate_reads_total",
			Help: "Reads of the serving certificate and key files, by result: loaded (a new pair in service), unchanged, error (the old pair stays).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.latency, m.decisions, m.certReads} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
