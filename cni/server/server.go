package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/go-logr/logr"

	"github.com/plexus-project/plexus/cni/attach"
	"github.com/plexus-project/plexus/cni/wire"
)

// Handler does the CNI commands (*attach.Attacher is one).
type Handler interface {
	Add(ctx context.Context, c *attach.Call) ([]byte, error)
	Del(ctx context.Context, c *attach.Call) error
	Check(ctx context.Context, c *attach.Call) error
	GC(ctx context.Context, c *attach.Call) error
	Status(ctx context.Context) error
}

var _ Handler = (*attach.Attacher)(nil)

// Options configure a Server.
type Options struct {
	// SocketDir holds the socket (default wire.DefaultSocketDir); created 0700.
	SocketDir string
	// NodeName is this node, for messages.
	NodeName string
	// MaxInFlight bounds the calls worked on at once (default 32).
	MaxInFlight int
	// MaxQueued bounds the ADD and CHECK calls waiting for a slot (default 512); beyond it they
	// fail at once with "try again later". DEL, GC and STATUS are never refused.
	MaxQueued int
	// RequestTimeout bounds one call, queueing included (default 170s, under the shim's 3m).
	RequestTimeout time.Duration
	// Ready reports whether the server can attach (caches synced, cluster network known).
	Ready func() error
	// ReadyWait bounds how long a call waits for Ready (default 30s).
	ReadyWait time.Duration
}

func (o *Options) setDefaults() {
	if o.SocketDir == "" {
		o.SocketDir = wire.DefaultSocketDir
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 32
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 512
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 170 * time.Second
	}
	if o.ReadyWait <= 0 {
		o.ReadyWait = 30 * time.Second
	}
	if o.Ready == nil {
		o.Ready = func() error { return nil }
	}
}

// Server serves CNI calls on a unix socket.
type Server struct {
	opts    Options
	handler Handler
	metrics *Metrics
	slots   chan struct{}
	queued  atomic.Int64
}

// New returns a Server; metrics may be nil.
func New(opts Options, handler Handler, metrics *Metrics) *Server {
	opts.setDefaults()
	return &Server{opts: opts, handler: handler, metrics: metrics, slots: make(chan struct{}, opts.MaxInFlight)}
}

// SocketPath is where the server listens.
func (s *Server) SocketPath() string { return wire.SocketPath(s.opts.SocketDir) }

// Listen creates the socket directory (root only) and the socket (0600), replacing a stale
// socket of an earlier run.
func (s *Server) Listen() (net.Listener, error) {
	if err := os.MkdirAll(s.opts.SocketDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the CNI socket directory %s: %w", s.opts.SocketDir, err)
	}
	if err := os.Chmod(s.opts.SocketDir, 0o700); err != nil {
		return nil, err
	}
	path := s.SocketPath()
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing the stale socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Serve answers calls on ln until ctx ends; then it stops accepting and lets the calls in
// progress finish (the socket file goes, so the shim says the daemon is not running).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+wire.Path, s.serveCNI)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.RequestTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	_ = os.Remove(s.SocketPath())
	return err
}

func (s *Server) serveCNI(w http.ResponseWriter, r *http.Request) {
	var req wire.Request
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&req); err != nil {
		wire.WriteError(w, http.StatusBadRequest, types.NewError(types.ErrDecodingFailure, "plexus-daemon: cannot parse the shim's request", err.Error()))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
	defer cancel()
	log := logr.FromContextOrDiscard(ctx).WithValues("command", req.Command, "container", req.ContainerID)
	ctx = logr.NewContext(ctx, log)
	start := time.Now()
	out, err := s.do(ctx, &req)
	s.metrics.observeRequest(req.Command, time.Since(start), err)
	if err != nil {
		var ce *types.Error
		if !errors.As(err, &ce) {
			ce = types.NewError(types.ErrInternal, err.Error(), "")
		}
		log.V(1).Info("CNI call failed", "error", ce.Error())
		status := http.StatusInternalServerError
		if ce.Code == types.ErrTryAgainLater || ce.Code == types.ErrPluginNotAvailable {
			status = http.StatusServiceUnavailable
		}
		wire.WriteError(w, status, ce)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func (s *Server) do(ctx context.Context, req *wire.Request) ([]byte, error) {
	call := &attach.Call{Command: req.Command, ContainerID: req.ContainerID, Netns: req.Netns,
		IfName: req.IfName, Args: req.Args, Config: req.Config}
	switch req.Command {
	case "STATUS":
		if err := s.opts.Ready(); err != nil {
			return nil, types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("plexus-daemon on node %s is not ready: %v", s.opts.NodeName, err), "")
		}
		return nil, s.handler.Status(ctx)
	case "ADD", "CHECK":
		if err := s.waitReady(ctx); err != nil {
			return nil, err
		}
	case "DEL", "GC":
	default:
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("plexus-daemon: unknown CNI command %q", req.Command), "")
	}
	release, err := s.acquire(ctx, req.Command)
	if err != nil {
		return nil, err
	}
	defer release()
	switch req.Command {
	case "ADD":
		return s.handler.Add(ctx, call)
	case "DEL":
		return nil, s.handler.Del(ctx, call)
	case "CHECK":
		return nil, s.handler.Check(ctx, call)
	default:
		return nil, s.handler.GC(ctx, call)
	}
}

// acquire takes a slot, queueing for it; ADD and CHECK are refused when the queue is full.
func (s *Server) acquire(ctx context.Context, command string) (func(), error) {
	select {
	case s.slots <- struct{}{}:
	default:
		refusable := command == "ADD" || command == "CHECK"
		if n := s.queued.Add(1); refusable && n > int64(s.opts.MaxQueued) {
			s.queued.Add(-1)
			s.metrics.failed(command, "queue-full")
			return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf(
				"plexus-daemon on node %s is busy: %d calls in progress and %d queued (--cni-max-queued); the runtime retries", s.opts.NodeName, s.opts.MaxInFlight, s.opts.MaxQueued), "")
		}
		s.metrics.setQueued(s.queued.Load())
		select {
		case s.slots <- struct{}{}:
			s.metrics.setQueued(s.queued.Add(-1))
		case <-ctx.Done():
			s.metrics.setQueued(s.queued.Add(-1))
			return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("plexus-daemon on node %s: the call waited in the queue until its deadline", s.opts.NodeName), ctx.Err().Error())
		}
	}
	s.metrics.inFlight(1)
	return func() {
		s.metrics.inFlight(-1)
		<-s.slots
	}, nil
}

// waitReady waits until the server can attach, up to ReadyWait.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ReadyWait)
	defer cancel()
	for {
		err := s.opts.Ready()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("plexus-daemon on node %s is not ready yet: %v", s.opts.NodeName, err), "")
		case <-time.After(50 * time.Millisecond):
		}
	}
}
