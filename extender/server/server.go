package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"

	"github.com/plexus-project/plexus/extender"
)

// Decider makes the extender's decisions; extender.Cluster implements it.
type Decider interface {
	// Filter answers a filter call, with the nodes it dropped counted by reason.
	Filter(ctx context.Context, args *extenderv1.ExtenderArgs) (*extenderv1.ExtenderFilterResult, map[extender.Reason]int)
	// Prioritize answers a prioritize call.
	Prioritize(ctx context.Context, args *extenderv1.ExtenderArgs) (extenderv1.HostPriorityList, error)
	// Bound records the node the scheduler binds a pod to.
	Bound(uid types.UID, node string)
}

// Binder creates a pod's Binding in the API server (client-go's Pods(ns).Bind).
type Binder interface {
	Bind(ctx context.Context, binding *corev1.Binding) error
}

var _ Decider = (*extender.Cluster)(nil)

// NotReadyMessage is the error of a call that arrives before the caches have synced.
const NotReadyMessage = "plexus-extender has not finished reading the cluster (nodes, pods, NetworkAttachmentDefinitions, IP blocks) yet; the scheduler will retry the pod"

// Options configure a Server.
type Options struct {
	// Decider answers the calls; required.
	Decider Decider
	// Binder, when set, serves /bind: the scheduler hands the extender the binding, so the
	// extender learns at once which node a pod it admitted went to. Nil: no /bind.
	Binder Binder
	// Ready reports whether the caches have synced; calls fail with NotReadyMessage and /readyz
	// with 503 until it is true. Default: always ready.
	Ready func() bool
	// CertFile and KeyFile are the serving pair (HTTPS), reloaded when they change; both empty
	// means plain HTTP, which is only allowed on a loopback listener.
	CertFile, KeyFile string
	// CertPollInterval is how often the pair is re-read besides file events; default 10s.
	CertPollInterval time.Duration
	// CallTimeout bounds the work of one call; default 3s (the scheduler waits 5s by default).
	CallTimeout time.Duration
	// MaxRequestBytes bounds a call's body; default 64 MiB (5,000 whole Nodes when the scheduler
	// is not nodeCacheCapable).
	MaxRequestBytes int64
	// Registry gets the metrics; default a new registry.
	Registry *prometheus.Registry
	// MetricsFilter, when set, guards /metrics (internal/metricsauth.Filter: the API server
	// authenticates and authorizes each scraper).
	MetricsFilter func(http.Handler) http.Handler
	// Log is the logger; default logr.Discard().
	Log logr.Logger
}

func (o *Options) setDefaults() {
	if o.Ready == nil {
		o.Ready = func() bool { return true }
	}
	if o.CertPollInterval == 0 {
		o.CertPollInterval = 10 * time.Second
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = 3 * time.Second
	}
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = 64 << 20
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
}

// Server serves the extender API.
type Server struct {
	opts    Options
	certs   *certwatcher.CertWatcher
	metrics *metrics
	mux     *http.ServeMux
	// bufs holds request and answer buffers (*[]byte) between calls: a call over 5,000 nodes
	// reads and writes about 60 KB each, and what a call allocates sets how often the collector
	// runs beside the next ones.
	bufs sync.Pool
}

// maxPooled is the largest buffer kept for reuse (5,000 whole Nodes are not kept).
const maxPooled = 1 << 20

func (s *Server) buffer() *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

func (s *Server) release(b *[]byte) {
	if cap(*b) <= maxPooled {
		s.bufs.Put(b)
	}
}

// New builds a Server; it loads the key pair when one is given.
func New(opts Options) (*Server, error) {
	opts.setDefaults()
	if opts.Decider == nil {
		return nil, errors.New("server: no Decider")
	}
	if (opts.CertFile == "") != (opts.KeyFile == "") {
		return nil, errors.New("set both --tls-cert-file and --tls-key-file, or neither (plain HTTP on loopback)")
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, metrics: m, mux: http.NewServeMux()}
	if opts.CertFile != "" {
		if s.certs, err = certwatcher.New(opts.CertFile, opts.KeyFile); err != nil {
			return nil, fmt.Errorf("loading the serving key pair %s, %s: %w", opts.CertFile, opts.KeyFile, err)
		}
		s.certs.WithWatchInterval(opts.CertPollInterval)
	}
	s.mux.HandleFunc("POST /filter", s.filter)
	s.mux.HandleFunc("POST /prioritize", s.prioritize)
	if opts.Binder != nil {
		s.mux.HandleFunc("POST /bind", s.bind)
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !opts.Ready() {
			http.Error(w, NotReadyMessage, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	return s, nil
}

// Handler is the extender API, /healthz and /readyz.
func (s *Server) Handler() http.Handler { return s.mux }

// MetricsHandler serves the metrics, for the separate metrics listener, behind MetricsFilter
// when one is set.
func (s *Server) MetricsHandler() http.Handler {
	h := promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{})
	if s.opts.MetricsFilter != nil {
		return s.opts.MetricsFilter(h)
	}
	return h
}

func (s *Server) filter(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.metrics.latency.WithLabelValues("filter").Observe(time.Since(start).Seconds()) }()
	args, err := s.decode(w, r)
	if err != nil {
		writeJSON(w, &extenderv1.ExtenderFilterResult{Error: err.Error()})
		return
	}
	if !s.opts.Ready() {
		writeJSON(w, &extenderv1.ExtenderFilterResult{Error: NotReadyMessage})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.CallTimeout)
	defer cancel()
	res, stats := s.opts.Decider.Filter(ctx, args)
	for reason, n := range stats {
		s.metrics.filtered.WithLabelValues(string(reason)).Add(float64(n))
	}
	if res.Error != "" {
		s.opts.Log.Info("filter failed", "pod", podName(args), "error", res.Error)
	}
	buf := s.buffer()
	defer s.release(buf)
	b, err := appendFilterResult(*buf, res)
	if err != nil {
		writeJSON(w, &extenderv1.ExtenderFilterResult{Error: fmt.Sprintf("encoding the answer: %v", err)})
		return
	}
	*buf = b
	writeBody(w, b)
}

func (s *Server) prioritize(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.metrics.latency.WithLabelValues("prioritize").Observe(time.Since(start).Seconds()) }()
	args, err := s.decode(w, r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !s.opts.Ready() {
		http.Error(w, NotReadyMessage, http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.CallTimeout)
	defer cancel()
	list, err := s.opts.Decider.Prioritize(ctx, args)
	if err != nil {
		s.opts.Log.Info("prioritize failed", "pod", podName(args), "error", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	list = relative(list)
	if raw, ok := writePriorities(list); ok {
		writeBody(w, raw)
		return
	}
	writeJSON(w, &list)
}

func (s *Server) bind(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.metrics.latency.WithLabelValues("bind").Observe(time.Since(start).Seconds()) }()
	var args extenderv1.ExtenderBindingArgs
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&args); err != nil {
		writeJSON(w, &extenderv1.ExtenderBindingResult{Error: fmt.Sprintf("decoding the binding: %v", err)})
		return
	}
	// Recorded first: the scheduler's next filter call may come before the API server answers.
	s.opts.Decider.Bound(args.PodUID, args.Node)
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.CallTimeout)
	defer cancel()
	err := s.opts.Binder.Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: args.PodNamespace, Name: args.PodName, UID: args.PodUID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: args.Node},
	})
	if err != nil {
		s.opts.Log.Info("binding failed", "pod", args.PodNamespace+"/"+args.PodName, "node", args.Node, "error", err)
		writeJSON(w, &extenderv1.ExtenderBindingResult{Error: fmt.Sprintf("binding pod %s/%s to node %s: %v", args.PodNamespace, args.PodName, args.Node, err)})
		return
	}
	writeJSON(w, &extenderv1.ExtenderBindingResult{})
}

func (s *Server) decode(w http.ResponseWriter, r *http.Request) (*extenderv1.ExtenderArgs, error) {
	buf := s.buffer()
	defer s.release(buf)
	body := bytes.NewBuffer(*buf)
	_, err := body.ReadFrom(http.MaxBytesReader(w, r.Body, s.opts.MaxRequestBytes))
	b := body.Bytes()
	*buf = b
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fmt.Errorf("the request is larger than %d bytes: set nodeCacheCapable: true in the scheduler's extender configuration", tooBig.Limit)
		}
		return nil, fmt.Errorf("reading the extender request: %w", err)
	}
	// Everything decoded is copied out of b (strings), so b can serve the next call.
	var wire wireArgs
	if err := json.Unmarshal(b, &wire); err != nil {
		return nil, fmt.Errorf("decoding the extender request: %w", err)
	}
	return wire.args(), nil
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, fmt.Sprintf("encoding the answer: %v", err), http.StatusInternalServerError)
		return
	}
	writeBody(w, b)
}

// writeBody sends a JSON answer with its length. Without it, an answer past net/http's 4 KiB
// buffer (500 node names) goes out chunked; kube-scheduler's client stops reading at the end of
// the JSON value, before the last chunk, and so closes the connection instead of reusing it: a
// new TCP connection for most calls, on the scheduler's one scheduling thread.
func writeBody(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func podName(args *extenderv1.ExtenderArgs) string {
	if args.Pod == nil {
		return ""
	}
	return args.Pod.Namespace + "/" + args.Pod.Name
}

// Run serves ln until ctx ends, then shuts down gracefully. Without a key pair, ln must be a
// loopback address.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := newHTTPServer(s.mux, s.opts.Log)
	watchErr := make(chan error, 1)
	if s.certs != nil {
		go func() { watchErr <- s.certs.Start(logr.NewContext(ctx, s.opts.Log.WithName("certs"))) }()
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certs.GetCertificate}
		ln = tls.NewListener(ln, srv.TLSConfig)
	} else if !IsLoopback(ln.Addr()) {
		return fmt.Errorf("plain HTTP is only served on loopback, not %s: set --tls-cert-file and --tls-key-file, or --bind-address=127.0.0.1", ln.Addr())
	}
	s.opts.Log.Info("serving the scheduler extender API", "address", ln.Addr().String(), "https", s.certs != nil)
	return serve(ctx, srv, ln, watchErr)
}

// RunMetrics serves /metrics on ln until ctx ends.
func (s *Server) RunMetrics(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.MetricsHandler())
	s.opts.Log.Info("serving metrics", "address", ln.Addr().String())
	return serve(ctx, newHTTPServer(mux, s.opts.Log), ln, nil)
}

func newHTTPServer(h http.Handler, log logr.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          stdLog(log),
	}
}

func serve(ctx context.Context, srv *http.Server, ln net.Listener, watchErr chan error) error {
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case err := <-watchErr:
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("watching the serving certificate: %w", err)
		}
		<-ctx.Done()
	case <-ctx.Done():
	}
	shutdown, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutting down %s: %w", ln.Addr(), err)
	}
	return nil
}

// IsLoopback tells whether addr is a loopback address.
func IsLoopback(addr net.Addr) bool {
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// stdLog sends net/http's own messages (TLS handshake errors of probes) to the logger at V(1).
func stdLog(l logr.Logger) *log.Logger {
	return log.New(logWriter{l.V(1)}, "", 0)
}

type logWriter struct{ log logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info(strings.TrimSpace(string(p)))
	return len(p), nil
}

var _ io.Writer = logWriter{}
