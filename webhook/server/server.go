package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/plexus-project/plexus/webhook"
)

// Options configure a Server.
type Options struct {
	// Host is the address to listen on; default "" (every address).
	Host string
	// Port is the HTTPS port; default 8443.
	Port int
	// CertFile and KeyFile are the PEM serving certificate (with its chain) and key; required.
	CertFile, KeyFile string
	// CertPollInterval is how often the files are re-read besides file events; default 10s.
	CertPollInterval time.Duration

	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout bound a connection's
	// request header, whole request, response and keep-alive wait, so that a slow or stalled
	// peer cannot hold a connection (and its goroutine) forever. Defaults 5s, 15s, 35s (above
	// the API server's 30s maximum webhook timeout) and 90s.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration

	// Mutator answers /mutate; Validator answers /validate. Either may be nil (404).
	Mutator, Validator admission.Handler
	// Ready reports whether the server can judge requests (the caches have synced); /readyz
	// fails until it returns true. Default: always ready.
	Ready func() bool
	// Registry gets the server's metrics and is served on /metrics; default a new registry.
	Registry *prometheus.Registry
	// MetricsFilter guards /metrics: it authenticates and authorizes the caller (TokenReview
	// and SubjectAccessReview, see MetricsAuth). Nil: /metrics is not served at all, never
	// served to anyone.
	MetricsFilter func(http.Handler) http.Handler
	// Log is the server's logger; default logr.Discard().
	Log logr.Logger
}

func (o *Options) setDefaults() {
	if o.Port == 0 {
		o.Port = 8443
	}
	if o.CertPollInterval == 0 {
		o.CertPollInterval = 10 * time.Second
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ReadHeaderTimeout, 5*time.Second)
	def(&o.ReadTimeout, 15*time.Second)
	def(&o.WriteTimeout, 35*time.Second)
	def(&o.IdleTimeout, 90*time.Second)
	if o.Ready == nil {
		o.Ready = func() bool { return true }
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
}

// Server is the webhook's HTTPS server.
type Server struct {
	opts    Options
	certs   *certs
	metrics *metrics
	mux     *http.ServeMux
}

// New loads the serving certificate and builds the routes. It fails when the first key pair
// cannot be loaded.
func New(opts Options) (*Server, error) {
	opts.setDefaults()
	if opts.CertFile == "" || opts.KeyFile == "" {
		return nil, errors.New("both --tls-cert-file and --tls-key-file are required: the API server only calls webhooks over HTTPS")
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	cw, err := newCerts(opts.CertFile, opts.KeyFile, opts.CertPollInterval, m.certReads)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, certs: cw, metrics: m, mux: http.NewServeMux()}
	s.route("/mutate", opts.Mutator)
	s.route("/validate", opts.Validator)
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	s.mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !opts.Ready() {
			http.Error(w, "the NetworkAttachmentDefinition cache has not synced yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	if opts.MetricsFilter != nil {
		s.mux.Handle("/metrics", opts.MetricsFilter(promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{})))
	}
	return s, nil
}

// Handler is the server's routes (for tests that bring their own listener).
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) route(path string, h admission.Handler) {
	if h == nil {
		return
	}
	name := path[1:]
	counted := admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		resp := h.Handle(ctx, req)
		s.metrics.decisions.WithLabelValues(name, strconv.FormatBool(resp.Allowed), webhook.ReasonOf(resp)).Inc()
		return resp
	})
	wh := &admission.Webhook{
		Handler: counted,
		WithContextFunc: func(ctx context.Context, _ *http.Request) context.Context {
			return logr.NewContext(ctx, s.opts.Log.WithName(name))
		},
	}
	latency := s.metrics.latency.WithLabelValues(name)
	s.mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		wh.ServeHTTP(w, r)
		latency.Observe(time.Since(start).Seconds())
	}))
}

// ListenAndRun listens on Host:Port and runs until ctx ends.
func (s *Server) ListenAndRun(ctx context.Context) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)))
	if err != nil {
		return fmt.Errorf("listening for admission requests: %w", err)
	}
	return s.Run(ctx, ln)
}

// Run serves HTTPS on ln until ctx ends, then shuts down gracefully. It also watches the
// certificate files.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watchErr := make(chan error, 1)
	go func() { watchErr <- s.certs.run(logr.NewContext(ctx, s.opts.Log.WithName("certs"))) }()

	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certs.GetCertificate},
		ErrorLog:          log.New(httpErrorLog{s.opts.Log.V(1)}, "", 0),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	s.opts.Log.Info("serving admission requests", "address", ln.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving admission requests: %w", err)
	case err := <-watchErr:
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("watching the serving certificate: %w", err)
		}
		<-ctx.Done()
	case <-ctx.Done():
	}
	shutdownCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// httpErrorLog sends net/http's own messages (TLS handshake errors of probes and scanners) to
// the logger at V(1), instead of the process's standard error.
type httpErrorLog struct{ log logr.Logger }

func (w httpErrorLog) Write(p []byte) (int, error) {
	w.log.Info(strings.TrimSpace(string(p)))
	return len(p), nil
}
