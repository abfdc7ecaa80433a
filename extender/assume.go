package extender

import (
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// assumedPod is a pod Filter admitted that has not been seen bound. The scheduler picks one of
// the nodes it was admitted on, and the extender does not learn which until the binding
// arrives, so until then its VFs count against each of those nodes (a node can never be
// promised more than it has) and its addresses against its pools.
type assumedPod struct {
	uid types.UID
	// on are the counts of the nodes it was admitted on; nil when that was every node there
	// is. Pointers, not names: dropping an assumption from 5,000 nodes hashes nothing.
	on      []*nodeCounts
	vfs     []vfCount
	pools   map[string]int64
	expires time.Time
}

// vfCount is a number of VFs of the resource with ID id.
type vfCount struct {
	id int
	n  int64
}

// vfsOf is how many VFs of resource id a takes.
func (a *assumedPod) vfsOf(id int) int64 {
	for _, v := range a.vfs {
		if v.id == id {
			return v.n
		}
	}
	return 0
}

// addTo adds sign times a's VFs to v.
func (a *assumedPod) addTo(v *vec, sign int64) {
	for _, x := range a.vfs {
		v.add(x.id, sign*x.n)
	}
}

// assume records req as admitted on nodes, whose counts are on. The caller holds c.mu.
func (c *Cluster) assume(req *request, nodes []string, on []*nodeCounts) {
	c.dropAssumption(req.uid)
	if len(nodes) == 0 || (len(req.vfs) == 0 && len(req.pools) == 0) {
		return
	}
	a := &assumedPod{uid: req.uid, expires: c.opts.Now().Add(c.opts.AssumeTTL)}
	if len(req.pools) > 0 {
		a.pools = make(map[string]int64, len(req.pools))
		for _, p := range req.pools {
			a.pools[p.pool.Name] = p.count
		}
	}
	for _, v := range req.vfs {
		a.vfs = append(a.vfs, vfCount{id: v.id, n: v.count})
	}
	if c.everyNode(nodes) {
		a.addTo(&c.assumedEverywhere, 1)
	} else {
		a.on = on
		for _, nc := range on {
			a.addTo(&nc.assumed, 1)
		}
	}
	c.inflight[req.uid] = a
	c.gen++
}

// dropAssumption forgets what was assumed for uid. The caller holds c.mu.
func (c *Cluster) dropAssumption(uid types.UID) {
	a, ok := c.inflight[uid]
	if !ok {
		return
	}
	delete(c.inflight, uid)
	if a.on == nil {
		a.addTo(&c.assumedEverywhere, -1)
	}
	for _, nc := range a.on {
		a.addTo(&nc.assumed, -1)
	}
	c.gen++
}

// expire drops assumptions older than the TTL: pods the scheduler did not bind after all (its
// own filters or another extender turned every node down, or the binding failed). It runs at
// most once a second. The caller holds c.mu.
func (c *Cluster) expire(now time.Time) {
	if now.Sub(c.lastSweep) < time.Second {
		return
	}
	c.lastSweep = now
	for uid, a := range c.inflight {
		if now.After(a.expires) {
			c.dropAssumption(uid)
		}
	}
}

// everyNode tells whether nodes, distinct names as Filter admitted them, are every node the
// Cluster knows. The caller holds c.mu.
func (c *Cluster) everyNode(nodes []string) bool {
	if len(nodes) != len(c.nodes) {
		return false
	}
	for _, n := range nodes {
		if _, ok := c.nodes[n]; !ok {
			return false
		}
	}
	return true
}

// admittedOn tells whether a was admitted on the node whose counts are nc; set holds a.on.
func (a *assumedPod) admittedOn(nc *nodeCounts, set map[*nodeCounts]bool) bool {
	return a.on == nil || set[nc]
}

// Bound records that the scheduler is binding pod uid to node (the extender's bind verb): what
// the pod was assumed to take now counts on that node alone, until the informer shows it bound.
// Other pods are then no longer turned away from the nodes it did not go to.
func (c *Cluster) Bound(uid types.UID, node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.inflight[uid]
	if !ok {
		return
	}
	if _, seen := c.pods[uid]; seen {
		return
	}
	c.dropAssumption(uid)
	a.on = []*nodeCounts{c.countsOf(node)}
	a.addTo(&a.on[0].assumed, 1)
	c.inflight[uid] = a
	c.gen++
}
