package extender

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/plexus-project/plexus/deviceplugin/capacity"
)

// layout is plexus-deviceplugin's report of one VF pool of a node, read once when the Node
// changes into what every filter and prioritize call needs of it.
type layout struct {
	healthy, free int
	// numa is the counts per NUMA node, sorted by key.
	numa []numaCount
	// maxNUMAHealthy is the most healthy VFs one NUMA node has.
	maxNUMAHealthy int64
}

type numaCount struct {
	key           string
	healthy, free int
	// pfsWithFree counts the PFs on this NUMA node that report a free VF.
	pfsWithFree int
}

func newLayout(pc capacity.PoolCapacity) *layout {
	l := &layout{healthy: pc.Healthy, free: pc.Free, numa: make([]numaCount, 0, len(pc.NUMA))}
	for k, c := range pc.NUMA {
		nc := numaCount{key: k, healthy: c.Healthy, free: c.Free}
		if id, err := strconv.Atoi(k); err == nil {
			for _, pf := range pc.PFs {
				if pf.Free > 0 && pf.NUMA == id {
					nc.pfsWithFree++
				}
			}
		}
		l.numa = append(l.numa, nc)
		l.maxNUMAHealthy = max(l.maxNUMAHealthy, int64(c.Healthy))
	}
	sort.Slice(l.numa, func(i, j int) bool { return l.numa[i].key < l.numa[j].key })
	return l
}

// poolOnNode is one VF pool of one node as the extender counts it for one call.
type poolOnNode struct {
	// capacity is the healthy VFs: allocatable, or fewer when the device plugin reports fewer.
	capacity int64
	// used is held by bound pods, assumed promised to pods admitted but not seen bound.
	used, assumed int64
	// free is capacity - used - assumed.
	free int64
	// published is plexus-deviceplugin's report of the pool (NUMA and PF layout); nil if none.
	published *layout
	// unreflected is how many VFs are taken but not yet in the published free counts.
	unreflected int64
}

// vfPool counts resource on node ns, leaving out what self (the pod being judged) was assumed
// to take there. The caller holds c.mu.
func (c *Cluster) vfPool(ns *nodeState, need *vfNeed, self *assumedPod, selfHere bool) poolOnNode {
	p := poolOnNode{capacity: ns.alloc.at(need.id), assumed: c.assumedEverywhere.at(need.id)}
	if ns.counts != nil {
		p.used, p.assumed = ns.counts.used.at(need.id), p.assumed+ns.counts.assumed.at(need.id)
	}
	if self != nil && selfHere {
		p.assumed -= self.vfsOf(need.id)
	}
	if need.id < len(ns.published) && ns.published[need.id] != nil {
		p.published = ns.published[need.id]
		p.capacity = min(p.capacity, int64(p.published.healthy))
	}
	p.free = p.capacity - p.used - p.assumed
	if p.published != nil {
		p.unreflected = p.assumed + max(0, int64(p.published.free)-(p.capacity-p.used))
	}
	return p
}

// numaFree is the VFs surely free on a NUMA node: the published free count less what was
// taken since it was published (which may have come from any NUMA node), capped by free.
func (p poolOnNode) numaFree(n *numaCount) int64 {
	return max(0, min(p.free, int64(n.free)-p.unreflected))
}

// bestNUMA is the NUMA node with the most VFs surely free, and how many (nil when unknown).
// Among equals the smallest key wins, so the answer does not depend on map order.
func (p poolOnNode) bestNUMA() (*numaCount, int64) {
	if p.published == nil || len(p.published.numa) == 0 {
		return nil, 0
	}
	var best *numaCount
	most := int64(-1)
	for i := range p.published.numa {
		if f := p.numaFree(&p.published.numa[i]); f > most {
			best, most = &p.published.numa[i], f
		}
	}
	return best, most
}

// maxNUMAHealthy is the most healthy VFs one NUMA node has (capacity when unknown).
func (p poolOnNode) maxNUMAHealthy() int64 {
	if p.published == nil || len(p.published.numa) == 0 {
		return p.capacity
	}
	return p.published.maxNUMAHealthy
}

// checkNode tells whether req fits node ns, and why not. The caller holds c.mu.
func (c *Cluster) checkNode(req *request, ns *nodeState, self *assumedPod, selfHere bool) *verdict {
	for _, n := range req.nets {
		if !n.presentOn(ns) {
			return &verdict{reason: ReasonNetworkNotOnNode, unresolvable: true, msg: fmt.Sprintf(
				"network %s is not on this node: NetworkAttachmentDefinition %s selects nodes labelled %s",
				req.names[n.key], n.key, n.selectorText)}
		}
	}
	for i := range req.vfs {
		if v := c.checkVFs(req, &req.vfs[i], ns, self, selfHere); v != nil {
			return v
		}
	}
	return c.checkSharedNUMA(req, ns, self, selfHere)
}

// checkSharedNUMA: under single-NUMA placement, the VFs of every pool the pod needs must come
// from one NUMA node together, as the Topology Manager aligns all of a pod's devices. Each
// pool alone was checked by checkVFs. Nodes whose layout is unknown for a pool are not judged.
func (c *Cluster) checkSharedNUMA(req *request, ns *nodeState, self *assumedPod, selfHere bool) *verdict {
	if (!req.singleNUMA && !ns.singleNUMA) || len(req.vfs) < 2 {
		return nil
	}
	pools := make([]poolOnNode, len(req.vfs))
	for i := range req.vfs {
		if pools[i] = c.vfPool(ns, &req.vfs[i], self, selfHere); pools[i].published == nil || len(pools[i].published.numa) == 0 {
			return nil
		}
	}
	couldEver := false
	for _, first := range pools[0].published.numa {
		healthy, free := true, true
		for i, p := range pools {
			n := p.published.find(first.key)
			if n == nil || int64(n.healthy) < req.vfs[i].count {
				healthy, free = false, false
				break
			}
			free = free && p.numaFree(n) >= req.vfs[i].count
		}
		if free {
			return nil
		}
		couldEver = couldEver || healthy
	}
	who, state, reason := "the pod", "free", ReasonNUMAFree
	var nets, need []string
	for _, n := range req.nets { // in the pod's order
		if n.net.ResourceName != "" {
			nets = append(nets, req.names[n.key])
		}
	}
	if len(nets) > 0 {
		who = "networks " + strings.Join(nets, ", ")
	}
	if !couldEver {
		state, reason = "healthy", ReasonNUMACapacity
	}
	for _, v := range req.vfs {
		unit := "VFs"
		if v.count == 1 {
			unit = "VF"
		}
		need = append(need, fmt.Sprintf("%d %s %s of pool %s", v.count, state, unit, v.resource))
	}
	return &verdict{reason: reason, unresolvable: !couldEver, msg: fmt.Sprintf(
		"%s: no NUMA node of this node has %s together, the pod needs them on one NUMA node (%s)",
		who, strings.Join(need, " and "), numaWhy(req, ns))}
}

// find is the counts of NUMA node key, nil when the pool has none there.
func (l *layout) find(key string) *numaCount {
	for i := range l.numa {
		if l.numa[i].key == key {
			return &l.numa[i]
		}
	}
	return nil
}

func (c *Cluster) checkVFs(req *request, need *vfNeed, ns *nodeState, self *assumedPod, selfHere bool) *verdict {
	p := c.vfPool(ns, need, self, selfHere)
	switch {
	case p.capacity <= 0:
		return &verdict{reason: ReasonNoVFPool, unresolvable: true, msg: fmt.Sprintf(
			"%s: this node has no %s VFs, the pod needs %d", need.who(), need.resource, need.count)}
	case need.count > p.capacity:
		return &verdict{reason: ReasonVFCapacity, unresolvable: true, msg: fmt.Sprintf(
			"%s: pool %s has %d healthy VFs on this node, the pod needs %d", need.who(), need.resource, p.capacity, need.count)}
	}
	single := (req.singleNUMA || ns.singleNUMA) && need.count > 1 && p.published != nil && len(p.published.numa) > 0
	if single && need.count > p.maxNUMAHealthy() {
		return &verdict{reason: ReasonNUMACapacity, unresolvable: true, msg: fmt.Sprintf(
			"%s: pool %s has at most %d healthy VFs on one NUMA node of this node, the pod needs %d on one NUMA node (%s)",
			need.who(), need.resource, p.maxNUMAHealthy(), need.count, numaWhy(req, ns))}
	}
	if p.free < need.count {
		promised := ""
		if p.assumed > 0 {
			promised = fmt.Sprintf(" (%d promised to pods being scheduled)", p.assumed)
		}
		return &verdict{reason: ReasonVFFree, msg: fmt.Sprintf(
			"%s: pool %s has %d of %d VFs free on this node%s, the pod needs %d",
			need.who(), need.resource, max(0, p.free), p.capacity, promised, need.count)}
	}
	if single {
		if numa, free := p.bestNUMA(); free < need.count {
			return &verdict{reason: ReasonNUMAFree, msg: fmt.Sprintf(
				"%s: pool %s has %d of %d VFs free on NUMA node %s, the pod needs %d on one NUMA node (%s)",
				need.who(), need.resource, free, numa.healthy, numa.key, need.count, numaWhy(req, ns))}
		}
	}
	return nil
}

func numaWhy(req *request, ns *nodeState) string {
	if ns.singleNUMA {
		return "the node's Topology Manager policy is " + PolicySingleNUMANode
	}
	return "the pod's " + SingleNUMAAnnotation + " annotation"
}

// score rates how well req fits node ns (which it fits): 0-10.
func (c *Cluster) score(req *request, ns *nodeState, self *assumedPod, selfHere bool) int64 {
	if len(req.vfs) == 0 {
		return 0
	}
	total := 0.0
	for i := range req.vfs {
		need := &req.vfs[i]
		p := c.vfPool(ns, need, self, selfHere)
		total += scoreVFs(p, need.count, c.opts.Placement)
	}
	return int64(math.Round(total / float64(len(req.vfs))))
}

// scoreVFs: 4 when the VFs fit on one NUMA node (2 when unknown), 2 when they can come from as
// many PFs as VFs there (spread over PFs: one PF failing takes one), and up to 4 by placement:
// the share of the pool left free after the pod (spread), or taken (pack).
func scoreVFs(p poolOnNode, need int64, placement Placement) float64 {
	s := 0.0
	if numa, free := p.bestNUMA(); numa == nil {
		s += 3 // unknown layout: between fit and not
	} else if free >= need {
		s += 4
		if pfs := int64(numa.pfsWithFree); pfs >= need || need == 1 {
			s += 2
		} else if pfs > 1 {
			s += 1
		}
	}
	left := float64(p.free-need) / float64(max(p.capacity, 1))
	if placement == Pack {
		left = 1 - left
	}
	return s + 4*left
}
