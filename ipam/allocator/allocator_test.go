package allocator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/plexus-project/plexus/ipam/allocator"
	fake "github.com/plexus-project/plexus/ipam/allocator/testing"
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	"github.com/plexus-project/plexus/ipam/ranges"
)

func pool(t *testing.T, network string, spec ranges.Spec) allocator.Pool {
	t.Helper()
	r, err := ranges.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return allocator.NewPool(network, r)
}

func owner(i int) allocator.Owner {
	return allocator.Owner{ContainerID: fmt.Sprintf("c%d", i), IfName: "net1", PodNamespace: "ns", PodName: fmt.Sprintf("p%d", i), PodUID: fmt.Sprintf("u%d", i)}
}

// caches gives every fake store one node-local cache, shared by the allocators of a test as the
// cache file is shared by the plugin processes of a node.
var caches sync.Map

func newAlloc(s *fake.Store, l *fake.Locker, node string) *allocator.Allocator {
	c, _ := caches.LoadOrStore(s, &allocator.MemoryCache{})
	return allocator.New(s, l, allocator.Options{Node: node, Cache: c.(*allocator.MemoryCache)})
}

func TestStaleCacheNeverDuplicates(t *testing.T) {
	ctx := context.Background()
	s := fake.NewStore()
	p := pool(t, "", ranges.Spec{Range: "10.0.0.0/24"})
	cached := allocator.New(s, &fake.Locker{}, allocator.Options{Node: "n1", Cache: &allocator.MemoryCache{}})
	uncached := allocator.New(s, &fake.Locker{}, allocator.Options{Node: "n1"})
	if _, err := cached.Allocate(ctx, p, owner(1), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	// Another writer (here: one without the cache) changes the block behind the cache's back.
	b, err := uncached.Allocate(ctx, p, owner(2), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cached.Allocate(ctx, p, owner(3), netip.Addr{})
	if err != nil || c == b {
		t.Fatalf("stale cache handed out %s again (%v)", c, err)
	}
	if err := uncached.Release(ctx, "", owner(1), 0); err != nil {
		t.Fatal(err)
	}
	// The cache still shows owner 1; a repeated ADD must not trust it.
	got, err := cached.Allocate(ctx, p, owner(1), netip.Addr{})
	if err != nil || got.String() != "10.0.0.1" {
		t.Fatalf("re-ADD after a foreign release: %s, %v", got, err)
	}
	if u := allocator.PoolUsage(p, s.Blocks()); u.Used.Int64() != 3 {
		t.Fatalf("used %s, want 3", u.Used)
	}
}

func TestWhereaboutsVectorThenExhausted(t *testing.T) {
	ctx := context.Background()
	p := pool(t, "", ranges.Spec{Range: "192.168.2.225/28", Exclude: []string{"192.168.2.229/30", "192.168.2.236/32"}})
	a := newAlloc(fake.NewStore(), &fake.Locker{}, "n1")
	want := []string{"192.168.2.225", "192.168.2.226", "192.168.2.227", "192.168.2.232", "192.168.2.233", "192.168.2.234", "192.168.2.235", "192.168.2.237", "192.168.2.238"}
	for i, w := range want {
		got, err := a.Allocate(ctx, p, owner(i), netip.Addr{})
		if err != nil || got.String() != w {
			t.Fatalf("allocation %d = %s, %v; want %s", i, got, err, w)
		}
	}
	_, err := a.Allocate(ctx, p, owner(99), netip.Addr{})
	var ex *allocator.ExhaustedError
	if !errors.As(err, &ex) || ex.Pool != p.Name || ex.Size != "9" {
		t.Fatalf("want exhausted naming pool %s and size 9, got %v", p.Name, err)
	}
}

func TestIdempotentReleaseAndEmptyBlocks(t *testing.T) {
	ctx := context.Background()
	s := fake.NewStore()
	p := pool(t, "", ranges.Spec{Range: "10.0.0.0/24"})
	a := newAlloc(s, &fake.Locker{}, "n1")
	first, err := a.Allocate(ctx, p, owner(1), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.Allocate(ctx, p, owner(1), netip.Addr{})
	if err != nil || again != first {
		t.Fatalf("second ADD = %s, %v; want %s again", again, err, first)
	}
	if err := a.Release(ctx, "", owner(7), 0); err != nil {
		t.Fatalf("DEL of an unknown container: %v", err)
	}
	if err := a.Release(ctx, "", owner(1), 0); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Blocks()); n != 0 {
		t.Fatalf("%d blocks left after releasing everything", n)
	}
	if got := s.Pools(); len(got) != 1 || got[0] != p.Name {
		t.Fatalf("pools %v", got)
	}
}

func TestRequested(t *testing.T) {
	ctx := context.Background()
	s := fake.NewStore()
	p := pool(t, "", ranges.Spec{Range: "10.0.0.0/24"})
	a1, a2 := newAlloc(s, &fake.Locker{}, "n1"), newAlloc(s, &fake.Locker{}, "n2")
	want := netip.MustParseAddr("10.0.0.200")
	if got, err := a1.Allocate(ctx, p, owner(1), want); err != nil || got != want {
		t.Fatalf("requested %s: got %s, %v", want, got, err)
	}
	var taken *allocator.TakenError
	if _, err := a2.Allocate(ctx, p, owner(2), want); !errors.As(err, &taken) {
		t.Fatalf("want TakenError, got %v", err)
	}
	if _, err := a2.Allocate(ctx, p, owner(3), netip.MustParseAddr("10.0.0.255")); err == nil {
		t.Fatal("the broadcast address was handed out on request")
	}
	// The requested address sits in n1's block; the next free address of n2 is its own.
	got, err := a2.Allocate(ctx, p, owner(4), netip.Addr{})
	if err != nil || got.String() != "10.0.0.1" {
		t.Fatalf("n2 got %s, %v", got, err)
	}
}

func TestConcurrentNodesNoDuplicates(t *testing.T) {
	ctx := context.Background()
	s := fake.NewStore()
	locker := &fake.Locker{}
	p := pool(t, "", ranges.Spec{Range: "10.10.0.0/22"})
	const total, nodes = 1000, 10
	allocateAll(t, p, total, 50, func(i int) *allocator.Allocator {
		return newAlloc(s, locker, fmt.Sprintf("node-%d", i%nodes))
	})
	u := allocator.PoolUsage(p, s.Blocks())
	if u.Used.Int64() != total || u.Free.Int64() != 1022-total {
		t.Fatalf("usage %+v", u)
	}
	for i := 0; i < total; i++ {
		if err := newAlloc(s, locker, fmt.Sprintf("node-%d", (i+3)%nodes)).Release(ctx, "", owner(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.Blocks()); n != 0 {
		t.Fatalf("%d blocks left", n)
	}
}

// allocateAll allocates for owners 0..total-1 concurrently, inFlight at a time (0: all at once),
// each with the allocator pick returns for it, and fails unless every address is distinct and in
// p. It returns how often each address was handed out (1).
func allocateAll(t *testing.T, p allocator.Pool, total, inFlight int, pick func(i int) *allocator.Allocator) map[netip.Addr]int {
	t.Helper()
	if inFlight == 0 {
		inFlight = total
	}
	var mu sync.Mutex
	seen := map[netip.Addr]int{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, inFlight)
	errs := make(chan error, total)
	for i := 0; i < total; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			addr, err := pick(i).Allocate(context.Background(), p, owner(i), netip.Addr{})
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			seen[addr]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != total {
		t.Fatalf("%d distinct addresses for %d allocations", len(seen), total)
	}
	for addr := range seen {
		if !p.Range.Contains(addr) {
			t.Fatalf("%s outside the range", addr)
		}
	}
	return seen
}

func TestOverlappingRangesShareAddresses(t *testing.T) {
	ctx := context.Background()
	s := fake.NewStore()
	wide := pool(t, "", ranges.Spec{Range: "10.0.0.0/24"})
	narrow := pool(t, "", ranges.Spec{Range: "10.0.0.0/28"})
	other := pool(t, "blue", ranges.Spec{Range: "10.0.0.0/28"})
	a := newAlloc(s, &fake.Locker{}, "n1")
	b := newAlloc(s, &fake.Locker{}, "n2")
	x, _ := a.Allocate(ctx, wide, owner(1), netip.Addr{})
	y, _ := b.Allocate(ctx, narrow, owner(2), netip.Addr{})
	z, _ := b.Allocate(ctx, other, owner(3), netip.Addr{})
	if x == y {
		t.Fatalf("overlapping ranges of one network handed out %s twice", x)
	}
	if z.String() != "10.0.0.1" {
		t.Fatalf("network_name blue should start afresh, got %s", z)
	}
}

func TestSticky(t *testing.T) {
	ctx := context.Background()
	s := fake.NewStore()
	p := pool(t, "", ranges.Spec{Range: "10.0.0.0/24"})
	p.Sticky = true
	a := newAlloc(s, &fake.Locker{}, "n1")
	b := newAlloc(s, &fake.Locker{}, "n2")
	o := owner(1)
	first, _ := a.Allocate(ctx, p, o, netip.Addr{})
	for i := 2; i < 5; i++ {
		a.Allocate(ctx, p, owner(i), netip.Addr{})
	}
	if err := a.Release(ctx, "", o, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Same name, new UID and container, another node.
	o2 := o
	o2.ContainerID, o2.PodUID = "c1-new", "u1-new"
	got, err := b.Allocate(ctx, p, o2, netip.Addr{})
	if err != nil || got != first {
		t.Fatalf("re-created pod got %s, %v; want its address %s back", got, err, first)
	}
	// Without DEL (crashed node): the new pod of the name takes the old allocation over.
	o3 := o2
	o3.ContainerID, o3.PodUID = "c1-newer", "u1-newer"
	if got, err := a.Allocate(ctx, p, o3, netip.Addr{}); err != nil || got != first {
		t.Fatalf("re-created pod got %s, %v; want %s", got, err, first)
	}
}

func TestWhole64Blocks(t *testing.T) {
	ctx := context.Background()
	s := fake.NewStore()
	p := pool(t, "", ranges.Spec{Range: "fd00:1::8000:0:0:0-fd00:1::ffff:ffff:ffff:fffe/64"})
	a := newAlloc(s, &fake.Locker{}, "n1")
	got, err := a.Allocate(ctx, p, owner(1), netip.Addr{})
	if err != nil || got.String() != "fd00:1:0:0:8000::" {
		t.Fatalf("got %s, %v", got, err)
	}
	if u := allocator.PoolUsage(p, s.Blocks()); u.Free.String() != "9223372036854775806" {
		t.Fatalf("free %s", u.Free)
	}
}

func TestUnavailableIsBounded(t *testing.T) {
	s := fake.NewStore()
	s.Unavailable = true
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := newAlloc(s, &fake.Locker{}, "n1").Allocate(ctx, pool(t, "", ranges.Spec{Range: "10.0.0.0/24"}), owner(1), netip.Addr{})
	if !errors.Is(err, allocator.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
}

// TestGroupCommit: the concurrent ADDs of one long-lived allocator per node share block writes,
// while other writers of the same nodes (plugin processes in direct mode, no cache) race with
// them; no address is handed out twice.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	s := fake.NewStore()
	locker := &fake.Locker{}
	p := pool(t, "", ranges.Spec{Range: "10.10.0.0/22", Exclude: []string{"10.10.1.0/28"}})
	s.WriteDelay = time.Millisecond
	const total, nodes = 1000, 10
	agents := make([]*allocator.Allocator, nodes)
	for n := range agents {
		agents[n] = allocator.New(s, locker, allocator.Options{Node: fmt.Sprintf("node-%d", n), Cache: &allocator.MemoryCache{}})
	}
	seen := allocateAll(t, p, total, 0, func(i int) *allocator.Allocator {
		if i%10 == 3 { // a direct-mode plugin of the same node
			return allocator.New(s, locker, allocator.Options{Node: fmt.Sprintf("node-%d", i%nodes)})
		}
		return agents[i%nodes]
	})
	if w := s.Writes(); w > total/2 {
		t.Errorf("%d block writes for %d concurrent allocations: they were not grouped", w, total)
	}
	// Idempotent re-ADD through the group path confirms on fresh data and answers the same.
	for i := 0; i < 20; i++ {
		got, err := agents[i%nodes].Allocate(ctx, p, owner(i), netip.Addr{})
		if err != nil || seen[got] != 1 {
			t.Fatalf("re-ADD %d: %s, %v", i, got, err)
		}
	}
	if u := allocator.PoolUsage(p, s.Blocks()); u.Used.Int64() != total {
		t.Fatalf("usage %+v after re-ADDs", u)
	}

	// Releases are grouped too; some run on another node (the address is in a foreign block).
	before := s.Writes()
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for i := 0; i < total; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			a := agents[i%nodes]
			if i%10 == 7 {
				a = agents[(i+1)%nodes]
			}
			if err := a.Release(ctx, "", owner(i), 0); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if left := s.Blocks(); len(left) != 0 {
		t.Fatalf("%d blocks left after releasing everything", len(left))
	}
	if w := s.Writes() - before; w > total/2 {
		t.Errorf("%d block writes for %d concurrent releases: they were not grouped", w, total)
	}
}

func TestGroupCommitGivesUpWithItsCaller(t *testing.T) {
	s := fake.NewStore()
	s.Unavailable = true
	a := newAlloc(s, &fake.Locker{}, "n1")
	p := pool(t, "", ranges.Spec{Range: "10.0.0.0/24"})
	var wg sync.WaitGroup
	for i, d := range []time.Duration{200 * time.Millisecond, 600 * time.Millisecond} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			start := time.Now()
			_, err := a.Allocate(ctx, p, owner(i), netip.Addr{})
			if took := time.Since(start); !errors.Is(err, allocator.ErrUnavailable) || took > d+time.Second {
				t.Errorf("caller with %s: %v after %s", d, err, took)
			}
		}()
	}
	wg.Wait()
}

// TestGroupBorrowing: when every block is claimed, the ADDs of a node whose blocks are full
// borrow together, and the last address is followed by "exhausted".
func TestGroupBorrowing(t *testing.T) {
	ctx := context.Background()
	s := fake.NewStore()
	locker := &fake.Locker{}
	p := pool(t, "", ranges.Spec{Range: "10.0.0.0/26"}) // two /27 blocks, 62 usable addresses
	s.WriteDelay = 2 * time.Millisecond
	n1 := allocator.New(s, locker, allocator.Options{Node: "n1", Cache: &allocator.MemoryCache{}})
	n2 := allocator.New(s, locker, allocator.Options{Node: "n2", Cache: &allocator.MemoryCache{}})
	for i := range 40 { // n1 claims both blocks
		if _, err := n1.Allocate(ctx, p, owner(i), netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	before := s.Writes()
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[netip.Addr]bool{}
	var exhausted int
	for i := 40; i < 70; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr, err := n2.Allocate(ctx, p, owner(i), netip.Addr{})
			mu.Lock()
			defer mu.Unlock()
			var ex *allocator.ExhaustedError
			switch {
			case errors.As(err, &ex):
				exhausted++
			case err != nil:
				t.Error(err)
			case seen[addr]:
				t.Errorf("%s handed out twice", addr)
			default:
				seen[addr] = true
			}
		}()
	}
	wg.Wait()
	if len(seen) != 22 || exhausted != 8 {
		t.Fatalf("n2 got %d addresses and %d exhausted errors; want the 22 left and 8", len(seen), exhausted)
	}
	if w := s.Writes() - before; w >= 22 {
		t.Errorf("%d writes for 22 borrowed addresses: not grouped", w)
	}
	if u := allocator.PoolUsage(p, s.Blocks()); u.Free.Int64() != 0 {
		t.Fatalf("usage %+v", u)
	}
}

// listHook runs after, once armed, after the next listing of a whole network and before the
// caller sees it: another node acts between the listing and what the caller does with it.
type listHook struct {
	*fake.Store
	mu    sync.Mutex
	after func()
}

func (h *listHook) arm(f func()) { h.mu.Lock(); h.after = f; h.mu.Unlock() }

func (h *listHook) ListBlocks(ctx context.Context, network, node string) ([]v1alpha1.IPBlock, error) {
	blocks, err := h.Store.ListBlocks(ctx, network, node)
	h.mu.Lock()
	f := h.after
	if node == "" {
		h.after = nil
	}
	h.mu.Unlock()
	if node == "" && f != nil {
		f()
	}
	return blocks, err
}

// TestStaleListingIsNeverExhausted: a node whose blocks are full lists the network, another node
// claims the last free block meanwhile, and the claim is lost. The pool is not full (the other
// node's block has room): the node borrows instead of reporting it exhausted.
func TestStaleListingIsNeverExhausted(t *testing.T) {
	ctx := context.Background()
	s := fake.NewStore()
	p := pool(t, "", ranges.Spec{Range: "10.0.0.0/26"}) // blocks .0/27 (31 usable) and .32/27 (31)
	n2 := allocator.New(s, &fake.Locker{}, allocator.Options{Node: "n2"})
	h := &listHook{Store: s}
	n1 := allocator.New(h, &fake.Locker{}, allocator.Options{Node: "n1", Cache: &allocator.MemoryCache{}})
	for i := range 31 {
		if _, err := n1.Allocate(ctx, p, owner(i), netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	h.arm(func() {
		if got, err := n2.Allocate(ctx, p, owner(100), netip.Addr{}); err != nil || got.String() != "10.0.0.32" {
			t.Errorf("n2 claimed %s, %v", got, err)
		}
	})
	got, err := n1.Allocate(ctx, p, owner(31), netip.Addr{})
	if err != nil || got.String() != "10.0.0.33" {
		t.Fatalf("n1 got %s, %v; want to borrow 10.0.0.33", got, err)
	}
}

// TestMalformedEntriesAreSkipped: a block holding hand-edited entries (a key that is not an
// address, a value with a space) neither panics nor stops the block's other entries from being
// found, allocated around and released; the bad entries stay as they were.
func TestMalformedEntriesAreSkipped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := fake.NewStore()
	p := pool(t, "", ranges.Spec{Range: "10.0.0.0/24"})
	a := newAlloc(s, &fake.Locker{}, "n1")
	old := owner(1)
	if _, err := a.Allocate(ctx, p, old, netip.Addr{}); err != nil { // claims 10.0.0.0/27, takes .1
		t.Fatal(err)
	}
	b := s.Blocks()[0]
	var bad v1alpha1.IPBlockSpec
	if err := json.Unmarshal([]byte(`{"allocations":{"10.0.0.2":"pod=ns/p1 b uid=u1 container=c1 if=net1","nonsense":"pool=`+p.Name+` container=c1 if=net1"}}`), &bad); err != nil {
		t.Fatal(err)
	}
	for k, v := range bad.Allocations {
		b.Spec.Allocations[k] = v
	}
	if _, err := s.UpdateBlock(ctx, &b); err != nil {
		t.Fatal(err)
	}
	fresh := allocator.New(s, &fake.Locker{}, allocator.Options{Node: "n1"})
	if addr, ok, err := fresh.Find(ctx, p, old); err != nil || !ok || addr.String() != "10.0.0.1" {
		t.Fatalf("Find = %s %v %v", addr, ok, err)
	}
	next, err := fresh.Allocate(ctx, p, owner(2), netip.Addr{})
	if err != nil || next.String() != "10.0.0.3" {
		t.Fatalf("Allocate = %s, %v; want 10.0.0.3 (.2 is held by a malformed entry)", next, err)
	}
	if _, err := fresh.Allocate(ctx, p, owner(3), netip.MustParseAddr("10.0.0.2")); err == nil || !strings.Contains(err.Error(), "malformed entry") {
		t.Fatalf("requesting the malformed entry's address: %v", err)
	}
	for _, o := range []allocator.Owner{old, owner(2)} {
		if err := fresh.Release(ctx, "", o, 0); err != nil {
			t.Fatal(err)
		}
	}
	left := s.Blocks()
	if len(left) != 1 || len(left[0].Spec.Allocations) != 2 || len(left[0].Spec.Problems()) != 2 {
		t.Fatalf("after releasing the good entries: %+v", left)
	}
}

// TestCacheWriteFailureReported: a node cache that cannot be written is logged, and the
// allocation still succeeds from the API server's data.
func TestCacheWriteFailureReported(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := (allocator.FileCache{Dir: notADir}).Save("k", nil); err == nil {
		t.Fatal("FileCache.Save into a file succeeded")
	}
	var mu sync.Mutex
	var logged []string
	log := funcr.New(func(prefix, args string) { mu.Lock(); defer mu.Unlock(); logged = append(logged, args) }, funcr.Options{})
	ctx, cancel := context.WithTimeout(logr.NewContext(context.Background(), log), 10*time.Second)
	defer cancel()
	a := allocator.New(fake.NewStore(), &fake.Locker{}, allocator.Options{Node: "n1", Cache: allocator.FileCache{Dir: notADir}})
	if _, err := a.Allocate(ctx, pool(t, "", ranges.Spec{Range: "10.0.0.0/24"}), owner(1), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(strings.Join(logged, "\n"), "block cache could not be written") {
		t.Fatalf("nothing logged: %q", logged)
	}
}
