package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/plexus-project/plexus/ipam/allocator"
)

// Server answers plugin processes on one node. It serves its own node only: a request naming
// another node is refused, so a network configuration's node_name cannot make it write for
// another node, and it holds one allocator for its whole life.
type Server struct {
	node  string
	alloc *allocator.Allocator
	// IdleTimeout is how long a connection may wait for its next request, and a request or an
	// answer take to cross the socket, before it is closed (default 1m).
	IdleTimeout time.Duration
}

// NewServer returns a Server for node, writing through store. locker is the plugin's node lock
// (allocator.FileLocker on its lock_dir), so the agent's rounds and plugins in direct mode take
// turns instead of racing.
func NewServer(node string, store allocator.Store, locker allocator.Locker) *Server {
	return NewServerFor(store, locker, allocator.Options{Node: node})
}

// NewServerFor is NewServer with the allocator's options (opts.Node is the node; the cache is
// the agent's memory). With opts.Journal and opts.Holds the agent writes behind: see
// allocator's writebehind.go.
func NewServerFor(store allocator.Store, locker allocator.Locker, opts allocator.Options) *Server {
	opts.Cache = &allocator.MemoryCache{}
	return &Server{node: opts.Node, IdleTimeout: defaultIdleTimeout, alloc: allocator.New(store, locker, opts)}
}

// defaultIdleTimeout bounds how long a connection is kept waiting for its plugin.
const defaultIdleTimeout = time.Minute

// maxRequestBytes bounds one request: a pool spec and an owner take well under a kilobyte.
const maxRequestBytes = 1 << 20

// Listen opens the agent's unix socket in dir (mode 0600), replacing a socket left by an agent
// that died.
func Listen(dir string) (net.Listener, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the IPAM directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, SocketName)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing the old socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restricting %s to its owner: %w", path, err)
	}
	return ln, nil
}

// Serve answers connections on ln until ctx is done, then closes ln (removing its socket, so
// plugins fall back to direct mode) and waits for the requests in flight.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	log := logr.FromContextOrDiscard(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		// Requests in flight are answered; idle connections stop waiting for the next one.
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			c.SetReadDeadline(time.Now())
		}
	})
	defer stop()
	// A predecessor's journaled changes are written first; this agent's own when it stops.
	go s.flush(logr.NewContext(context.WithoutCancel(ctx), log), s.alloc.Flush, "written the journal left by an earlier agent")
	defer s.flush(logr.NewContext(context.WithoutCancel(ctx), log), s.alloc.Close, "written the journal and given back the addresses set aside before stopping")
	log.Info("IPAM agent serving", "socket", ln.Addr().String(), "node", s.node)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accepting on %s: %w", ln.Addr(), err)
		}
		mu.Lock()
		conns[conn] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, logr.NewContext(context.WithoutCancel(ctx), log), conn)
			mu.Lock()
			delete(conns, conn)
			mu.Unlock()
		}()
	}
}

// flushTimeout bounds the writing of the journal when the agent starts and stops.
const flushTimeout = 10 * time.Second

// flush runs write (the allocator's Flush or Close); a failure is logged (the next round on the
// node writes the journal; holds left expire).
func (s *Server) flush(ctx context.Context, write func(context.Context) error, what string) {
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	if err := write(ctx); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "the node's IPAM journal is not written yet; the next round or plugin on this node will")
		return
	}
	logr.FromContextOrDiscard(ctx).V(1).Info(what)
}

// serveConn answers the requests of one connection until the plugin closes it, sends garbage,
// stays idle for IdleTimeout, or stopping is done (between requests). A request's own work runs
// in ctx, which stopping does not cancel: a request in flight is answered.
func (s *Server) serveConn(stopping, ctx context.Context, conn net.Conn) {
	defer conn.Close()
	log := logr.FromContextOrDiscard(ctx)
	defer func() {
		if r := recover(); r != nil {
			log.Error(fmt.Errorf("panic: %v", r), "recovered from a panic serving a plugin's connection", "stack", string(debug.Stack()))
		}
	}()
	limited := &limitedReader{r: conn}
	dec := json.NewDecoder(bufio.NewReader(limited))
	enc := json.NewEncoder(conn)
	idle := s.IdleTimeout
	if idle <= 0 {
		idle = defaultIdleTimeout
	}
	for {
		conn.SetReadDeadline(time.Now().Add(idle))
		if stopping.Err() != nil {
			return // Serve's stop sets the deadline to now after this check, never before
		}
		limited.left = maxRequestBytes
		var req Request
		if err := dec.Decode(&req); err != nil {
			if !errors.Is(err, io.EOF) {
				log.V(1).Info("closing a plugin's connection", "reason", err.Error())
			}
			return // the plugin is done (EOF), idle too long or sent garbage: nothing to answer
		}
		resp := s.Handle(ctx, &req)
		conn.SetWriteDeadline(time.Now().Add(idle))
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

// limitedReader fails a read once left bytes have been read: one request may not grow without
// bound in the agent's memory.
type limitedReader struct {
	r    io.Reader
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, fmt.Errorf("a request is larger than %d bytes", maxRequestBytes)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// defaultTimeout bounds a request that names no timeout: nothing waits forever on the API server.
const defaultTimeout = 30 * time.Second

// maxTimeout bounds what a request may ask for: a caller waiting longer is not a CNI runtime.
const maxTimeout = 10 * time.Minute

// Handle answers one request. A panic while answering is logged and answered as an error: it
// fails that request, not the node daemon.
func (s *Server) Handle(ctx context.Context, req *Request) (resp *Response) {
	timeout := req.Timeout
	if timeout <= 0 || timeout > maxTimeout {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	log := logr.FromContextOrDiscard(ctx).WithValues("op", req.Op, "node", s.node, "container", req.Owner.ContainerID, "ifname", req.Owner.IfName)
	ctx = logr.NewContext(ctx, log)
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("internal error of the IPAM agent (please report it): %v", r)
			log.Error(err, "recovered from a panic answering a plugin", "stack", string(debug.Stack()))
			resp = &Response{Error: err.Error()}
		}
	}()
	if req.Node != "" && req.Node != s.node {
		err := fmt.Errorf("the IPAM agent of node %s allocates for that node only, not for node %q: "+
			"remove node_name from the network configuration, or set it to the node's name", s.node, req.Node)
		log.Info("refused a request for another node", "requested", req.Node)
		return &Response{Error: err.Error()}
	}
	a := s.alloc
	resp = &Response{}
	var err error
	switch req.Op {
	case OpAllocate, OpFind:
		if req.Pool == nil {
			err = fmt.Errorf("%s without a pool", req.Op)
			break
		}
		var pool allocator.Pool
		if pool, err = req.Pool.Pool(); err != nil {
			break
		}
		var addr netip.Addr
		if req.Op == OpFind {
			addr, resp.Found, err = a.Find(ctx, pool, req.Owner)
		} else {
			var want netip.Addr
			if req.Requested != "" {
				if want, err = netip.ParseAddr(req.Requested); err != nil {
					break
				}
			}
			addr, err = a.Allocate(ctx, pool, req.Owner, want)
		}
		if addr.IsValid() {
			resp.Addr = addr.String()
		}
	case OpRelease:
		err = a.Release(ctx, req.Network, req.Owner, req.StickyTTL)
	case OpPing:
		err = a.Ping(ctx, req.Network)
	default:
		err = fmt.Errorf("unknown operation %q", req.Op)
	}
	if err != nil {
		resp.Addr, resp.Error = "", err.Error()
		resp.Retryable = errors.Is(err, allocator.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
		log.V(1).Info("failed", "error", resp.Error)
	}
	return resp
}
