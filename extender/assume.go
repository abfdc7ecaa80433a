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
	uid     types.UID
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
	a := &assumedPod{uid: req.uid, nodes: nodes, expires: c.opts.Now().Add(c.opts.AssumeTTL)}
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
	for _, n := range nodes {
		add(c.assumed, n, a.vfs, 1)
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
	for _, n := range a.nodes {
		add(c.assumed, n, a.vfs, -1)
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
