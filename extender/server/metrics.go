package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/plexus-project/plexus/extender"
)

type metrics struct {
	latency  *prometheus.HistogramVec
	filtered *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "plexus_extender_request_duration_seconds",
			Help:    "Time to answer one scheduler call, decoding and encoding included, by verb (filter, prioritize, bind).",
			Buckets: []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, []string{"verb"}),
		filtered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_extender_filtered_nodes_total",
			Help: "Nodes the filter dropped, by reason (network-not-on-node, vf-free, ip-pool-full, ...).",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.latency, m.filtered} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range extender.Reasons() {
		m.filtered.WithLabelValues(string(r))
	}
	m.latency.WithLabelValues("filter")
	m.latency.WithLabelValues("prioritize")
	m.latency.WithLabelValues("bind")
	return m, nil
}
