package server

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/plexus-project/plexus/cni/attach"
	"github.com/plexus-project/plexus/cni/wire"
)

// blockingHandler holds every ADD until release is closed.
type blockingHandler struct {
	release chan struct{}
	started chan string
}

func (h *blockingHandler) Add(ctx context.Context, c *attach.Call) ([]byte, error) {
	h.started <- c.ContainerID
	select {
	case <-h.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return []byte(`{"cniVersion":"1.0.0"}`), nil
}
func (h *blockingHandler) Del(context.Context, *attach.Call) error { return nil }
func (h *blockingHandler) Check(context.Context, *attach.Call) error {
	return types.NewError(types.ErrInternal, "interface net1 is missing from the pod", "")
}
func (h *blockingHandler) GC(context.Context, *attach.Call) error { return nil }
func (h *blockingHandler) Status(context.Context) error           { return nil }

func start(t *testing.T, opts Options, h Handler) (*Server, *Metrics) {
	t.Helper()
	opts.SocketDir = filepath.Join(t.TempDir(), "sock")
	opts.NodeName = "node1"
	m := NewMetrics(prometheus.NewRegistry())
	s := New(opts, h, m)
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, m
}

func call(ctx context.Context, s *Server, command, id string) ([]byte, error) {
	return wire.Call(ctx, s.SocketPath(), &wire.Request{Command: command, ContainerID: id, IfName: "eth0", Config: json.RawMessage(`{"cniVersion":"1.0.0"}`)})
}

func TestSocketIsRootOnly(t *testing.T) {
	s, _ := start(t, Options{}, &blockingHandler{})
	for path, want := range map[string]os.FileMode{filepath.Dir(s.SocketPath()): 0o700, s.SocketPath(): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
}

func TestQueueBoundsAndGauges(t *testing.T) {
	h := &blockingHandler{release: make(chan struct{}), started: make(chan string, 10)}
	s, m := start(t, Options{MaxInFlight: 2, MaxQueued: 1}, h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, id := range []string{"a", "b", "c"} {
		wg.Add(1)
		go func() { defer wg.Done(); _, err := call(ctx, s, "ADD", id); errs <- err }()
		if id != "c" {
			<-h.started
		}
	}
	// a and b in flight; c queued.
	waitGauge(t, m.queued, 1)
	if got := value(m.inflight); got != 2 {
		t.Errorf("in flight = %v, want 2", got)
	}
	_, err := call(ctx, s, "ADD", "d")
	var ce *types.Error
	if !errors.As(err, &ce) || ce.Code != types.ErrTryAgainLater || !strings.Contains(ce.Msg, "busy") {
		t.Fatalf("ADD beyond the queue = %v, want a try-again-later 'busy' error", err)
	}
	// DEL is never refused: it waits for a slot.
	delDone := make(chan error, 1)
	go func() { _, err := call(ctx, s, "DEL", "e"); delDone <- err }()
	waitGauge(t, m.queued, 2)
	close(h.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("queued ADD: %v", err)
		}
	}
	if err := <-delDone; err != nil {
		t.Errorf("DEL: %v", err)
	}
	waitGauge(t, m.queued, 0)
	if got := value(m.failures.WithLabelValues("ADD", "queue-full")); got != 1 {
		t.Errorf("queue-full failures = %v, want 1", got)
	}
}

func waitGauge(t *testing.T, g prometheus.Gauge, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for value(g) != want {
		if time.Now().After(deadline) {
			t.Fatalf("gauge = %v, want %v", value(g), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNotReady(t *testing.T) {
	s, _ := start(t, Options{Ready: func() error { return errors.New("caches not synced") }, ReadyWait: 100 * time.Millisecond}, &blockingHandler{})
	ctx := context.Background()
	_, err := call(ctx, s, "STATUS", "")
	var ce *types.Error
	if !errors.As(err, &ce) || ce.Code != types.ErrPluginNotAvailable || !strings.Contains(ce.Msg, "caches not synced") {
		t.Errorf("STATUS = %v, want code 50 with the reason", err)
	}
	_, err = call(ctx, s, "ADD", "a")
	if !errors.As(err, &ce) || ce.Code != types.ErrTryAgainLater || !strings.Contains(ce.Msg, "not ready yet") {
		t.Errorf("ADD = %v, want try again later", err)
	}
}

func TestErrorsTravelAsCNIErrors(t *testing.T) {
	s, _ := start(t, Options{}, &blockingHandler{})
	_, err := call(context.Background(), s, "CHECK", "a")
	var ce *types.Error
	if !errors.As(err, &ce) || ce.Msg != "interface net1 is missing from the pod" {
		t.Errorf("CHECK = %#v, want the handler's CNI error", err)
	}
	_, err = call(context.Background(), s, "FROB", "a")
	if !errors.As(err, &ce) || !strings.Contains(ce.Msg, `unknown CNI command "FROB"`) {
		t.Errorf("unknown command = %v", err)
	}
}

func TestNoDaemon(t *testing.T) {
	_, err := wire.Call(context.Background(), filepath.Join(t.TempDir(), "plexus.sock"), &wire.Request{Command: "ADD"})
	var down *wire.NotRunningError
	if !errors.As(err, &down) {
		t.Errorf("Call with no daemon = %v, want a NotRunningError", err)
	}
}

// value reads a gauge or counter.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}
