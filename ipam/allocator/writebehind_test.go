package allocator_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plexus-project/plexus/ipam/allocator"
	fake "github.com/plexus-project/plexus/ipam/allocator/testing"
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	"github.com/plexus-project/plexus/ipam/ranges"
)

// agentAlloc is a node agent's allocator: write-behind with holds holds and a journal in dir;
// nothing is written or given back on a timer unless the test says so.
func agentAlloc(s *fake.Store, l *fake.Locker, node, dir string, holds int, flush, idle time.Duration) *allocator.Allocator {
	return allocator.New(s, l, allocator.Options{Node: node, Cache: &allocator.MemoryCache{},
		Journal: allocator.FileJournal{Dir: dir}, Holds: holds, FlushAfter: flush, ReturnIdle: idle})
}

// entries returns the store's entries by address.
func entries(s *fake.Store) map[string]v1alpha1.Allocation {
	out := map[string]v1alpha1.Allocation{}
	for _, b := range s.Blocks() {
		for k, al := range b.Spec.Allocations {
			out[k] = al
		}
	}
	return out
}

func heldBy(s *fake.Store, node string) int {
	n := 0
	for _, al := range entries(s) {
		if al.HeldUntil != nil && al.Node == node {
			n++
		}
	}
	return n
}

func TestWriteBehindHandsOutHoldsWithoutWrites(t *testing.T) {
	ctx := context.Background()
	s := fake.NewStore()
	dir := t.TempDir()
	p := pool(t, "", ranges.Spec{Range: "10.0.0.0/24"})
	a := agentAlloc(s, &fake.Locker{}, "n1", dir, 4, time.Hour, time.Hour)
	first, err := a.Allocate(ctx, p, owner(0), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if w, h := s.Writes(), heldBy(s, "n1"); w != 1 || h != 4 {
		t.Fatalf("after the first ADD: %d writes, %d holds; want the claim (1 write) carrying 4 holds", w, h)
	}
	got := map[netip.Addr]bool{first: true}
	for i := 1; i <= 4; i++ {
		addr, err := a.Allocate(ctx, p, owner(i), netip.Addr{})
		if err != nil || got[addr] {
			t.Fatalf("ADD %d: %s, %v (handed out twice?)", i, addr, err)
		}
		got[addr] = true
	}
	if w := s.Writes(); w != 1 {
		t.Fatalf("%d writes for 5 ADDs; want 1: the four after the first come from the node's holds", w)
	}
	// Not written yet, but journaled: the store still shows the holds, the journal the owners.
	if h := heldBy(s, "n1"); h != 4 {
		t.Fatalf("%d holds in the store before the flush; want 4", h)
	}
	journal, err := allocator.FileJournal{Dir: dir}.Load(allocator.NetworkKey("") + ".n1")
	if err != nil || len(journal) != 4 {
		t.Fatalf("journal %v, %v; want the 4 allocations", journal, err)
	}
	// An idempotent re-ADD is answered from the journal.
	if again, err := a.Allocate(ctx, p, owner(3), netip.Addr{}); err != nil || !got[again] {
		t.Fatalf("re-ADD of a journaled allocation: %s, %v", again, err)
	}
	if addr, ok, err := a.Find(ctx, p, owner(4)); err != nil || !ok || !got[addr] {
		t.Fatalf("CHECK of a journaled allocation: %s %v %v", addr, ok, err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if w := s.Writes(); w != 2 {
		t.Fatalf("%d writes after the flush; want 2", w)
	}
	owners := map[string]bool{}
	for _, al := range entries(s) {
		owners[al.ContainerID] = true
	}
	for i := 0; i <= 4; i++ {
		if !owners[owner(i).ContainerID] {
			t.Fatalf("owner %d not in the store after the flush: %v", i, entries(s))
		}
	}
	if left, _ := (allocator.FileJournal{Dir: dir}).Keys(); len(left) != 0 {
		t.Fatalf("journal %v left after the flush", left)
	}
}

// The agent dies with allocations only in its journal: whoever takes the node lock next (a
// plugin in direct mode, or the next agent) writes them, and nobody hands them out again.
func TestWriteBehindJournalOutlivesTheAgent(t *testing.T) {
	for _, next := range []string{"plugin in direct mode", "next agent"} {
		t.Run(next, func(t *testing.T) {
			ctx := context.Background()
			s := fake.NewStore()
			l := &fake.Locker{}
			dir := t.TempDir()
			p := pool(t, "", ranges.Spec{Range: "10.0.0.0/27"})
			dead := agentAlloc(s, l, "n1", dir, 8, time.Hour, time.Hour)
			taken := map[netip.Addr]bool{}
			for i := 0; i < 6; i++ {
				addr, err := dead.Allocate(ctx, p, owner(i), netip.Addr{})
				if err != nil {
					t.Fatal(err)
				}
				taken[addr] = true
			}
			var after *allocator.Allocator
			if next == "next agent" {
				after = agentAlloc(s, l, "n1", dir, 8, time.Hour, time.Hour)
				if err := after.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			} else {
				after = allocator.New(s, l, allocator.Options{Node: "n1", Cache: &allocator.MemoryCache{}, Journal: allocator.FileJournal{Dir: dir}})
			}
			for i := 100; i < 110; i++ {
				addr, err := after.Allocate(ctx, p, owner(i), netip.Addr{})
				if err != nil {
					t.Fatal(err)
				}
				if taken[addr] {
					t.Fatalf("%s handed out %s, journaled by the dead agent, again", next, addr)
				}
				taken[addr] = true
			}
			stored := entries(s)
			for i := 0; i < 6; i++ {
				found := false
				for _, al := range stored {
					found = found || al.ContainerID == owner(i).ContainerID
				}
				if !found {
					t.Fatalf("the dead agent's allocation of owner %d was never written", i)
				}
			}
			if left, _ := (allocator.FileJournal{Dir: dir}).Keys(); next != "next agent" && len(left) != 0 {
				t.Fatalf("journal %v left by the plugin, which does not write behind", left)
			}
		})
	}
}

func TestWriteBehindReleases(t *testing.T) {
	ctx := context.Background()
	s := fake.NewStore()
	dir := t.TempDir()
	p := pool(t, "", ranges.Spec{Range: "10.0.0.0/24"})
	a := agentAlloc(s, &fake.Locker{}, "n1", dir, 4, time.Hour, 200*time.Millisecond)
	written, err := a.Allocate(ctx, p, owner(0), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	journaled, err := a.Allocate(ctx, p, owner(1), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	writes := s.Writes()
	// A journaled allocation released goes back to the node's holds at once, with no write.
	if err := a.Release(ctx, "", owner(1), 0); err != nil {
		t.Fatal(err)
	}
	if again, err := a.Allocate(ctx, p, owner(2), netip.Addr{}); err != nil || again != journaled {
		t.Fatalf("after releasing %s: got %s, %v; want it again", journaled, again, err)
	}
	// A written allocation released is journaled: still in the store until the flush.
	if err := a.Release(ctx, "", owner(0), 0); err != nil {
		t.Fatal(err)
	}
	if w := s.Writes(); w != writes {
		t.Fatalf("%d writes for two releases and an ADD; want none", w-writes)
	}
	if al := entries(s)[written.String()]; al.ContainerID != owner(0).ContainerID {
		t.Fatalf("%s before the flush: %v", written, al)
	}
	// Its address is a hold only once written: until then the block still shows owner 0 there
	// (the reconciler may free it meanwhile), so it is not handed out.
	if other, err := a.Allocate(ctx, p, owner(3), netip.Addr{}); err != nil || other == written {
		t.Fatalf("ADD before the flush got %s, %v; want an address other than %s", other, err, written)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if al := entries(s)[written.String()]; al.ContainerID != "" || al.HeldUntil == nil {
		t.Fatalf("%s after the flush: %q; want a hold of n1", written, al.String())
	}
	// The node stays idle: its holds go back and the block with owner 2 alone stays.
	deadline := time.Now().Add(5 * time.Second)
	for heldBy(s, "n1") > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if h, n := heldBy(s, "n1"), len(entries(s)); h != 0 || n != 2 {
		t.Fatalf("after the idle time: %d holds, %d entries; want 0 and owners 2 and 3", h, n)
	}
	for _, o := range []int{2, 3} {
		if err := a.Release(ctx, "", owner(o), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for len(s.Blocks()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(s.Blocks()); n != 0 {
		t.Fatalf("%d blocks left once everything was released and the holds went back: %v", n, entries(s))
	}
}

// Another node borrowing from a full pool never takes a node's hold; a requested address that is
// a hold is refused naming the node, unless the node asks for it itself.
func TestHoldsAreNotBorrowed(t *testing.T) {
	ctx := context.Background()
	s := fake.NewStore()
	l := &fake.Locker{}
	p := pool(t, "", ranges.Spec{Range: "10.0.0.0/27"}) // one block, 30 usable addresses
	a := agentAlloc(s, l, "n1", t.TempDir(), 8, time.Hour, time.Hour)
	if _, err := a.Allocate(ctx, p, owner(0), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	held := map[string]bool{}
	for k, al := range entries(s) {
		if al.HeldUntil != nil {
			held[k] = true
		}
	}
	b := newAlloc(s, l, "n2")
	for i := 1; i <= 21; i++ {
		addr, err := b.Allocate(ctx, p, owner(i), netip.Addr{})
		if err != nil {
			t.Fatalf("borrow %d: %v", i, err)
		}
		if held[addr.String()] {
			t.Fatalf("n2 borrowed %s, held by n1", addr)
		}
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := b.Allocate(short, p, owner(22), netip.Addr{}); err == nil || !strings.Contains(err.Error(), "set aside by the IPAM agents of nodes n1") {
		t.Fatalf("n2 with only n1's holds left: %v; want it to wait for them, naming n1", err)
	}
	for k := range held {
		_, err := b.Allocate(ctx, p, owner(30), netip.MustParseAddr(k))
		if err == nil || !strings.Contains(err.Error(), "node n1's IPAM agent") {
			t.Fatalf("requesting n1's hold %s from n2: %v", k, err)
		}
		if addr, err := a.Allocate(ctx, p, owner(31), netip.MustParseAddr(k)); err != nil || addr.String() != k {
			t.Fatalf("requesting n1's hold %s on n1: %s, %v", k, addr, err)
		}
		break
	}
}

// Ten agents writing behind, 1,000 ADDs 50 at a time: no address twice, and once flushed every
// owner is in the store.
func TestWriteBehindConcurrentNodesNoDuplicates(t *testing.T) {
	ctx := context.Background()
	s := fake.NewStore()
	l := &fake.Locker{}
	p := pool(t, "", ranges.Spec{Range: "10.10.0.0/22"})
	const total, nodes = 1000, 10
	agents := make([]*allocator.Allocator, nodes)
	for i := range agents {
		agents[i] = agentAlloc(s, l, fmt.Sprintf("node-%d", i), filepath.Join(t.TempDir(), "n"), 16, 20*time.Millisecond, 50*time.Millisecond)
	}
	allocateAll(t, p, total, 50, func(i int) *allocator.Allocator { return agents[i%nodes] })
	for _, a := range agents {
		if err := a.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	owners := 0
	for _, al := range entries(s) {
		if al.ContainerID != "" {
			owners++
		}
	}
	if owners != total {
		t.Fatalf("%d owners in the store after the flush; want %d", owners, total)
	}
	if w := s.Writes(); w >= total/2 {
		t.Fatalf("%d block writes for %d ADDs; write-behind should need far fewer", w, total)
	}
}

// A plugin in direct mode on the node (the agent restarting, or not answering in time) writes the
// agent's journaled allocations and forgets them; the agent's cache still shows those addresses
// as holds, and must not hand them out again.
func TestWriteBehindAfterADirectModeWrite(t *testing.T) {
	ctx := context.Background()
	s := fake.NewStore()
	l := &fake.Locker{}
	dir := t.TempDir()
	p := pool(t, "", ranges.Spec{Range: "10.0.0.0/24"})
	a := agentAlloc(s, l, "n1", dir, 8, time.Hour, time.Hour)
	d := allocator.New(s, l, allocator.Options{Node: "n1", Cache: &allocator.MemoryCache{}, Journal: allocator.FileJournal{Dir: dir}})
	taken := map[netip.Addr]int{}
	alloc := func(x *allocator.Allocator, i int) {
		t.Helper()
		addr, err := x.Allocate(ctx, p, owner(i), netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := taken[addr]; dup {
			t.Fatalf("%s handed to owner %d and owner %d", addr, prev, i)
		}
		taken[addr] = i
	}
	for i := 0; i < 4; i++ {
		alloc(a, i) // the claim, then three holds, journaled
	}
	alloc(d, 10) // writes the journal and forgets it
	for i := 20; i < 28; i++ {
		alloc(a, i)
	}
}

// The node goes idle with an allocation and a release still only journaled: giving back its
// holds writes those too, and frees every hold of the block (the block being written anyway),
// the one the release made included.
func TestHoldsGoBackWithTheJournal(t *testing.T) {
	ctx := context.Background()
	s := fake.NewStore()
	p := pool(t, "", ranges.Spec{Range: "10.0.0.0/24"})
	a := agentAlloc(s, &fake.Locker{}, "n1", t.TempDir(), 8, time.Hour, 100*time.Millisecond)
	for i := 0; i < 3; i++ {
		if _, err := a.Allocate(ctx, p, owner(i), netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Release(ctx, "", owner(0), 0); err != nil { // written by the claim: journaled
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for (heldBy(s, "n1") > 0 || len(entries(s)) != 2) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	got := entries(s)
	if h := heldBy(s, "n1"); h != 0 || len(got) != 2 {
		t.Fatalf("after the idle time: %d holds and entries %v; want owners 1 and 2 only", h, got)
	}
}

// An agent that stops writes its journal and gives back what it set aside: plugins in direct
// mode, and other nodes, can use every address it did not hand out.
func TestCloseGivesBackHolds(t *testing.T) {
	ctx := context.Background()
	s := fake.NewStore()
	dir := t.TempDir()
	p := pool(t, "", ranges.Spec{Range: "10.0.0.0/24"})
	a := agentAlloc(s, &fake.Locker{}, "n1", dir, 8, time.Hour, time.Hour)
	for i := 0; i < 3; i++ {
		if _, err := a.Allocate(ctx, p, owner(i), netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if h, n := heldBy(s, "n1"), len(entries(s)); h != 0 || n != 3 {
		t.Fatalf("after Close: %d holds, %d entries; want none and the 3 owners", h, n)
	}
	if left, _ := (allocator.FileJournal{Dir: dir}).Keys(); len(left) != 0 {
		t.Fatalf("journal %v left after Close", left)
	}
}
