package deviceplugin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/plexus-project/plexus/internal/metricsauth"
)

// status is what the probes read from the Run loop.
type status struct {
	lastLoop atomic.Int64 // unix nanoseconds of the Run loop's last turn
	ready    atomic.Bool  // every pool is registered with kubelet
}

// listen opens the probe and metrics listeners (before anything else starts, so a wrong address
// fails the start). An empty or "0" address opens none.
func (m *Manager) listen(ctx context.Context) (probes, metrics net.Listener, err error) {
	var lc net.ListenConfig
	if a := m.opts.HealthProbeBindAddress; a != "" && a != "0" {
		if probes, err = lc.Listen(ctx, "tcp", a); err != nil {
			return nil, nil, fmt.Errorf("listening for health probes on %s (--health-probe-bind-address): %w", a, err)
		}
	}
	if a := m.opts.MetricsBindAddress; a != "" && a != "0" {
		if m.metricsFilter == nil {
			closeAll(probes)
			return nil, nil, errors.New("--metrics-bind-address needs API server access to authenticate scrapers (set --kubeconfig or run in a pod), or set it to 0")
		}
		host, _, _ := net.SplitHostPort(a)
		cfg, err := metricsauth.SelfSignedTLS(host)
		if err != nil {
			closeAll(probes)
			return nil, nil, err
		}
		l, err := lc.Listen(ctx, "tcp", a)
		if err != nil {
			closeAll(probes)
			return nil, nil, fmt.Errorf("listening for metrics on %s (--metrics-bind-address): %w", a, err)
		}
		metrics = tls.NewListener(l, cfg)
	}
	return probes, metrics, nil
}

func closeAll(ls ...net.Listener) {
	for _, l := range ls {
		if l != nil {
			_ = l.Close()
		}
	}
}

// serve answers /healthz (the Run loop turns: it turns at least every health interval) and
// /readyz (every pool registered) on probes, and /metrics (authenticated and authorized) on
// metrics, until ctx ends.
func (m *Manager) serve(ctx context.Context, probes, metrics net.Listener) {
	log := logr.FromContextOrDiscard(ctx)
	stale := 10*m.opts.HealthInterval + 5*time.Second
	if probes != nil {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			if since := time.Since(time.Unix(0, m.status.lastLoop.Load())); since > stale {
				http.Error(w, fmt.Sprintf("the device plugin's loop has not turned for %s", since.Round(time.Second)), http.StatusInternalServerError)
				return
			}
			_, _ = w.Write([]byte("ok"))
		})
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !m.status.ready.Load() {
				http.Error(w, "not every pool is registered with kubelet yet", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ok"))
		})
		go serveHTTP(ctx, log, probes, mux)
	}
	if metrics != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", m.metricsFilter(promhttp.HandlerFor(m.metrics.reg, promhttp.HandlerOpts{})))
		go serveHTTP(ctx, log, metrics, mux)
	}
}

// serveHTTP serves h on l with timeouts on every phase, until ctx ends.
func serveHTTP(ctx context.Context, log logr.Logger, l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error(err, "serving", "address", l.Addr().String())
	}
}
