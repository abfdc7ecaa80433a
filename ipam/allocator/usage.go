package allocator

import (
	"math/big"
	"net/netip"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// Usage counts the addresses of a pool.
type Usage struct {
	// Size is how many addresses the pool can hand out.
	Size *big.Int
	// Used is how many of them are allocated or reserved, by this pool or by an overlapping pool
	// of the same network.
	Used *big.Int
	// Free is Size - Used.
	Free *big.Int
	// Blocks is how many claimed blocks hold addresses of the pool.
	Blocks int
}

// PoolUsage counts pool's addresses given the IPBlocks of its network (blocks of other networks
// are ignored). It is pure: the reconciler passes a fresh list, the scheduler extender its cache.
func PoolUsage(pool Pool, blocks []v1alpha1.IPBlock) Usage {
	u := Usage{Size: pool.Range.Size(), Used: new(big.Int)}
	for i := range blocks {
		b := &blocks[i]
		if b.Spec.Network != pool.Network {
			continue
		}
		cidr, err := netip.ParsePrefix(b.Spec.CIDR)
		if err != nil || pool.Range.UsableIn(cidr).Sign() == 0 {
			continue
		}
		u.Blocks++
		n := int64(0)
		for addr := range b.Spec.Allocations {
			if a, err := netip.ParseAddr(addr); err == nil && pool.Range.Contains(a) {
				n++
			}
		}
		u.Used.Add(u.Used, big.NewInt(n))
	}
	u.Free = new(big.Int).Sub(u.Size, u.Used)
	return u
}

// FreeAddresses is the number of addresses pool can still hand out (for capacity checks).
func FreeAddresses(pool Pool, blocks []v1alpha1.IPBlock) *big.Int {
	return PoolUsage(pool, blocks).Free
}
