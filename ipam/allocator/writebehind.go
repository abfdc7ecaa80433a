package allocator

import (
	"context"
	"encoding/json"
	"maps"
	"math/big"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// Write-behind (the node agent). One IPBlock write per address is one Kubernetes request per
// network of every pod. The agent therefore sets addresses aside ahead of need: each block it
// writes for an allocation also gets up to Options.Holds *holds* (entries with the node, the pool
// and HeldUntil, and no holder), which nobody else hands out. The next allocations of that pool
// on the node take a hold with no API request: the change is appended to the node's Journal and
// synced before the answer leaves, and the block is written with everything changed since
// FlushAfter later (or with the next write of that block). Releases of the node's own blocks are
// journaled the same way and their addresses become holds once written. Holds the node has not
// used for ReturnIdle are written back free; a hold is handed out only while more than half of
// HoldFor is left, and the reconciler frees a hold once HeldUntil has passed, so an agent that
// never comes back cannot keep addresses.
//
// Whoever takes the node lock first writes what the journal holds: the agent's next round, or a
// plugin process in direct mode while the agent is down. The journal lives under the lock
// directory (/run: it does not outlive a reboot, and neither do the node's sandboxes).

const (
	defaultFlushAfter = 3 * time.Second
	defaultHoldFor    = 10 * time.Minute
	defaultReturnIdle = 2 * time.Second
	// backgroundTimeout bounds a flush or a return of holds.
	backgroundTimeout = 30 * time.Second
)

// staged is the journal of one node lock key as a round sees it.
type staged struct {
	network string
	changes []Change        // not yet written, latest per address
	added   []Change        // recorded in this round, to append
	dropped bool            // a change was dropped (it could not apply), so the record is rewritten
	foreign bool            // another process wrote the journal since this allocator did
	pending map[string]bool // block+"/"+addr: has a change not yet written
}

func stagedKey(block, addr string) string { return block + "/" + addr }

// loadStaged reads the journal of key (nothing without a Journal). st.foreign tells that another
// process wrote the journal since this allocator last did: it may have written and forgotten
// changes this allocator's cache does not show yet, so the blocks must be read fresh before a
// hold is handed out.
func (a *Allocator) loadStaged(key, network string) (*staged, error) {
	st := &staged{network: network, pending: map[string]bool{}}
	if a.opts.Journal == nil {
		return st, nil
	}
	stamp, err := a.opts.Journal.Stamp(key)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	last, known := a.stamps[key]
	a.mu.Unlock()
	st.foreign = known && last != stamp
	changes, err := a.opts.Journal.Load(key)
	if err != nil {
		return nil, err
	}
	st.changes = changes
	for _, c := range changes {
		st.pending[stagedKey(c.Block, c.Addr)] = true
	}
	return st, nil
}

// apply puts the changes onto blocks (this node's, as read). A change applies onto the entry it
// replaced or onto what it writes; a freed address is taken back by an allocation whose hold was
// freed meanwhile. Anything else there is someone else's: the change is dropped and logged. On
// fresh data a change of a block that is gone is dropped too. It returns the blocks changed.
func (st *staged) apply(ctx context.Context, blocks []v1alpha1.IPBlock, fresh bool) map[int]bool {
	byName := make(map[string]int, len(blocks))
	for i := range blocks {
		byName[blocks[i].Name] = i
	}
	dirty := map[int]bool{}
	kept := st.changes[:0]
	for _, c := range st.changes {
		i, ok := byName[c.Block]
		if !ok {
			if fresh {
				logr.FromContextOrDiscard(ctx).Error(nil, "dropping a journaled change of an IP block that is gone", "block", c.Block, "address", c.Addr, "entry", c.Entry)
				st.drop(c)
				continue
			}
			kept = append(kept, c)
			continue
		}
		b := &blocks[i]
		cur := entryText(b, c.Addr)
		switch {
		case cur == c.Entry:
		case cur == c.Was, cur == "" && c.Entry != "" && isHold(c.Was):
			setEntry(b, c.Addr, c.Entry)
		default:
			logr.FromContextOrDiscard(ctx).Error(nil, "dropping a journaled change: the address holds another entry", "block", c.Block, "address", c.Addr, "entry", c.Entry, "found", cur)
			st.drop(c)
			continue
		}
		dirty[i] = true
		kept = append(kept, c)
	}
	st.changes = kept
	return dirty
}

// holdsChange reports whether addr has a change not yet written.
func (st *staged) holdsChange(addr netip.Addr) bool {
	for _, c := range st.changes {
		if c.Addr == addr.String() {
			return true
		}
	}
	return false
}

func (st *staged) drop(c Change) {
	st.dropped = true
	delete(st.pending, stagedKey(c.Block, c.Addr))
}

// record changes addr of b to entry (nil frees it) and journals the change.
func (st *staged) record(b *v1alpha1.IPBlock, addr string, entry *v1alpha1.Allocation) {
	c := Change{Network: st.network, Block: b.Name, Addr: addr, Was: entryText(b, addr)}
	if entry != nil {
		c.Entry = entry.String()
		setEntry(b, addr, c.Entry)
	} else {
		delete(b.Spec.Allocations, addr)
	}
	st.added = append(st.added, c)
	for i := range st.changes {
		if st.changes[i].Block == c.Block && st.changes[i].Addr == c.Addr {
			st.changes[i].Entry = c.Entry
			if st.changes[i].Was == c.Entry { // changed back: nothing left to write
				st.changes = append(st.changes[:i], st.changes[i+1:]...)
				delete(st.pending, stagedKey(c.Block, addr))
			}
			return
		}
	}
	st.changes = append(st.changes, c)
	st.pending[stagedKey(c.Block, addr)] = true
}

// revert undoes the journaled allocations of owner in blocks (the address is the node's hold
// again, at once: it was never written as the owner's). It reports how many it undid.
func (st *staged) revert(blocks []v1alpha1.IPBlock, owner Owner) int {
	n := 0
	for _, c := range append([]Change(nil), st.changes...) {
		al, err := v1alpha1.ParseAllocation(c.Entry)
		if err != nil || al.HeldUntil != nil || al.ReservedUntil != nil || al.ContainerID != owner.ContainerID || al.IfName != owner.IfName {
			continue
		}
		for i := range blocks {
			if blocks[i].Name != c.Block {
				continue
			}
			var was *v1alpha1.Allocation
			if c.Was != "" {
				w, err := v1alpha1.ParseAllocation(c.Was)
				if err != nil {
					continue
				}
				was = &w
			}
			st.record(&blocks[i], c.Addr, was)
			n++
		}
	}
	return n
}

// commit appends what this round recorded; its callers may be answered once it returns.
func (a *Allocator) commitStaged(key string, st *staged) error {
	if a.opts.Journal == nil {
		return nil
	}
	if len(st.added) == 0 {
		a.restamp(key)
		return nil
	}
	err := a.opts.Journal.Append(key, st.added)
	st.added = nil
	a.restamp(key)
	return err
}

// restamp remembers the journal's version this allocator wrote last.
func (a *Allocator) restamp(key string) {
	stamp, err := a.opts.Journal.Stamp(key)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		delete(a.stamps, key) // unknown: the next round trusts its cache as before the journal
		return
	}
	a.stamps[key] = stamp
}

// prune forgets the changes of the blocks just written, and those dropped.
func (a *Allocator) pruneStaged(ctx context.Context, key string, st *staged, written map[string]bool) {
	if a.opts.Journal == nil {
		return
	}
	kept := st.changes[:0]
	for _, c := range st.changes {
		if !written[c.Block] {
			kept = append(kept, c)
			continue
		}
		delete(st.pending, stagedKey(c.Block, c.Addr))
	}
	if len(kept) == len(st.changes) && !st.dropped {
		return
	}
	st.changes, st.dropped = kept, false
	if err := a.opts.Journal.Replace(key, kept); err != nil {
		// The changes written are applied again onto themselves next time: no harm but a write.
		logr.FromContextOrDiscard(ctx).Error(err, "could not shorten the IPAM journal", "key", key)
	}
	a.restamp(key)
}

// takeHold hands out the lowest usable hold of pool in blocks (sorted): one of this node's, with
// more than half of HoldFor left, written (no change pending on it).
func (a *Allocator) takeHold(st *staged, blocks []v1alpha1.IPBlock, pool Pool, owner Owner) (netip.Addr, bool) {
	limit := a.opts.Clock().Add(a.opts.HoldFor / 2)
	for i := range blocks {
		b := &blocks[i]
		var best netip.Addr
		for key, al := range b.Spec.Allocations {
			if al.HeldUntil == nil || al.Node != a.opts.Node || al.Pool != pool.Name || !al.HeldUntil.After(limit) || st.pending[stagedKey(b.Name, key)] {
				continue
			}
			addr, ok := usableKey(key, al)
			if ok && pool.Range.Contains(addr) && (!best.IsValid() || addr.Less(best)) {
				best = addr
			}
		}
		if best.IsValid() {
			entry := a.allocation(pool, owner)
			st.record(b, best.String(), &entry)
			return best, true
		}
	}
	return netip.Addr{}, false
}

// addHolds sets aside free addresses of pool in b, which is about to be written, until this node
// holds Holds of them there.
func (a *Allocator) addHolds(b *v1alpha1.IPBlock, pool Pool) {
	if a.opts.Holds <= 0 || a.isTight(pool.Name) {
		return
	}
	have := 0
	now := a.opts.Clock()
	for _, al := range b.Spec.Allocations {
		if al.HeldUntil != nil && al.Node == a.opts.Node && al.Pool == pool.Name && al.HeldUntil.After(now.Add(a.opts.HoldFor/2)) {
			have++
		}
	}
	until := metav1.NewTime(now.Add(a.opts.HoldFor).Truncate(time.Second))
	for ; have < a.opts.Holds; have++ {
		addr, ok := lowestFree(b, pool)
		if !ok {
			return
		}
		if b.Spec.Allocations == nil {
			b.Spec.Allocations = map[string]v1alpha1.Allocation{}
		}
		b.Spec.Allocations[addr.String()] = a.hold(pool.Name, until)
	}
}

// dropHolds frees this node's holds in b (b is about to be written); it reports whether there
// were any. A hold only journaled (a release) has its change turned into the address freed.
func (a *Allocator) dropHolds(st *staged, b *v1alpha1.IPBlock) bool {
	changed := false
	for _, key := range slices.Sorted(maps.Keys(b.Spec.Allocations)) {
		al := b.Spec.Allocations[key]
		if al.HeldUntil == nil || al.Node != a.opts.Node {
			continue
		}
		if st.pending[stagedKey(b.Name, key)] {
			st.record(b, key, nil)
		} else {
			delete(b.Spec.Allocations, key)
		}
		changed = true
	}
	return changed
}

// tightFor is how long a pool found with no free address gets no new holds from this node.
const tightFor = time.Minute

// noteFill marks pool tight when a listing of its blocks shows less than a quarter of it free:
// addresses set aside then would soon be what other nodes wait for.
func (a *Allocator) noteFill(pool Pool, blocks []v1alpha1.IPBlock) {
	if a.opts.Holds <= 0 {
		return
	}
	u := PoolUsage(pool, blocks)
	if new(big.Int).Mul(u.Free, big.NewInt(4)).Cmp(u.Size) < 0 {
		a.markTight(pool.Name)
	}
}

func (a *Allocator) markTight(pool string) {
	a.mu.Lock()
	a.tight[pool] = a.opts.Clock()
	a.mu.Unlock()
}

func (a *Allocator) isTight(pool string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.tight[pool]
	return ok && a.opts.Clock().Sub(at) < tightFor
}

func (a *Allocator) hold(pool string, until metav1.Time) v1alpha1.Allocation {
	return v1alpha1.Allocation{Pool: pool, Node: a.opts.Node, HeldUntil: &until}
}

// released turns the addresses owner freed in b (before is b's entries before the release) into
// holds of this node, journaled rather than written, when this allocator writes behind.
func (a *Allocator) stageRelease(st *staged, b *v1alpha1.IPBlock, before map[string]v1alpha1.Allocation) {
	until := metav1.NewTime(a.opts.Clock().Add(a.opts.HoldFor).Truncate(time.Second))
	keys := make([]string, 0, len(before))
	for key := range before {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		old := before[key]
		now, ok := b.Spec.Allocations[key]
		if ok && now.String() == old.String() {
			continue
		}
		setEntry(b, key, old.String()) // record computes Was from the block as it was
		switch {
		case ok:
			st.record(b, key, &now)
		default:
			h := a.hold(old.Pool, until)
			st.record(b, key, &h)
		}
	}
}

// scheduleFlush writes the journal of network's key FlushAfter from now, unless a flush is due.
func (a *Allocator) scheduleFlush(ctx context.Context, network string) {
	key := NetworkKey(network) + "." + a.opts.Node
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.flushes[key] {
		return
	}
	a.flushes[key] = true
	time.AfterFunc(a.opts.FlushAfter, func() {
		a.mu.Lock()
		delete(a.flushes, key)
		a.mu.Unlock()
		a.background(ctx, &pending{network: network, flush: true})
	})
}

// touchHolds (re)starts the wait after which network's unused holds go back.
func (a *Allocator) touchHolds(ctx context.Context, network string) {
	key := NetworkKey(network) + "." + a.opts.Node
	a.mu.Lock()
	defer a.mu.Unlock()
	a.used[key] = network
	if t, ok := a.idle[key]; ok {
		t.Reset(a.opts.ReturnIdle)
		return
	}
	a.idle[key] = time.AfterFunc(a.opts.ReturnIdle, func() {
		a.mu.Lock()
		delete(a.idle, key)
		a.mu.Unlock()
		a.background(ctx, &pending{network: network, flush: true, giveBack: true})
	})
}

// background runs p as a round of its own (a flush, a return of holds), logging a failure.
func (a *Allocator) background(ctx context.Context, p *pending) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backgroundTimeout)
	defer cancel()
	p.ctx = ctx
	if _, err := a.enqueue(p); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "could not write the node's journaled IPAM changes; trying again", "network", p.network, "after", a.opts.FlushAfter.String())
		a.scheduleFlush(ctx, p.network)
	}
}

// Flush writes every change the journal holds (an agent starting: what a predecessor left), and
// returns the first error.
func (a *Allocator) Flush(ctx context.Context) error {
	return a.flushAll(ctx, false)
}

// Close writes every change the journal holds and gives back the holds of every network this
// allocator handed out addresses of (an agent stopping): a node whose agent is gone keeps no
// address set aside that its plugins in direct mode, or other nodes, cannot use.
func (a *Allocator) Close(ctx context.Context) error {
	return a.flushAll(ctx, true)
}

func (a *Allocator) flushAll(ctx context.Context, giveBack bool) error {
	if a.opts.Journal == nil {
		return nil
	}
	keys, err := a.opts.Journal.Keys()
	if err != nil {
		return err
	}
	networks := map[string]string{}
	for _, key := range keys {
		changes, err := a.opts.Journal.Load(key)
		if err == nil && len(changes) > 0 && NetworkKey(changes[0].Network)+"."+a.opts.Node == key {
			networks[key] = changes[0].Network // not another node's name, nor someone else's file
		}
	}
	if giveBack {
		a.mu.Lock()
		maps.Copy(networks, a.used)
		a.mu.Unlock()
	}
	var first error
	for _, key := range slices.Sorted(maps.Keys(networks)) {
		_, err := a.enqueue(&pending{ctx: ctx, network: networks[key], flush: true, giveBack: giveBack})
		first = firstErr(first, err)
	}
	return first
}

func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func entryText(b *v1alpha1.IPBlock, addr string) string {
	if al, ok := b.Spec.Allocations[addr]; ok {
		return al.String()
	}
	return ""
}

func setEntry(b *v1alpha1.IPBlock, addr, text string) {
	if text == "" {
		delete(b.Spec.Allocations, addr)
		return
	}
	if b.Spec.Allocations == nil {
		b.Spec.Allocations = map[string]v1alpha1.Allocation{}
	}
	quoted, _ := json.Marshal(text) // a string always encodes
	var al v1alpha1.Allocation
	_ = al.UnmarshalJSON(quoted) // a text that does not parse stays as it was (malformed)
	b.Spec.Allocations[addr] = al
}

func isHold(text string) bool {
	al, err := v1alpha1.ParseAllocation(text)
	return err == nil && al.HeldUntil != nil
}
