package agent_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexus-project/plexus/ipam/agent"
	"github.com/plexus-project/plexus/ipam/allocator"
	fake "github.com/plexus-project/plexus/ipam/allocator/testing"
	"github.com/plexus-project/plexus/ipam/config"
	"github.com/plexus-project/plexus/ipam/ranges"
)

// serve starts an agent for node-a over store on a socket in a new directory, stopped when the
// test ends.
func serve(t *testing.T, store allocator.Store) string {
	t.Helper()
	dir, stop := start(t, store)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return dir
}

// start starts an agent for node-a over store on a socket in a new directory; stop stops it and
// returns what Serve returned.
func start(t *testing.T, store allocator.Store) (dir string, stop func() error) {
	return startServer(t, agent.NewServer("node-a", store, &fake.Locker{}))
}

func startServer(t *testing.T, srv *agent.Server) (dir string, stop func() error) {
	t.Helper()
	dir = t.TempDir()
	ln, err := agent.Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	return dir, func() error { cancel(); return <-done }
}

func dial(t *testing.T, dir, node string) *agent.Client {
	t.Helper()
	c, err := agent.Dial(context.Background(), dir, node)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testPool(t *testing.T, spec ranges.Spec) allocator.Pool {
	t.Helper()
	r, err := ranges.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return allocator.NewPool("", r)
}

func TestOperations(t *testing.T) {
	store := fake.NewStore()
	dir := serve(t, store)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := testPool(t, ranges.Spec{Range: "10.1.0.0/24", Exclude: []string{"10.1.0.1"}})
	c := dial(t, dir, "")
	o := allocator.Owner{ContainerID: "c1", IfName: "net1", PodNamespace: "ns", PodName: "p1", PodUID: "u1"}

	addr, err := c.Allocate(ctx, p, o, netip.Addr{})
	if err != nil || addr.String() != "10.1.0.2" {
		t.Fatalf("Allocate = %s, %v; want 10.1.0.2", addr, err)
	}
	if b := store.Blocks(); len(b) != 1 || b[0].Spec.Node != "node-a" {
		t.Fatalf("want one block of the agent's node, got %+v", b)
	}
	if again, err := c.Allocate(ctx, p, o, netip.Addr{}); err != nil || again != addr {
		t.Fatalf("repeated Allocate = %s, %v", again, err)
	}
	if found, ok, err := c.Find(ctx, p, o); err != nil || !ok || found != addr {
		t.Fatalf("Find = %s %v %v", found, ok, err)
	}
	// The agent's own node, named, is served; a requested address taken is refused with the holder.
	named := dial(t, dir, "node-a")
	_, err = named.Allocate(ctx, p, allocator.Owner{ContainerID: "c2", IfName: "net1"}, addr)
	if err == nil || !strings.Contains(err.Error(), "already allocated to pod ns/p1") {
		t.Fatalf("taken address: %v", err)
	}
	b2, err := named.Allocate(ctx, p, allocator.Owner{ContainerID: "c2", IfName: "net1"}, netip.Addr{})
	if err != nil || b2 == addr {
		t.Fatalf("node-a got %s, %v", b2, err)
	}
	if err := c.Ping(ctx, ""); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := c.Release(ctx, "", o, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.Find(ctx, p, o); err != nil || ok {
		t.Fatalf("Find after Release: %v %v", ok, err)
	}
	// Exhaustion is worded by the allocator and is not retryable.
	tiny := testPool(t, ranges.Spec{Range: "10.2.0.0/30"})
	for i := range 2 {
		if _, err := c.Allocate(ctx, tiny, allocator.Owner{ContainerID: fmt.Sprint("t", i), IfName: "net1"}, netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.Allocate(ctx, tiny, allocator.Owner{ContainerID: "t9", IfName: "net1"}, netip.Addr{})
	if err == nil || !strings.Contains(err.Error(), "is exhausted: all 2 addresses") || errors.Is(err, allocator.ErrUnavailable) {
		t.Fatalf("exhausted: %v", err)
	}
}

func TestUnavailableIsRetryableAndBounded(t *testing.T) {
	store := fake.NewStore()
	store.Unavailable = true
	c := dial(t, serve(t, store), "")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Allocate(ctx, testPool(t, ranges.Spec{Range: "10.1.0.0/24"}), allocator.Owner{ContainerID: "c1", IfName: "net1"}, netip.Addr{})
	if !errors.Is(err, allocator.ErrUnavailable) || time.Since(start) > 2*time.Second {
		t.Fatalf("%v after %s", err, time.Since(start))
	}
}

func TestNoAgent(t *testing.T) {
	if _, err := agent.Dial(context.Background(), t.TempDir(), ""); err == nil {
		t.Fatal("Dial succeeded with no agent")
	}
}

// TestConcurrentPluginsShareWrites: many plugin connections at once get distinct addresses with
// far fewer block writes than allocations.
func TestConcurrentPluginsShareWrites(t *testing.T) {
	store := fake.NewStore()
	store.WriteDelay = time.Millisecond
	dir := serve(t, store)
	p := testPool(t, ranges.Spec{Range: "10.3.0.0/22"})
	const n = 300
	var mu sync.Mutex
	seen := map[netip.Addr]bool{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := agent.Dial(ctx, dir, "")
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			addr, err := c.Allocate(ctx, p, allocator.Owner{ContainerID: fmt.Sprint("c", i), IfName: "net1"}, netip.Addr{})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[addr] {
				t.Errorf("%s handed out twice", addr)
			}
			seen[addr] = true
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d addresses for %d allocations", len(seen), n)
	}
	if w := store.Writes(); w >= n {
		t.Errorf("%d block writes for %d allocations", w, n)
	}
	t.Logf("%d allocations, %d block writes", n, store.Writes())
}

// TestShutdownWithIdleConnection: a plugin that keeps its connection open does not hold the
// agent up when it stops.
func TestShutdownWithIdleConnection(t *testing.T) {
	dir, stop := start(t, fake.NewStore())
	c := dial(t, dir, "")
	if err := c.Ping(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return with a connection left open")
	}
	if _, err := agent.Dial(context.Background(), dir, ""); err == nil {
		t.Fatal("the socket still answers after the agent stopped")
	}
}

// TestRunProbes: plexus-daemon's agent answers its health probes while it serves, and stops
// with its context.
func TestRunProbes(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	// A cluster that is never asked: the probes do not reach the API server.
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Options{NodeName: "node-a", Dir: filepath.Join(dir, "ipam"), Kubeconfig: kubeconfig, HealthAddr: addr,
			NodeConfigFile: filepath.Join(dir, "etc", "ipam.json")})
	}()
	for _, path := range []string{"/healthz", "/readyz"} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + path)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v %v", path, resp, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The node's settings for plexus-ipam, in the format the plugin reads.
	b, err := os.ReadFile(filepath.Join(dir, "etc", "ipam.json"))
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := config.ParseNodeConfig(b); err != nil || nc.NodeName != "node-a" || nc.LockDir != filepath.Join(dir, "ipam") {
		t.Fatalf("node configuration %s: %+v %v", b, nc, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("the probes still answer after the agent stopped")
	}
}

// TestServesOnlyItsOwnNode: a request naming another node (a network configuration's node_name)
// is refused, not retryable, and nothing is written for that node.
func TestServesOnlyItsOwnNode(t *testing.T) {
	store := fake.NewStore()
	dir := serve(t, store)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := testPool(t, ranges.Spec{Range: "10.1.0.0/24"})
	for _, node := range []string{"node-b", "../../etc"} {
		c := dial(t, dir, node)
		_, err := c.Allocate(ctx, p, allocator.Owner{ContainerID: "c1", IfName: "net1"}, netip.Addr{})
		if err == nil || errors.Is(err, allocator.ErrUnavailable) || !strings.Contains(err.Error(), "allocates for that node only") {
			t.Fatalf("node %q: %v", node, err)
		}
		if err := c.Release(ctx, "", allocator.Owner{ContainerID: "c1", IfName: "net1"}, 0); err == nil {
			t.Fatalf("node %q: release accepted", node)
		}
	}
	if b := store.Blocks(); len(b) != 0 {
		t.Fatalf("blocks written for another node: %+v", b)
	}
}

// TestIdleConnectionClosed: a connection that sends nothing is closed after IdleTimeout, and a
// request without an end is not read forever.
func TestIdleConnectionClosed(t *testing.T) {
	srv := agent.NewServer("node-a", fake.NewStore(), &fake.Locker{})
	srv.IdleTimeout = 200 * time.Millisecond
	dir, stop := startServer(t, srv)
	defer stop()
	for _, send := range []string{"", `{"op":"ping","network":"`} {
		conn, err := net.Dial("unix", filepath.Join(dir, agent.SocketName))
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte(send))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
		if err == nil || time.Since(start) > 3*time.Second {
			t.Fatalf("sent %q: the agent kept the connection open (%v after %s)", send, err, time.Since(start))
		}
	}
}

// TestPanicIsAnsweredNotFatal: a panic while answering (here the store's) fails that request,
// grouped or not, and the agent keeps serving.
func TestPanicIsAnsweredNotFatal(t *testing.T) {
	store := fake.NewStore()
	dir := serve(t, store)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := testPool(t, ranges.Spec{Range: "10.1.0.0/24"})
	store.SetPanic("boom")
	c := dial(t, dir, "")
	if _, err := c.Allocate(ctx, p, allocator.Owner{ContainerID: "c1", IfName: "net1"}, netip.Addr{}); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("grouped allocation: %v", err)
	}
	if err := c.Ping(ctx, ""); err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("ping: %v", err)
	}
	store.SetPanic("")
	if addr, err := c.Allocate(ctx, p, allocator.Owner{ContainerID: "c1", IfName: "net1"}, netip.Addr{}); err != nil || addr.String() != "10.1.0.1" {
		t.Fatalf("after the panic: %s, %v", addr, err)
	}
}
