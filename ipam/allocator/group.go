package allocator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// Group commit. The API server spends ~5 ms of CPU on every IPBlock write, whatever it holds;
// with one write per ADD that is the floor of a busy node. Allocations of one node and network
// therefore queue up while a write is in flight and the next write records all of them: each
// block is written once per round, with every address it gains. Correctness is unchanged: every
// write is conditional on the resourceVersion it was based on, and a lost race puts the
// allocations it carried back into the next round, on fresh data.

// pending is one caller's allocation, or release, waiting in a group.
type pending struct {
	ctx     context.Context
	network string
	owner   Owner
	// pool is the pool of an allocation.
	pool Pool
	// release marks a release, with its stickyTTL.
	release   bool
	stickyTTL time.Duration
	// flush asks for the journaled changes to be written; giveBack also frees unused holds.
	flush, giveBack bool
	done            chan struct{}

	mu       sync.Mutex
	addr     netip.Addr
	err      error
	lastErr  error // the last retryable failure met on the caller's behalf
	finished bool
}

// finish answers p's caller; a second answer (a round that panicked after answering some of
// its callers) is ignored.
func (p *pending) finish(addr netip.Addr, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.addr, p.err, p.finished = addr, err, true
	close(p.done)
}

func (p *pending) setLastErr(err error) {
	p.mu.Lock()
	p.lastErr = err
	p.mu.Unlock()
}

// group is the queue of one node lock key; a drain goroutine runs while it is not empty.
type group struct {
	queue []*pending
}

func (a *Allocator) allocateGrouped(ctx context.Context, pool Pool, owner Owner) (netip.Addr, error) {
	return a.enqueue(&pending{ctx: ctx, network: pool.Network, pool: pool, owner: owner})
}

// enqueue queues p in the group of its node lock key, starting the group's drain when it is
// not running, and waits for p's answer or for p's caller to give up.
func (a *Allocator) enqueue(p *pending) (netip.Addr, error) {
	p.done = make(chan struct{})
	key := NetworkKey(p.network) + "." + a.opts.Node
	a.mu.Lock()
	g, running := a.groups[key]
	if !running {
		g = &group{}
		a.groups[key] = g
	}
	g.queue = append(g.queue, p)
	a.mu.Unlock()
	if !running {
		go a.drain(key, g)
	}
	select {
	case <-p.done:
	case <-p.ctx.Done():
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.lastErr != nil {
			return netip.Addr{}, fmt.Errorf("%w (last error: %w)", p.ctx.Err(), p.lastErr)
		}
		return netip.Addr{}, fmt.Errorf("waiting for the node's other allocations in network %q: %w", p.network, p.ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr, p.err
}

// drain commits the queue of key a round at a time until it is empty. Callers that arrive while
// a round is in flight, or while the API server is being waited for, join the next round.
func (a *Allocator) drain(key string, g *group) {
	var batch []*pending
	fresh, races, backoff := false, 0, 50*time.Millisecond
	for {
		a.mu.Lock()
		batch = append(batch, g.queue...)
		g.queue = nil
		if len(batch) == 0 {
			delete(a.groups, key)
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		if batch = live(batch); len(batch) == 0 {
			continue
		}
		ctx, cancel := batchContext(batch)
		start := time.Now()
		n := len(batch)
		next, raced, err := a.commitSafely(ctx, key, batch, fresh)
		logr.FromContextOrDiscard(ctx).V(2).Info("round", "callers", n, "left", len(next), "raced", raced, "fresh", fresh, "took", time.Since(start).String())
		expired := ctx.Err() != nil
		cancel()
		batch = next
		switch {
		case err != nil && expired:
			// Every caller has given up; live answers them with what they met before.
		case err != nil && !errors.Is(err, ErrUnavailable):
			for _, p := range batch {
				p.finish(netip.Addr{}, err)
			}
			batch = nil
		case err != nil:
			logr.FromContextOrDiscard(ctx).V(1).Info("API server unavailable, retrying", "after", backoff, "error", err.Error())
			for _, p := range batch {
				p.setLastErr(err)
			}
			pause(batch, backoff)
			backoff = min(2*backoff, time.Second)
			fresh = true
		case raced:
			fresh = true
			if races++; races >= a.opts.MaxAttempts {
				for _, p := range batch {
					p.finish(netip.Addr{}, fmt.Errorf("gave up after %d lost races with other writers: %w", races, ErrConflict))
				}
				batch = nil
			}
		default:
			fresh, races, backoff = false, 0, 50*time.Millisecond
		}
	}
}

// commitSafely is commit with a panic turned into an error for the round's callers: a bug met
// on malformed data fails the calls that met it, never the process hosting the allocator (the
// node daemon). The node lock is released by commit's deferred unlock as the panic unwinds.
func (a *Allocator) commitSafely(ctx context.Context, key string, batch []*pending, fresh bool) (next []*pending, raced bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error of plexus-ipam in network %q (please report it): %v", batch[0].network, r)
			logr.FromContextOrDiscard(ctx).Error(err, "recovered from a panic in a group round", "stack", string(debug.Stack()))
			next, raced = batch, false
		}
	}()
	return a.commit(ctx, key, batch, fresh)
}

// commit runs one round under the node lock.
func (a *Allocator) commit(ctx context.Context, key string, batch []*pending, fresh bool) ([]*pending, bool, error) {
	unlock, err := a.locker.Lock(ctx, key)
	if err != nil {
		return batch, false, fmt.Errorf("taking the node lock for network %q: %w", batch[0].network, err)
	}
	defer unlock()
	return a.commitRound(ctx, NetworkKey(batch[0].network), batch, fresh)
}

// pause sleeps for d, or until the first deadline of batch.
func pause(batch []*pending, d time.Duration) {
	for _, p := range batch {
		if dl, ok := p.ctx.Deadline(); ok {
			d = min(d, time.Until(dl))
		}
	}
	time.Sleep(max(d, 0))
}

// commitRound runs one round: releases found in this node's blocks are applied, then every
// caller that fits in this node's blocks gets the lowest free address, all written with one
// conditional write per block; releases elsewhere and callers that do not fit are served on
// their own or in the next round. With write-behind (Options.Holds) callers are first given the
// node's holds and releases are journaled, with no write (see writebehind.go). It returns the
// callers still waiting, and whether a race was lost (the next round must read fresh data).
func (a *Allocator) commitRound(ctx context.Context, netKey string, batch []*pending, fresh bool) (next []*pending, raced bool, err error) {
	key := netKey + "." + a.opts.Node
	own, err := a.ownBlocks(ctx, netKey, fresh)
	if err != nil {
		return batch, false, err
	}
	sortBlocks(own)
	st, err := a.loadStaged(key, batch[0].network)
	if err != nil {
		return batch, false, fmt.Errorf("node %s, network %q: %w", a.opts.Node, batch[0].network, err)
	}
	if st.foreign && !fresh {
		// Another process on the node wrote blocks and forgot the changes it wrote: the cache
		// may show as a hold what it handed out.
		if own, err = a.ownBlocks(ctx, netKey, true); err != nil {
			return batch, false, err
		}
		sortBlocks(own)
		fresh = true
	}
	dirty := st.apply(ctx, own, fresh)
	r := round{writes: map[int][]*pending{}, addrs: map[*pending]netip.Addr{}}
	// Releases first: an address freed here may be handed out in the same write, never the
	// other way round.
	for _, p := range batch {
		if p.release {
			a.placeRelease(&r, st, own, p)
		}
	}
	for _, p := range batch {
		switch {
		case p.flush:
			r.flushers = append(r.flushers, p)
		case !p.release:
			next, raced = a.placeAllocation(&r, st, own, p, fresh, next, raced)
		}
	}
	a.addWrites(&r, st, own, dirty, batch)
	if err := a.commitStaged(key, st); err != nil {
		return batch, false, fmt.Errorf("recording the IPAM changes of node %s in its journal: %w", a.opts.Node, err)
	}
	for _, p := range r.local {
		p.finish(r.addrs[p], nil)
	}
	next2, raced2, written, unavailable := a.write(ctx, netKey, own, r.writes, r.addrs)
	next, raced = append(next, next2...), raced || raced2
	a.pruneStaged(ctx, key, st, written)
	for _, p := range r.flushers {
		if raced2 || unavailable != nil {
			next = append(next, p)
		} else {
			p.finish(netip.Addr{}, nil)
		}
	}
	if a.opts.Holds > 0 {
		if len(st.changes) > 0 {
			a.scheduleFlush(ctx, st.network)
		}
		if r.active {
			a.touchHolds(ctx, st.network)
		}
	}
	if len(r.elsewhere) > 0 && unavailable == nil {
		p := r.elsewhere[0]
		p.finish(netip.Addr{}, a.retry(p.ctx, func(at *attempt) error {
			return a.tryRelease(p.ctx, p.network, p.owner, p.stickyTTL, at.fresh)
		}))
		next = append(next, r.elsewhere[1:]...)
	} else {
		next = append(next, r.elsewhere...)
	}
	if len(r.unplaced) > 0 && unavailable == nil {
		rest, lostRace, err := a.placeElsewhere(ctx, netKey, r.unplaced)
		return append(next, rest...), raced || lostRace, err
	}
	return append(next, r.unplaced...), raced, unavailable
}

// round is what a round decided for its callers.
type round struct {
	writes map[int][]*pending // by index into the node's blocks: the callers a write answers
	addrs  map[*pending]netip.Addr
	// local are answered once the journal has their changes; flushers once the writes are done.
	local, flushers     []*pending
	unplaced, elsewhere []*pending
	// active: the round handed out or took back addresses (the node's holds stay a while).
	active bool
}

// placeRelease applies a release to this node's blocks: an allocation only journaled is undone
// at once; one written is journaled (write-behind) or written in this round; a release touching
// no block, or several, of this node goes on its own.
func (a *Allocator) placeRelease(r *round, st *staged, own []v1alpha1.IPBlock, p *pending) {
	r.active = true
	reverted := st.revert(own, p.owner)
	// A release is grouped when it touches one of this node's blocks (the usual DEL); one in a
	// borrowed block, in two blocks (dual-stack) or not in the cache goes on its own.
	touched, n := 0, 0
	for i := range own {
		if holds(own[i:i+1], p.owner) {
			touched, n = i, n+1
		}
	}
	switch {
	case n == 0 && reverted > 0:
		r.local = append(r.local, p)
	case n != 1:
		r.elsewhere = append(r.elsewhere, p)
	case a.opts.Holds > 0:
		before := maps.Clone(own[touched].Spec.Allocations)
		a.releaseIn(&own[touched], p.owner, p.stickyTTL)
		a.stageRelease(st, &own[touched], before)
		r.local = append(r.local, p)
	default:
		a.releaseIn(&own[touched], p.owner, p.stickyTTL)
		r.writes[touched] = append(r.writes[touched], p)
	}
}

// placeAllocation gives p its address: the one it holds (confirmed on fresh data unless only
// journaled), a hold of the node's, or the lowest free address of the node's blocks; or it
// leaves p unplaced.
func (a *Allocator) placeAllocation(r *round, st *staged, own []v1alpha1.IPBlock, p *pending, fresh bool, next []*pending, raced bool) ([]*pending, bool) {
	if addr, ok := findOwner(own, p.pool, p.owner); ok {
		if !fresh && !st.holdsChange(addr) {
			return append(next, p), true // confirm on fresh data before answering
		}
		p.finish(addr, nil)
		return next, raced
	}
	r.active = true
	if a.opts.Holds > 0 {
		if addr, ok := a.takeHold(st, own, p.pool, p.owner); ok {
			r.addrs[p] = addr
			r.local = append(r.local, p)
			return next, raced
		}
	}
	i, addr, ok := firstFree(own, p.pool)
	if !ok {
		r.unplaced = append(r.unplaced, p)
		return next, raced
	}
	if own[i].Spec.Allocations == nil {
		own[i].Spec.Allocations = map[string]v1alpha1.Allocation{}
	}
	own[i].Spec.Allocations[addr.String()] = a.allocation(p.pool, p.owner)
	r.writes[i] = append(r.writes[i], p)
	r.addrs[p] = addr
	return next, raced
}

// addWrites completes the round's writes: holds in each block written for an allocation, the
// journaled changes when they are due (a flush, or a process that does not write behind), and
// the node's unused holds freed when asked to give them back.
func (a *Allocator) addWrites(r *round, st *staged, own []v1alpha1.IPBlock, dirty map[int]bool, batch []*pending) {
	for i, ps := range r.writes {
		for _, p := range ps {
			if p.release {
				continue
			}
			if a.isTight(p.pool.Name) {
				// The pool has no free address left elsewhere: what this node set aside goes
				// back with this write.
				a.dropHolds(st, &own[i])
			} else {
				a.addHolds(&own[i], p.pool)
			}
			break
		}
	}
	flush := a.opts.Holds == 0 || len(r.flushers) > 0
	for i := range dirty {
		if _, ok := r.writes[i]; !ok && flush {
			r.writes[i] = nil
		}
	}
	for _, p := range batch {
		if !p.giveBack {
			continue
		}
		for i := range own {
			if _, ok := r.writes[i]; a.dropHolds(st, &own[i]) && !ok {
				r.writes[i] = nil
			}
		}
		return
	}
}

// placeElsewhere serves the callers that do not fit in this node's blocks. While the pool has
// blocks nobody claimed, the first caller claims one the way a lone ADD does and the others wait
// for the next round, where the new block takes them. When every block is claimed, they all
// borrow in this round: one listing, one conditional write per lending block.
func (a *Allocator) placeElsewhere(ctx context.Context, netKey string, unplaced []*pending) (next []*pending, raced bool, err error) {
	all, err := a.store.ListBlocks(ctx, netKey, "")
	if err != nil {
		return unplaced, false, fmt.Errorf("listing the IP blocks of network %q: %w", unplaced[0].pool.Network, err)
	}
	a.noteFill(unplaced[0].pool, all)
	var claimers, borrowers []*pending
	for _, p := range unplaced {
		if len(unclaimed(p.pool, all, nil, 1)) > 0 {
			claimers = append(claimers, p)
		} else {
			borrowers = append(borrowers, p)
		}
	}
	var waiting []*pending // only other nodes' holds are left: they wait for them
	var wait error
	if len(claimers) > 0 {
		// The others wait for the next round, where the claimed block takes them.
		var held *heldElsewhereError
		if err := a.claimFor(claimers[0], all); errors.As(err, &held) {
			waiting, wait = append(waiting, claimers[0]), err
		}
		next = claimers[1:]
	}
	if len(borrowers) == 0 {
		return append(next, waiting...), false, wait
	}
	sortBlocks(all)
	writes := map[int][]*pending{}
	addrs := map[*pending]netip.Addr{}
	start := rand.IntN(max(len(all), 1)) // borrowers of several nodes spread over the lenders
	for _, p := range borrowers {
		if addr, ok := findOwner(all, p.pool, p.owner); ok { // already holds a borrowed address
			p.finish(addr, nil)
			continue
		}
		placed := false
		for k := range all {
			i := (start + k) % len(all)
			addr, ok := lowestFree(&all[i], p.pool)
			if !ok {
				continue
			}
			if all[i].Spec.Allocations == nil {
				all[i].Spec.Allocations = map[string]v1alpha1.Allocation{}
			}
			all[i].Spec.Allocations[addr.String()] = a.allocation(p.pool, p.owner)
			writes[i], addrs[p], placed = append(writes[i], p), addr, true
			break
		}
		if !placed {
			err := a.exhausted(p.pool, all)
			if !errors.Is(err, ErrUnavailable) {
				p.finish(netip.Addr{}, err)
				continue
			}
			p.setLastErr(err)
			waiting, wait = append(waiting, p), err
		}
	}
	rest, raced, _, err := a.write(ctx, netKey, all, writes, addrs)
	if err == nil {
		err = wait
	}
	return append(append(next, rest...), waiting...), raced, err
}

// claimFor allocates for p the way a lone ADD does (claiming a block), starting from the
// blocks just listed. When only other nodes' holds are left p is not answered: it waits in the
// queue for them (the error says so).
func (a *Allocator) claimFor(p *pending, listed []v1alpha1.IPBlock) error {
	all := make([]v1alpha1.IPBlock, len(listed))
	for i := range listed {
		listed[i].DeepCopyInto(&all[i])
	}
	var addr netip.Addr
	err := a.retry(p.ctx, func(at *attempt) error {
		if at.all == nil && !at.fresh {
			at.all = all
		}
		var err error
		addr, err = a.tryAllocate(p.ctx, p.pool, p.owner, netip.Addr{}, at)
		return err
	})
	var held *heldElsewhereError
	if errors.As(err, &held) {
		p.setLastErr(err)
		return err
	}
	p.finish(addr, err)
	return err
}

// write records the allocations of writes (by index into blocks) with one conditional write per
// block and answers their callers. It returns the callers whose write lost a race or met an
// unavailable API server, and the names of the blocks written.
func (a *Allocator) write(ctx context.Context, netKey string, blocks []v1alpha1.IPBlock, writes map[int][]*pending, addrs map[*pending]netip.Addr) (next []*pending, raced bool, written map[string]bool, unavailable error) {
	written = map[string]bool{}
	order := make([]int, 0, len(writes))
	for i := range writes {
		order = append(order, i)
	}
	sort.Ints(order)
	for _, i := range order {
		updated, err := a.store.UpdateBlock(ctx, &blocks[i])
		switch {
		case errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound):
			next, raced = append(next, writes[i]...), true
		case errors.Is(err, ErrUnavailable):
			next, unavailable = append(next, writes[i]...), err
		case err != nil:
			for _, p := range writes[i] {
				what := "writing " + addrs[p].String() + " into"
				if p.release {
					what = "freeing the addresses of container " + p.owner.ContainerID + " in"
				}
				p.finish(netip.Addr{}, fmt.Errorf("%s IP block %s: %w", what, blocks[i].Name, err))
			}
		default:
			written[blocks[i].Name] = true
			a.remember(ctx, netKey, updated)
			// Before answering: a plugin process exits as soon as it has its answer.
			a.giveBackIfEmpty(ctx, netKey, updated)
			for _, p := range writes[i] {
				p.finish(addrs[p], nil)
			}
		}
	}
	return next, raced, written, unavailable
}

// firstFree is the lowest free address of pool in blocks (sorted), and its block's index.
func firstFree(blocks []v1alpha1.IPBlock, pool Pool) (int, netip.Addr, bool) {
	for i := range blocks {
		if addr, ok := lowestFree(&blocks[i], pool); ok {
			return i, addr, true
		}
	}
	return 0, netip.Addr{}, false
}

// live drops the callers that have given up, answering them with their context's error.
func live(batch []*pending) []*pending {
	out := batch[:0]
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			p.mu.Lock()
			last := p.lastErr
			p.mu.Unlock()
			if last != nil {
				err = fmt.Errorf("%w (last error: %w)", err, last)
			}
			p.finish(netip.Addr{}, err)
			continue
		}
		out = append(out, p)
	}
	return out
}

// batchContext lasts as long as the most patient caller of batch, and carries the first caller's
// logger.
func batchContext(batch []*pending) (context.Context, context.CancelFunc) {
	base := context.WithoutCancel(batch[0].ctx)
	var latest time.Time
	for _, p := range batch {
		d, ok := p.ctx.Deadline()
		if !ok {
			return context.WithCancel(base)
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(base, latest)
}
