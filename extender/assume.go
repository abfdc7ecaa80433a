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
	// nodes are those it was admitted on; nil when that was every node there is.
	nodes   []string
	vfs     map[string]int64
	pools   map[string]int64
	expires time.Time
}

// assume records req as admitted on nodes. The caller holds c.mu.
func (c *Cluster) assume(req *request, nodes []string) {
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
	if len(req.vfs) > 0 {
		a.vfs = make(map[string]int64, len(req.vfs))
		for _, v := range req.vfs {
			a.vfs[v.resource] = v.count
		}
	}
	if c.everyNode(nodes) {
		c.add(&c.assumedEverywhere, a.vfs, 1)
	} else {
		a.nodes = nodes
		for _, n := range nodes {
			c.add(&c.countsOf(n).assumed, a.vfs, 1)
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
	if a.nodes == nil {
		c.add(&c.assumedEverywhere, a.vfs, -1)
	}
	for _, n := range a.nodes {
		c.add(&c.countsOf(n).assumed, a.vfs, -1)
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

// admittedOn tells whether a was admitted on node.
func (a *assumedPod) admittedOn(node string, set map[string]bool) bool {
	return a.nodes == nil || set[node]
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
	a.nodes = []string{node}
	c.add(&c.countsOf(node).assumed, a.vfs, 1)
	c.inflight[uid] = a
	c.gen++
}
