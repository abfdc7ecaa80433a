package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/plexus-project/plexus/ipam/allocator"
)

// Server answers plugin processes on one node.
type Server struct {
	node   string
	store  allocator.Store
	locker allocator.Locker

	mu     sync.Mutex
	allocs map[string]*allocator.Allocator
}

// NewServer returns a Server for node, writing through store. locker is the plugin's node lock
// (allocator.FileLocker on its lock_dir), so the agent's rounds and plugins in direct mode take
// turns instead of racing.
func NewServer(node string, store allocator.Store, locker allocator.Locker) *Server {
	return &Server{node: node, store: store, locker: locker, allocs: map[string]*allocator.Allocator{}}
}

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
			s.serveConn(logr.NewContext(context.WithoutCancel(ctx), log), conn)
			mu.Lock()
			delete(conns, conn)
			mu.Unlock()
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	dec := json.NewDecoder(bufio.NewReader(conn))
	enc := json.NewEncoder(conn)
	for {
		var req Request
		if err := dec.Decode(&req); err != nil {
			return // the plugin is done (EOF) or sent garbage: either way, nothing to answer
		}
		if err := enc.Encode(s.Handle(ctx, &req)); err != nil {
			return
		}
	}
}

// defaultTimeout bounds a request that names no timeout: nothing waits forever on the API server.
const defaultTimeout = 30 * time.Second

// Handle answers one request.
func (s *Server) Handle(ctx context.Context, req *Request) *Response {
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	node := req.Node
	if node == "" {
		node = s.node
	}
	log := logr.FromContextOrDiscard(ctx).WithValues("op", req.Op, "node", node, "container", req.Owner.ContainerID, "ifname", req.Owner.IfName)
	ctx = logr.NewContext(ctx, log)
	a := s.allocator(node)
	var resp Response
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
	return &resp
}

// allocator returns the long-lived allocator of node, creating it on first use.
func (s *Server) allocator(node string) *allocator.Allocator {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.allocs[node]
	if !ok {
		a = allocator.New(s.store, s.locker, allocator.Options{Node: node, Cache: &allocator.MemoryCache{}})
		s.allocs[node] = a
	}
	return a
}
