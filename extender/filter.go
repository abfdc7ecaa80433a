package extender

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"
)

// checkEvery is how many nodes Filter and Prioritize judge between looks at the context.
const checkEvery = 256

// ErrNoPod is the error of a call that carries no pod.
var ErrNoPod = errors.New("the request has no pod")

// Filter keeps the nodes of args where the pod's networks are present, its VFs fit and its
// pools have addresses, and records the pod as assumed on them. It answers with the nodes as
// they came: NodeNames when the scheduler sent names (nodeCacheCapable), Nodes otherwise, and
// never a node it was not given. Nodes that can never fit the pod are in
// FailedAndUnresolvableNodes, those that might after other pods leave in FailedNodes. The
// second result counts the dropped nodes by reason. An error (no pod, ctx done) is in Error.
func (c *Cluster) Filter(ctx context.Context, args *extenderv1.ExtenderArgs) (*extenderv1.ExtenderFilterResult, map[Reason]int) {
	if args == nil || args.Pod == nil {
		return &extenderv1.ExtenderFilterResult{Error: ErrNoPod.Error()}, nil
	}
	names, objs := nodesOf(args)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(c.opts.Now())
	req := c.resolve(args.Pod)
	c.dropAssumption(req.uid)
	if req.empty() {
		return result(args, names, objs, nil, nil, nil), nil
	}
	stats := map[Reason]int{}
	failed, unresolvable := extenderv1.FailedNodesMap{}, extenderv1.FailedNodesMap{}
	reject := func(name string, v *verdict) {
		stats[v.reason]++
		if v.unresolvable {
			unresolvable[name] = v.msg
		} else {
			failed[name] = v.msg
		}
	}
	if req.fail != nil {
		for _, n := range names {
			reject(n, req.fail)
		}
		return result(args, names, objs, nil, failed, unresolvable), stats
	}
	poolVerdict := c.checkPools(req)
	fit := make([]string, 0, len(names))
	fitCounts := make([]*nodeCounts, 0, len(names))
	for i, name := range names {
		if i%checkEvery == 0 && ctx.Err() != nil {
			return &extenderv1.ExtenderFilterResult{Error: fmt.Sprintf("judged %d of %d nodes before the deadline: %v", i, len(names), ctx.Err())}, stats
		}
		ns := c.node(name, objs, i)
		var v *verdict
		if ns == nil {
			v = &verdict{reason: ReasonNodeUnknown, msg: "the scheduler extender has not seen this node yet; it will be judged on the next attempt"}
		} else if v = c.checkNode(req, ns, nil, false); v == nil {
			v = poolVerdict
		}
		if v != nil {
			reject(name, v)
			continue
		}
		fit = append(fit, name)
		if ns.counts == nil {
			ns.counts = c.countsOf(name)
		}
		fitCounts = append(fitCounts, ns.counts)
	}
	c.assume(req, fit, fitCounts)
	return result(args, names, objs, fit, failed, unresolvable), stats
}

// Prioritize scores the nodes of args 0-10 for the pod: VFs on one NUMA node and over distinct
// PFs first, then the placement policy. Nodes the pod does not fit score 0.
func (c *Cluster) Prioritize(ctx context.Context, args *extenderv1.ExtenderArgs) (extenderv1.HostPriorityList, error) {
	if args == nil || args.Pod == nil {
		return nil, ErrNoPod
	}
	names, objs := nodesOf(args)
	out := make(extenderv1.HostPriorityList, len(names))
	c.mu.Lock()
	defer c.mu.Unlock()
	req := c.resolve(args.Pod)
	self := c.inflight[req.uid]
	var selfOn map[*nodeCounts]bool
	if self != nil {
		selfOn = make(map[*nodeCounts]bool, len(self.on))
		for _, nc := range self.on {
			selfOn[nc] = true
		}
	}
	for i, name := range names {
		if i%checkEvery == 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("scored %d of %d nodes before the deadline: %w", i, len(names), ctx.Err())
		}
		out[i].Host = name
		if req.fail != nil || len(req.vfs) == 0 {
			continue
		}
		ns := c.node(name, objs, i)
		if ns == nil {
			continue
		}
		here := self != nil && self.admittedOn(ns.counts, selfOn)
		if c.checkNode(req, ns, self, here) != nil {
			continue
		}
		out[i].Score = min(extenderv1.MaxExtenderPriority, c.score(req, ns, self, here))
	}
	return out, nil
}

// node is the state of the i-th node of the call: the informer's, else the object the
// scheduler sent. The caller holds c.mu.
func (c *Cluster) node(name string, objs []corev1.Node, i int) *nodeState {
	if ns, ok := c.nodes[name]; ok {
		return ns
	}
	if objs != nil {
		// A node the scheduler sent whole (nodeCacheCapable false) that the informer has not
		// delivered yet.
		ns := c.nodeState(&objs[i])
		ns.counts = c.counts[name]
		return ns
	}
	return nil
}

// nodesOf is the node names of a call, and the objects when the scheduler sent them.
func nodesOf(args *extenderv1.ExtenderArgs) ([]string, []corev1.Node) {
	if args.NodeNames != nil {
		return *args.NodeNames, nil
	}
	if args.Nodes == nil {
		return nil, nil
	}
	names := make([]string, len(args.Nodes.Items))
	for i := range args.Nodes.Items {
		names[i] = args.Nodes.Items[i].Name
	}
	return names, args.Nodes.Items
}

// result answers in the form the call came in. fit nil with no failures means every node.
func result(args *extenderv1.ExtenderArgs, names []string, objs []corev1.Node, fit []string, failed, unresolvable extenderv1.FailedNodesMap) *extenderv1.ExtenderFilterResult {
	if fit == nil && len(failed) == 0 && len(unresolvable) == 0 {
		fit = names
	}
	r := &extenderv1.ExtenderFilterResult{FailedNodes: failed, FailedAndUnresolvableNodes: unresolvable}
	if r.FailedNodes == nil {
		r.FailedNodes = extenderv1.FailedNodesMap{}
	}
	if r.FailedAndUnresolvableNodes == nil {
		r.FailedAndUnresolvableNodes = extenderv1.FailedNodesMap{}
	}
	if args.NodeNames != nil || objs == nil {
		// fit is this call's own (Filter's, or the call's names when every node fits).
		r.NodeNames = &fit
		return r
	}
	keep := make(map[string]bool, len(fit))
	for _, n := range fit {
		keep[n] = true
	}
	list := &corev1.NodeList{}
	for i := range objs {
		if keep[objs[i].Name] {
			list.Items = append(list.Items, objs[i])
		}
	}
	r.Nodes = list
	return r
}
