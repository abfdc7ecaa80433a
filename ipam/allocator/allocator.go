package allocator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	"github.com/plexus-project/plexus/ipam/ranges"
)

// Owner identifies the holder of an address: the CNI attachment and its pod.
type Owner struct {
	ContainerID, IfName   string
	PodNamespace, PodName string
	PodUID                string
}

// ExhaustedError says a pool has no free address left.
type ExhaustedError struct {
	Pool string
	Size string
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("IP pool %s is exhausted: all %s addresses are allocated; free addresses (delete pods) or widen the range", e.Pool, e.Size)
}

// TakenError says a requested address is held by someone else.
type TakenError struct {
	Addr   netip.Addr
	Holder v1alpha1.Allocation
}

func (e *TakenError) Error() string {
	if problem, bad := e.Holder.Malformed(); bad {
		return fmt.Sprintf("requested address %s is held by a malformed entry of its IP block (%s): fix or remove the entry, or ask for another address", e.Addr, problem)
	}
	holder := fmt.Sprintf("container %s, interface %s", e.Holder.ContainerID, e.Holder.IfName)
	if e.Holder.ReservedUntil != nil {
		holder = "a sticky reservation until " + e.Holder.ReservedUntil.UTC().Format(time.RFC3339)
	}
	if e.Holder.HeldUntil != nil {
		holder = "node " + e.Holder.Node + "'s IPAM agent, which set it aside for its next pods until " + e.Holder.HeldUntil.UTC().Format(time.RFC3339)
	}
	if e.Holder.PodName != "" {
		holder = fmt.Sprintf("pod %s/%s (%s)", e.Holder.PodNamespace, e.Holder.PodName, holder)
	}
	return fmt.Sprintf("requested address %s is already allocated to %s: ask for a free address or none", e.Addr, holder)
}

// errRetry marks a lost race: the attempt is repeated on fresh data, spreading its choice.
var errRetry = errors.New("lost a race, retrying")

// errStale marks cached data that must be confirmed: the attempt is repeated on fresh data.
var errStale = errors.New("cached data needs confirming")

// claimLostError: another node created the block first; the next try claims another one.
type claimLostError struct{ cidr netip.Prefix }

func (e *claimLostError) Error() string {
	return "lost the race to claim " + e.cidr.String() + ", retrying"
}

// relistAfterLostClaims is how many lost claims are tried on one listing of the network's blocks
// before listing again: a lost claim teaches one taken block, a listing all of them.
const relistAfterLostClaims = 4

// attempt tells a try what the previous tries met.
type attempt struct {
	// fresh: read from the API server, not from the cache.
	fresh bool
	// afterRace: an earlier try lost a race; spread choices instead of taking the lowest.
	afterRace bool
	// all is the network's blocks as the previous try listed them, kept after a lost claim
	// together with the blocks it lost (lost), so the next claim costs a create, not a listing.
	all  []v1alpha1.IPBlock
	lost []netip.Prefix
}

// Options configure an Allocator.
type Options struct {
	// Node is the node this allocator allocates for (required).
	Node string
	// Clock defaults to time.Now.
	Clock Clock
	// MaxAttempts bounds the retries after lost races; default 64.
	MaxAttempts int
	// Cache, when set, remembers this node's blocks between calls so an allocation needs one
	// conditional write instead of a list and a write. A stale cache costs a retry, never a
	// wrong answer: every write carries the resourceVersion it was based on.
	Cache Cache
	// Journal, when set, is the node-local record of changes to this node's blocks not yet
	// written (see writebehind.go); whoever takes the node lock writes what it holds.
	Journal Journal
	// Holds, when > 0 (the node agent; requires Journal), is how many addresses of a pool each
	// block this allocator writes sets aside for the node, to be handed out later with a journal
	// record instead of an API write.
	Holds int
	// FlushAfter is how long journaled changes wait to be written (default 3s); HoldFor how long
	// a hold lasts (default 10m: it is handed out only in its first half, and the reconciler frees
	// it when it ends); ReturnIdle how long holds a node does not use stay (default 2s).
	FlushAfter, HoldFor, ReturnIdle time.Duration
}

// Allocator hands out and releases addresses for one node. It is safe for concurrent use:
// concurrent allocations and releases of one network are committed together (see group.go).
type Allocator struct {
	store  Store
	locker Locker
	opts   Options

	mu     sync.Mutex
	groups map[string]*group // pending allocations by node lock key
	// flushes marks the keys with a flush scheduled; idle holds the timers returning holds.
	flushes map[string]bool
	idle    map[string]*time.Timer
	tight   map[string]time.Time // pools found with no free address, when
	stamps  map[string]string    // the journal version this allocator wrote last, by key
	used    map[string]string    // networks it set addresses aside in, by key
	pools   sync.Map             // names of the IPPools this allocator created or found existing
}

// New returns an Allocator writing through store and serialising this node's writers by locker.
func New(store Store, locker Locker, opts Options) *Allocator {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = 64
	}
	if opts.Journal == nil {
		opts.Holds = 0
	}
	if opts.FlushAfter == 0 {
		opts.FlushAfter = defaultFlushAfter
	}
	if opts.HoldFor == 0 {
		opts.HoldFor = defaultHoldFor
	}
	if opts.ReturnIdle == 0 {
		opts.ReturnIdle = defaultReturnIdle
	}
	return &Allocator{store: store, locker: locker, opts: opts, groups: map[string]*group{},
		flushes: map[string]bool{}, idle: map[string]*time.Timer{}, tight: map[string]time.Time{}, stamps: map[string]string{}, used: map[string]string{}}
}

// Allocate returns the address of owner in pool: the one it already holds (ADD is idempotent per
// container and interface), its sticky reservation, the requested address when one is given, or
// the lowest free address.
//
// Concurrent calls for the lowest free address in one network are committed as a group: one
// conditional write per block for all of them (see group.go). A process making one call pays
// nothing for this; a long-lived caller (the node agent) turns N concurrent ADDs into about one
// write.
func (a *Allocator) Allocate(ctx context.Context, pool Pool, owner Owner, requested netip.Addr) (netip.Addr, error) {
	if !requested.IsValid() && !(pool.Sticky && owner.PodName != "") {
		return a.allocateGrouped(ctx, pool, owner)
	}
	return a.allocateOne(ctx, pool, owner, requested)
}

// allocateOne allocates for one caller under the node lock.
func (a *Allocator) allocateOne(ctx context.Context, pool Pool, owner Owner, requested netip.Addr) (netip.Addr, error) {
	unlock, err := a.locker.Lock(ctx, NetworkKey(pool.Network)+"."+a.opts.Node)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("taking the node lock for network %q: %w", pool.Network, err)
	}
	defer unlock()
	var addr netip.Addr
	err = a.retry(ctx, func(at *attempt) error {
		var err error
		addr, err = a.tryAllocate(ctx, pool, owner, requested, at)
		return err
	})
	return addr, err
}

// Release frees every address owner holds in network (one per range), keeping it reserved for
// the pod's namespace/name for stickyTTL when stickyTTL > 0. Releasing what is not allocated
// succeeds.
//
// Concurrent releases of one network are committed as a group, like allocations.
func (a *Allocator) Release(ctx context.Context, network string, owner Owner, stickyTTL time.Duration) error {
	_, err := a.enqueue(&pending{ctx: ctx, network: network, owner: owner, release: true, stickyTTL: stickyTTL})
	return err
}

// retry repeats fn after lost races (immediately) and while the API server is unavailable (with
// backoff), until ctx is done.
func (a *Allocator) retry(ctx context.Context, fn func(*attempt) error) error {
	backoff := 50 * time.Millisecond
	races := 0
	var at attempt
	for {
		err := fn(&at)
		var lost *claimLostError
		if errors.As(err, &lost) && len(at.lost) < relistAfterLostClaims-1 {
			// Only the claimed block changed hands: this node's blocks are as they were.
			at.lost, at.afterRace = append(at.lost, lost.cidr), true
			if races++; races >= a.opts.MaxAttempts {
				return fmt.Errorf("gave up after %d lost races with other writers: %w", races, ErrConflict)
			}
			continue
		}
		at.fresh, at.all, at.lost = true, nil, nil
		var held *heldElsewhereError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &held):
			return err
		case errors.As(err, &lost), errors.Is(err, errStale), errors.Is(err, errRetry):
			at.afterRace = at.afterRace || !errors.Is(err, errStale)
			races++
			if races >= a.opts.MaxAttempts {
				return fmt.Errorf("gave up after %d lost races with other writers: %w", races, ErrConflict)
			}
			continue
		case errors.Is(err, ErrUnavailable):
			logr.FromContextOrDiscard(ctx).V(1).Info("API server unavailable, retrying", "after", backoff, "error", err.Error())
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		default:
			return err
		}
	}
}

func (a *Allocator) tryAllocate(ctx context.Context, pool Pool, owner Owner, requested netip.Addr, at *attempt) (netip.Addr, error) {
	netKey := NetworkKey(pool.Network)
	own, err := a.ownBlocks(ctx, netKey, at.fresh)
	if err != nil {
		return netip.Addr{}, err
	}
	if addr, ok := findOwner(own, pool, owner); ok {
		if !at.fresh {
			return netip.Addr{}, errStale // confirm on fresh data before answering
		}
		return addr, nil
	}
	var all []v1alpha1.IPBlock
	reused := false // all is an earlier listing, blind to blocks claimed since
	listAll := func() error {
		if all != nil {
			return nil
		}
		if at.all != nil {
			all, reused = at.all, true
			return nil
		}
		all, err = a.store.ListBlocks(ctx, netKey, "")
		if err != nil {
			return fmt.Errorf("listing the IP blocks of network %q: %w", pool.Network, err)
		}
		at.all = all
		return nil
	}
	if pool.Sticky && owner.PodName != "" {
		if err := listAll(); err != nil {
			return netip.Addr{}, err
		}
		if addr, ok := findOwner(all, pool, owner); ok {
			return addr, nil
		}
		if b, addr, ok := findSticky(all, pool, owner); ok {
			return addr, a.put(ctx, b, addr, pool, owner)
		}
	}
	if requested.IsValid() {
		return requested, a.allocateRequested(ctx, pool, owner, requested)
	}
	sortBlocks(own)
	for i := range own {
		if addr, ok := lowestFree(&own[i], pool); ok {
			return addr, a.put(ctx, &own[i], addr, pool, owner)
		}
	}
	if err := listAll(); err != nil {
		return netip.Addr{}, err
	}
	if addr, ok := findOwner(all, pool, owner); ok { // held in a borrowed block
		return addr, nil
	}
	// After a lost race, spread over the candidates instead of all nodes racing again for the
	// lowest one; without contention the lowest comes first.
	if cidrs := unclaimed(pool, all, at.lost, spreadOver(at.afterRace)); len(cidrs) > 0 {
		cidr := cidrs[rand.IntN(len(cidrs))]
		addr, _ := pool.Range.NextUsable(cidr.Addr())
		return addr, a.claim(ctx, pool, cidr, addr, owner)
	}
	sortBlocks(all)
	var lenders []int
	for i := range all {
		if _, ok := lowestFree(&all[i], pool); ok {
			if lenders = append(lenders, i); len(lenders) == spreadOver(at.afterRace) {
				break
			}
		}
	}
	if len(lenders) > 0 {
		b := &all[lenders[rand.IntN(len(lenders))]]
		addr, _ := lowestFree(b, pool)
		return addr, a.put(ctx, b, addr, pool, owner)
	}
	if reused {
		return netip.Addr{}, errStale // only a fresh listing can tell the pool is full
	}
	return netip.Addr{}, a.exhausted(pool, all)
}

// exhausted is the error of a pool with no free address in blocks (every block of its network):
// ExhaustedError, or, while other nodes hold addresses for their next pods, a wait for them (an
// ErrUnavailable: the caller retries until its deadline, and those holds are used or come back
// within ReturnIdle of their node going idle). It also stops this node from holding addresses of
// the pool for a while.
func (a *Allocator) exhausted(pool Pool, blocks []v1alpha1.IPBlock) error {
	a.markTight(pool.Name)
	nodes := map[string]int{}
	for i := range blocks {
		for key, al := range blocks[i].Spec.Allocations {
			if addr, ok := usableKey(key, al); ok && al.HeldUntil != nil && al.Node != a.opts.Node && pool.Range.Contains(addr) {
				nodes[al.Node]++
			}
		}
	}
	if len(nodes) == 0 {
		return &ExhaustedError{Pool: pool.Name, Size: pool.Range.Size().String()}
	}
	names := slices.Sorted(maps.Keys(nodes))
	held := 0
	for _, n := range nodes {
		held += n
	}
	return &heldElsewhereError{msg: fmt.Sprintf("IP pool %s has no free address now: %d are set aside by the IPAM agents of nodes %s for their next pods, and come back when those nodes go idle",
		pool.Name, held, strings.Join(names, ", "))}
}

// heldElsewhereError says the only addresses left are other nodes' holds. It is an
// ErrUnavailable (the caller waits and tries again), but a try does not wait for it where it
// stands: the caller goes back to its node's queue, so the node's other calls go on meanwhile.
type heldElsewhereError struct{ msg string }

func (e *heldElsewhereError) Error() string { return e.msg + "; waiting: " + ErrUnavailable.Error() }
func (e *heldElsewhereError) Unwrap() error { return ErrUnavailable }

func (a *Allocator) allocateRequested(ctx context.Context, pool Pool, owner Owner, addr netip.Addr) error {
	if !pool.Range.Contains(addr) {
		return fmt.Errorf("requested address %s is outside the usable addresses of pool %s", addr, pool.Name)
	}
	cidr := ranges.BlockOf(addr, pool.BlockBits())
	b, err := a.store.GetBlock(ctx, BlockName(pool.Network, cidr))
	if errors.Is(err, ErrNotFound) {
		return a.claim(ctx, pool, cidr, addr, owner)
	}
	if err != nil {
		return fmt.Errorf("reading the IP block of %s: %w", addr, err)
	}
	if held, ok := b.Spec.Allocations[addr.String()]; ok {
		switch {
		case held.Pool == pool.Name && held.ContainerID == owner.ContainerID && held.IfName == owner.IfName:
			return nil
		case held.ReservedUntil != nil && held.PodNamespace == owner.PodNamespace && held.PodName == owner.PodName:
			// The pod's own sticky reservation.
		case held.HeldUntil != nil && held.Node == a.opts.Node:
			// This node's hold, unless its journal already handed it out.
			st, err := a.loadStaged(NetworkKey(pool.Network)+"."+a.opts.Node, pool.Network)
			if err != nil {
				return err
			}
			st.apply(ctx, []v1alpha1.IPBlock{*b}, false)
			if now := b.Spec.Allocations[addr.String()]; now.HeldUntil == nil {
				return &TakenError{Addr: addr, Holder: now}
			}
		default:
			return &TakenError{Addr: addr, Holder: held}
		}
	}
	return a.put(ctx, b, addr, pool, owner)
}

// claim creates the block cidr for this node with owner's allocation of addr in it.
func (a *Allocator) claim(ctx context.Context, pool Pool, cidr netip.Prefix, addr netip.Addr, owner Owner) error {
	if _, known := a.pools.Load(pool.Name); !known {
		if err := a.store.CreatePool(ctx, pool.Object()); err != nil && !errors.Is(err, ErrAlreadyExists) {
			return fmt.Errorf("recording IPPool %s: %w", pool.Name, err)
		}
		a.pools.Store(pool.Name, true)
	}
	b := &v1alpha1.IPBlock{
		ObjectMeta: metav1.ObjectMeta{
			Name:   BlockName(pool.Network, cidr),
			Labels: map[string]string{v1alpha1.LabelNetwork: NetworkKey(pool.Network), v1alpha1.LabelNode: a.opts.Node},
		},
		Spec: v1alpha1.IPBlockSpec{Network: pool.Network, CIDR: cidr.String(), Node: a.opts.Node,
			Allocations: map[string]v1alpha1.Allocation{addr.String(): a.allocation(pool, owner)}},
	}
	a.addHolds(b, pool)
	created, err := a.store.CreateBlock(ctx, b)
	if errors.Is(err, ErrAlreadyExists) {
		return &claimLostError{cidr: cidr}
	}
	if err != nil {
		return fmt.Errorf("claiming IP block %s for node %s: %w", b.Name, a.opts.Node, err)
	}
	a.remember(ctx, NetworkKey(pool.Network), created)
	return nil
}

// put records owner's allocation of addr in b, conditionally on b's resourceVersion.
func (a *Allocator) put(ctx context.Context, b *v1alpha1.IPBlock, addr netip.Addr, pool Pool, owner Owner) error {
	if b.Spec.Allocations == nil {
		b.Spec.Allocations = map[string]v1alpha1.Allocation{}
	}
	b.Spec.Allocations[addr.String()] = a.allocation(pool, owner)
	updated, err := a.store.UpdateBlock(ctx, b)
	if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
		return errRetry
	}
	if err != nil {
		return fmt.Errorf("writing %s into IP block %s: %w", addr, b.Name, err)
	}
	a.remember(ctx, NetworkKey(pool.Network), updated)
	return nil
}

func (a *Allocator) allocation(pool Pool, o Owner) v1alpha1.Allocation {
	return v1alpha1.Allocation{Pool: pool.Name, ContainerID: o.ContainerID, IfName: o.IfName,
		PodNamespace: o.PodNamespace, PodName: o.PodName, PodUID: o.PodUID, Node: a.opts.Node}
}

func (a *Allocator) tryRelease(ctx context.Context, network string, owner Owner, stickyTTL time.Duration, fresh bool) error {
	netKey := NetworkKey(network)
	blocks, err := a.ownBlocks(ctx, netKey, fresh)
	if err != nil {
		return err
	}
	if !holds(blocks, owner) && !fresh {
		if blocks, err = a.ownBlocks(ctx, netKey, true); err != nil {
			return err
		}
	}
	if !holds(blocks, owner) {
		if blocks, err = a.store.ListBlocks(ctx, netKey, ""); err != nil {
			return fmt.Errorf("listing the IP blocks of network %q: %w", network, err)
		}
	}
	for i := range blocks {
		b := &blocks[i]
		if !a.releaseIn(b, owner, stickyTTL) {
			continue
		}
		updated, err := a.store.UpdateBlock(ctx, b)
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			return errRetry
		}
		if err != nil {
			return fmt.Errorf("freeing the addresses of container %s in IP block %s: %w", owner.ContainerID, b.Name, err)
		}
		a.remember(ctx, netKey, updated)
		a.giveBackIfEmpty(ctx, netKey, updated)
	}
	return nil
}

// releaseIn removes owner's allocations from b, or turns them into reservations for the pod's
// namespace/name until stickyTTL from now when stickyTTL > 0. It reports whether b changed.
func (a *Allocator) releaseIn(b *v1alpha1.IPBlock, owner Owner, stickyTTL time.Duration) bool {
	changed := false
	for addr, al := range b.Spec.Allocations {
		if _, ok := usableKey(addr, al); !ok {
			continue // reported by the reconciler; kept as it is
		}
		if al.ContainerID != owner.ContainerID || al.IfName != owner.IfName || al.ReservedUntil != nil || al.HeldUntil != nil {
			continue
		}
		changed = true
		if stickyTTL > 0 && al.PodName != "" {
			until := metav1.NewTime(a.opts.Clock().Add(stickyTTL))
			al.ReservedUntil, al.ContainerID, al.IfName = &until, "", ""
			b.Spec.Allocations[addr] = al
			continue
		}
		delete(b.Spec.Allocations, addr)
	}
	return changed
}

// giveBackIfEmpty deletes b, just written, when it holds nothing any more; a concurrent writer
// makes this a no-op.
func (a *Allocator) giveBackIfEmpty(ctx context.Context, netKey string, b *v1alpha1.IPBlock) {
	if len(b.Spec.Allocations) > 0 {
		return
	}
	a.forget(ctx, netKey, b.Name)
	if err := a.store.DeleteBlock(ctx, b.Name, b.ResourceVersion); err != nil &&
		!errors.Is(err, ErrConflict) && !errors.Is(err, ErrNotFound) {
		logr.FromContextOrDiscard(ctx).Info("could not release an empty IP block; the reconciler will", "block", b.Name, "error", err.Error())
	}
}

// Find returns the address owner holds in pool, if any (for CNI CHECK).
func (a *Allocator) Find(ctx context.Context, pool Pool, owner Owner) (netip.Addr, bool, error) {
	netKey := NetworkKey(pool.Network)
	// What this node's journal holds and has not written yet counts.
	st, err := a.loadStaged(netKey+"."+a.opts.Node, pool.Network)
	if err != nil {
		return netip.Addr{}, false, err
	}
	for _, node := range []string{a.opts.Node, ""} {
		blocks, err := a.store.ListBlocks(ctx, netKey, node)
		if err != nil {
			return netip.Addr{}, false, fmt.Errorf("listing the IP blocks of network %q: %w", pool.Network, err)
		}
		st.apply(ctx, blocks, false)
		if addr, ok := findOwner(blocks, pool, owner); ok {
			return addr, true, nil
		}
	}
	return netip.Addr{}, false, nil
}

// Ping checks that the store answers (for CNI STATUS).
func (a *Allocator) Ping(ctx context.Context, network string) error {
	_, err := a.store.ListBlocks(ctx, NetworkKey(network), a.opts.Node)
	return err
}
