package allocator

import (
	"net/netip"
	"sort"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	"github.com/plexus-project/plexus/ipam/ranges"
)

// holds reports whether owner holds an address (not a reservation) in one of blocks.
func holds(blocks []v1alpha1.IPBlock, o Owner) bool {
	for i := range blocks {
		for _, al := range blocks[i].Spec.Allocations {
			if _, bad := al.Malformed(); bad {
				continue
			}
			if al.ContainerID == o.ContainerID && al.IfName == o.IfName && al.ReservedUntil == nil && al.HeldUntil == nil {
				return true
			}
		}
	}
	return false
}

func findOwner(blocks []v1alpha1.IPBlock, pool Pool, o Owner) (netip.Addr, bool) {
	for i := range blocks {
		for addr, al := range blocks[i].Spec.Allocations {
			if al.Pool == pool.Name && al.ContainerID == o.ContainerID && al.IfName == o.IfName && al.ReservedUntil == nil && al.HeldUntil == nil {
				if a, ok := usableKey(addr, al); ok {
					return a, true
				}
			}
		}
	}
	return netip.Addr{}, false
}

// findSticky finds the address kept for the pod's namespace/name: a reservation left by DEL, or
// the allocation of an earlier pod of the same name (a name is held by one pod at a time).
func findSticky(blocks []v1alpha1.IPBlock, pool Pool, o Owner) (*v1alpha1.IPBlock, netip.Addr, bool) {
	for i := range blocks {
		for addr, al := range blocks[i].Spec.Allocations {
			if al.Pool == pool.Name && al.PodNamespace == o.PodNamespace && al.PodName == o.PodName &&
				(al.ReservedUntil != nil || (al.PodUID != "" && al.PodUID != o.PodUID)) {
				if a, ok := usableKey(addr, al); ok {
					return &blocks[i], a, true
				}
			}
		}
	}
	return nil, netip.Addr{}, false
}

// usableKey parses the key of an allocation the allocator may act on: neither a key that is not
// an address in canonical form nor a malformed value (v1alpha1.IPBlockSpec.Problems, reported by
// the reconciler) is ever matched to an owner.
func usableKey(key string, al v1alpha1.Allocation) (netip.Addr, bool) {
	if _, bad := al.Malformed(); bad {
		return netip.Addr{}, false
	}
	a, err := v1alpha1.ParseKey(key)
	return a, err == nil
}

// lowestFree is the lowest address of b usable in pool and not allocated.
func lowestFree(b *v1alpha1.IPBlock, pool Pool) (netip.Addr, bool) {
	cidr, err := netip.ParsePrefix(b.Spec.CIDR)
	if err != nil || cidr.Addr().Is4() != pool.Range.Is4() {
		return netip.Addr{}, false
	}
	for next := cidr.Addr(); ; next = next.Next() {
		addr, ok := pool.Range.NextUsable(next)
		if !ok || !cidr.Contains(addr) {
			return netip.Addr{}, false
		}
		if _, taken := b.Spec.Allocations[addr.String()]; !taken {
			return addr, true
		}
		next = addr
	}
}

// spreadOver is how many candidates a choice is spread over: 1 (the lowest) normally, 8 after a
// lost race.
func spreadOver(afterRace bool) int {
	if afterRace {
		return 8
	}
	return 1
}

// unclaimed returns up to n of the lowest blocks holding a usable address of pool that nobody
// has claimed: neither in blocks nor in lost.
func unclaimed(pool Pool, blocks []v1alpha1.IPBlock, lost []netip.Prefix, n int) []netip.Prefix {
	claimed := make(map[string]bool, len(blocks)+len(lost))
	for i := range blocks {
		claimed[blocks[i].Spec.CIDR] = true
	}
	for _, p := range lost {
		claimed[p.String()] = true
	}
	var out []netip.Prefix
	next := pool.Range.Start()
	for len(out) < n {
		addr, ok := pool.Range.NextUsable(next)
		if !ok {
			break
		}
		cidr := ranges.BlockOf(addr, pool.BlockBits())
		if !claimed[cidr.String()] {
			out = append(out, cidr)
		}
		nb, ok := ranges.NextBlock(cidr)
		if !ok {
			break
		}
		next = nb.Addr()
	}
	return out
}

func sortBlocks(bs []v1alpha1.IPBlock) {
	sort.Slice(bs, func(i, j int) bool {
		pi, _ := netip.ParsePrefix(bs[i].Spec.CIDR)
		pj, _ := netip.ParsePrefix(bs[j].Spec.CIDR)
		return pi.Addr().Less(pj.Addr())
	})
}
