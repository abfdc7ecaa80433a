package extender

import (
	"fmt"
	"math/big"
	"net/netip"

	"github.com/plexus-project/plexus/ipam/allocator"
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// poolMemo is a pool's count, valid while the Cluster's gen is unchanged.
type poolMemo struct {
	gen uint64
	poolCount
}

// poolCount is a pool's addresses as the extender counts them.
type poolCount struct {
	// usage is allocator.PoolUsage over the network's blocks: addresses allocated or reserved.
	usage allocator.Usage
	// pending are addresses that pods bound (without an allocation in the pool yet) or admitted
	// (assumed) will take.
	pending int64
	// free is usage.Free - pending.
	free *big.Int
}

// countPool counts p's addresses. The caller holds c.mu.
func (c *Cluster) countPool(p allocator.Pool) poolCount {
	if m, ok := c.poolMemo[p.Name]; ok && m.gen == c.gen {
		return m.poolCount
	}
	blocks := make([]v1alpha1.IPBlock, 0, len(c.blocks[p.Network]))
	for _, b := range c.blocks[p.Network] {
		blocks = append(blocks, *b)
	}
	pc := poolCount{usage: allocator.PoolUsage(p, blocks)}
	holders := allocationHolders(p, blocks)
	for key, ns := range c.nads {
		if !usesPool(ns, p.Name) {
			continue
		}
		for _, ps := range c.podsByNAD[key] {
			if !holders[string(ps.uid)] && !holders[ps.namespace+"/"+ps.name] {
				pc.pending += int64(count(ps.nads, key))
			}
		}
	}
	for _, a := range c.inflight {
		pc.pending += a.pools[p.Name]
	}
	pc.free = new(big.Int).Sub(pc.usage.Free, big.NewInt(pc.pending))
	c.poolMemo[p.Name] = poolMemo{gen: c.gen, poolCount: pc}
	return pc
}

// checkPools tells whether every pool of req has the addresses it needs. The caller holds c.mu.
func (c *Cluster) checkPools(req *request) *verdict {
	for _, pn := range req.pools {
		pc := c.countPool(pn.pool)
		if pc.free.Cmp(big.NewInt(pn.count)) >= 0 {
			continue
		}
		return &verdict{reason: ReasonPoolFull, msg: fmt.Sprintf(
			"network %s: IP pool %s (%s) has %s free of %s addresses (%s allocated, %d promised to pods being started), the pod needs %d; free addresses or widen the range",
			pn.network, pn.pool.Name, pn.pool.Range, nonNegative(pc.free), pc.usage.Size, pc.usage.Used, pc.pending, pn.count)}
	}
	return nil
}

// allocationHolders is the pods (by UID and by namespace/name) holding an address of p.
func allocationHolders(p allocator.Pool, blocks []v1alpha1.IPBlock) map[string]bool {
	out := map[string]bool{}
	for i := range blocks {
		for addr, a := range blocks[i].Spec.Allocations {
			ip, err := netip.ParseAddr(addr)
			if err != nil || !p.Range.Contains(ip) {
				continue
			}
			if a.PodUID != "" {
				out[a.PodUID] = true
			}
			if a.PodName != "" {
				out[a.PodNamespace+"/"+a.PodName] = true
			}
		}
	}
	return out
}

func usesPool(ns *nadState, name string) bool {
	for _, p := range ns.pools {
		if p.Name == name {
			return true
		}
	}
	return false
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

func nonNegative(x *big.Int) *big.Int {
	if x.Sign() < 0 {
		return new(big.Int)
	}
	return x
}
