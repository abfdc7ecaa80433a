package deviceplugin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/plexus-project/plexus/deviceplugin/capacity"
)

// metrics are the plugin's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg         *prometheus.Registry
	vfs         *prometheus.GaugeVec
	allocations *prometheus.CounterVec
	releases    *prometheus.CounterVec
	skipped     prometheus.Gauge
	publishErrs prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		vfs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "plexus_deviceplugin_vfs",
			Help: "VFs of each pool by state: healthy (allocated or not), free (healthy and not allocated), total.",
		}, []string{"resource", "state"}),
		allocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_deviceplugin_allocated_devices_total",
			Help: "Devices handed to containers by Allocate, by resource.",
		}, []string{"resource"}),
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_deviceplugin_released_devices_total",
			Help: "Devices released (no pod holds them any more, their device-info file removed), by resource.",
		}, []string{"resource"}),
		skipped: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plexus_deviceplugin_discovery_skipped_devices",
			Help: "PFs and VFs the last discovery could not read (unreadable or hot-removed); they are in no pool.",
		}),
		publishErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plexus_deviceplugin_capacity_publish_errors_total",
			Help: "Failed writes of the Node's capacity annotation (each is retried with backoff).",
		}),
	}
	m.reg.MustRegister(m.vfs, m.allocations, m.releases, m.skipped, m.publishErrs)
	return m
}

// setCapacity sets the VF gauges from a capacity count.
func (m *metrics) setCapacity(nc capacity.NodeCapacity, totals map[string]int) {
	m.vfs.Reset()
	for name, pc := range nc.Pools {
		m.vfs.WithLabelValues(name, "healthy").Set(float64(pc.Healthy))
		m.vfs.WithLabelValues(name, "free").Set(float64(pc.Free))
		m.vfs.WithLabelValues(name, "total").Set(float64(totals[name]))
	}
}
