package extender

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/plexus-project/plexus/deviceplugin/capacity"
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// issueCluster is the acceptance layout of issue 12: nodes with 4, 2 and 0 VFs free after
// existing pods, and sriov-n3 on the nodes labelled net/n3=true (n1, n2).
func issueCluster(t *testing.T) *Cluster {
	c := NewCluster(Options{})
	c.SetNode(testNode("n1", 4, map[string]string{"net/n3": "true"}))
	c.SetNode(testNode("n2", 4, map[string]string{"net/n3": "true"}))
	c.SetNode(testNode("n3", 2, nil))
	c.SetNAD(testNAD("sriov-n3", vf, "net/n3=true", ""))
	c.SetPod(bound(testPod("old-a", "", 2), "n2"))
	c.SetPod(bound(testPod("old-b", "", 2), "n3"))
	return c
}

func TestFilter(t *testing.T) {
	for _, tc := range []struct {
		name         string
		pod          *corev1.Pod
		fit          []string
		failed       map[string]string // node -> part of the message
		unresolvable map[string]string
	}{{
		name: "2 VFs fit where the network is and 2 are free",
		pod:  testPod("p", "sriov-n3", 2),
		fit:  []string{"n1", "n2"},
		unresolvable: map[string]string{
			"n3": "network sriov-n3 is not on this node: NetworkAttachmentDefinition default/sriov-n3 selects nodes labelled net/n3=true"},
	}, {
		name:         "4 VFs: only n1 has them",
		pod:          testPod("p", "sriov-n3", 4),
		fit:          []string{"n1"},
		failed:       map[string]string{"n2": "network sriov-n3: pool intel.com/sriov_netdevice has 2 of 4 VFs free on this node, the pod needs 4"},
		unresolvable: map[string]string{"n3": "is not on this node"},
	}, {
		name: "more VFs than any node has",
		pod:  testPod("p", "sriov-n3", 5),
		unresolvable: map[string]string{
			"n1": "pool intel.com/sriov_netdevice has 4 healthy VFs on this node, the pod needs 5",
			"n2": "has 4 healthy VFs", "n3": "is not on this node"},
	}, {
		name:         "two attachments need two VFs even when the pod requests one",
		pod:          testPod("p", "sriov-n3,sriov-n3", 1),
		fit:          []string{"n1", "n2"},
		unresolvable: map[string]string{"n3": "is not on this node"},
	}, {
		name: "missing NAD fails everywhere, saying so",
		pod:  testPod("p", "sriov-n9", 1),
		unresolvable: map[string]string{
			"n1": "network sriov-n9: NetworkAttachmentDefinition default/sriov-n9 does not exist; create it or fix the pod's k8s.v1.cni.cncf.io/networks annotation",
			"n2": "does not exist", "n3": "does not exist"},
	}, {
		name: "a selection that does not parse fails everywhere",
		pod:  testPod("p", "bad name!", 1),
		unresolvable: map[string]string{
			"n1": "the pod's networks cannot be read: annotation k8s.v1.cni.cncf.io/networks", "n2": "cannot be read", "n3": "cannot be read"},
	}, {
		name: "a pod without networks or VFs fits everywhere",
		pod:  testPod("p", "", 0),
		fit:  []string{"n1", "n2", "n3"},
	}, {
		name:         "a pod requesting VFs without a network is still counted",
		pod:          testPod("p", "", 3),
		fit:          []string{"n1"},
		failed:       map[string]string{"n2": "the pod's request: pool intel.com/sriov_netdevice has 2 of 4 VFs free on this node, the pod needs 3"},
		unresolvable: map[string]string{"n3": "has 2 healthy VFs on this node, the pod needs 3"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := issueCluster(t)
			r := filter(t, c, tc.pod, "n1", "n2", "n3")
			if got := *r.NodeNames; !slices.Equal(got, tc.fit) && !(len(got) == 0 && len(tc.fit) == 0) {
				t.Errorf("fit %v, want %v", got, tc.fit)
			}
			checkReasons(t, "FailedNodes", r.FailedNodes, tc.failed)
			checkReasons(t, "FailedAndUnresolvableNodes", r.FailedAndUnresolvableNodes, tc.unresolvable)
		})
	}
}

func checkReasons(t *testing.T, what string, got extenderv1.FailedNodesMap, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %v, want nodes %v", what, got, want)
	}
	for n, part := range want {
		if !strings.Contains(got[n], part) {
			t.Errorf("%s[%s] = %q, want it to contain %q", what, n, got[n], part)
		}
	}
}

func TestFilterNUMA(t *testing.T) {
	numa := func(h0, f0, h1, f1 int) map[string]capacity.Count {
		return map[string]capacity.Count{"0": {Healthy: h0, Free: f0}, "1": {Healthy: h1, Free: f1}}
	}
	single := func(p *corev1.Pod) *corev1.Pod { p.Annotations[SingleNUMAAnnotation] = "true"; return p }
	for _, tc := range []struct {
		name   string
		node   *corev1.Node
		bound  int64 // VFs of a pod bound since the annotation was published
		pod    *corev1.Pod
		reason string // "" = fits
		unres  bool
	}{
		{name: "fits on NUMA 1", node: withNUMA(testNode("n", 8, nil), numa(4, 1, 4, 3), 1), pod: single(testPod("p", "net", 2))},
		{name: "free but split across NUMA nodes", node: withNUMA(testNode("n", 8, nil), numa(4, 1, 4, 1), 1), pod: single(testPod("p", "net", 2)),
			reason: "network net: pool intel.com/sriov_netdevice has 1 of 4 VFs free on NUMA node 0, the pod needs 2 on one NUMA node (the pod's plexus.io/single-numa annotation)"},
		{name: "no NUMA node is big enough", node: withNUMA(testNode("n", 4, nil), numa(2, 2, 2, 2), 1), pod: single(testPod("p", "net", 3)),
			reason: "has at most 2 healthy VFs on one NUMA node of this node, the pod needs 3 on one NUMA node", unres: true},
		{name: "the node's policy asks without the pod annotation", node: withNUMA(testNode("n", 8, map[string]string{TopologyPolicyLabel: PolicySingleNUMANode}), numa(4, 1, 4, 1), 1),
			pod: testPod("p", "net", 2), reason: "the node's Topology Manager policy is single-numa-node"},
		{name: "without either, a split fits", node: withNUMA(testNode("n", 8, nil), numa(4, 1, 4, 1), 1), pod: testPod("p", "net", 2)},
		{name: "VFs taken since the annotation was published count on every NUMA node", node: withNUMA(testNode("n", 8, nil), numa(4, 4, 4, 4), 1),
			bound: 3, pod: single(testPod("p", "net", 2)), reason: "has 1 of 4 VFs free on NUMA node 0, the pod needs 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCluster(Options{})
			c.SetNode(tc.node)
			c.SetNAD(testNAD("net", vf, "", ""))
			if tc.bound > 0 {
				c.SetPod(bound(testPod("old", "", tc.bound), "n"))
			}
			r := filter(t, c, tc.pod, "n")
			msg := r.FailedNodes["n"] + r.FailedAndUnresolvableNodes["n"]
			switch {
			case tc.reason == "" && msg != "":
				t.Fatalf("rejected: %s", msg)
			case tc.reason != "" && !strings.Contains(msg, tc.reason):
				t.Fatalf("reason %q, want it to contain %q", msg, tc.reason)
			case tc.reason != "" && (r.FailedAndUnresolvableNodes["n"] != "") != tc.unres:
				t.Fatalf("unresolvable = %v, want %v", !tc.unres, tc.unres)
			}
		})
	}
}

// A burst of pods admitted before any is seen bound never promises a node more VFs than it has.
func TestFilterAssumesAdmittedPods(t *testing.T) {
	now := time.Unix(1000, 0)
	c := NewCluster(Options{AssumeTTL: 30 * time.Second, Now: func() time.Time { return now }})
	c.SetNode(testNode("a", 2, nil))
	c.SetNode(testNode("b", 1, nil))
	c.SetNAD(testNAD("net", vf, "", ""))
	admitted := 0
	for i := range 5 {
		r := filter(t, c, testPod("p"+string(rune('0'+i)), "net", 1), "a", "b")
		if len(*r.NodeNames) > 0 {
			admitted++
		}
	}
	// Each admitted pod may land on either node, so only the first fits both; with a and b
	// each counting every admission, the third and later are refused.
	if admitted != 2 {
		t.Fatalf("admitted %d pods on 3 VFs before any binding, want 2 (a pod admitted on both nodes counts on both)", admitted)
	}
	r := filter(t, c, testPod("late", "net", 1), "a", "b")
	if !strings.Contains(r.FailedNodes["a"], "promised to pods being scheduled") {
		t.Fatalf("reason %q does not mention the promised VFs", r.FailedNodes["a"])
	}
	// Binding p0 on a and p1 on b resolves both assumptions: a has one VF left.
	c.SetPod(bound(testPod("p0", "net", 1), "a"))
	c.SetPod(bound(testPod("p1", "net", 1), "b"))
	if r := filter(t, c, testPod("late", "net", 1), "a", "b"); !slices.Equal(*r.NodeNames, []string{"a"}) {
		t.Fatalf("after the bindings: fit %v, want [a]", *r.NodeNames)
	}
	// late is now assumed on a; a fourth pod waits until the assumption expires.
	if r := filter(t, c, testPod("p4", "net", 1), "a", "b"); len(*r.NodeNames) != 0 {
		t.Fatalf("a is promised to late, yet p4 fit %v", *r.NodeNames)
	}
	now = now.Add(31 * time.Second)
	if r := filter(t, c, testPod("p4", "net", 1), "a", "b"); !slices.Equal(*r.NodeNames, []string{"a"}) {
		t.Fatalf("after the assumption expired: fit %v, want [a]", *r.NodeNames)
	}
	// A pod that ends gives its VF back.
	done := bound(testPod("p0", "net", 1), "a")
	done.Status.Phase = corev1.PodSucceeded
	c.SetPod(done)
	c.DeletePod("uid-p4")
	if r := filter(t, c, testPod("p5", "net", 1), "a", "b"); len(*r.NodeNames) != 1 {
		t.Fatalf("after p0 ended: fit %v, want one node", *r.NodeNames)
	}
}

func TestFilterIPPool(t *testing.T) {
	c := NewCluster(Options{})
	c.SetNode(testNode("a", 0, nil))
	c.SetNode(testNode("b", 0, nil))
	// Two addresses, 10.9.0.1 already allocated: one free.
	c.SetNAD(testNAD("mv", "", "", `{"type":"plexus-ipam","range":"10.9.0.0/24","range_start":"10.9.0.1","range_end":"10.9.0.2","network_name":"mv"}`))
	block := &v1alpha1.IPBlock{ObjectMeta: metav1.ObjectMeta{Name: "mv-10-9-0-0-27"}, Spec: v1alpha1.IPBlockSpec{
		Network: "mv", CIDR: "10.9.0.0/27", Node: "a",
		Allocations: map[string]v1alpha1.Allocation{"10.9.0.1": {PodNamespace: "default", PodName: "old", PodUID: "uid-old"}},
	}}
	c.SetBlock(block)
	c.SetPod(bound(testPod("old", "mv", 0), "a"))

	if r := filter(t, c, testPod("first", "mv", 0), "a", "b"); len(*r.NodeNames) != 2 {
		t.Fatalf("first pod: fit %v, want both nodes (one address free)", *r.NodeNames)
	}
	r := filter(t, c, testPod("second", "mv", 0), "a", "b")
	if len(*r.NodeNames) != 0 {
		t.Fatalf("second pod fit %v though the only address is promised to the first", *r.NodeNames)
	}
	for _, want := range []string{"network mv: IP pool mv-10-9-0-0-24-", "(10.9.0.0/24", "has 0 free of 2 addresses (1 allocated, 1 promised to pods being started), the pod needs 1"} {
		if !strings.Contains(r.FailedNodes["a"], want) {
			t.Fatalf("reason %q, want it to contain %q", r.FailedNodes["a"], want)
		}
	}
	// Bound without an address yet, the first pod still holds one; with its allocation in the
	// block it is counted once.
	c.SetPod(bound(testPod("first", "mv", 0), "b"))
	if r := filter(t, c, testPod("second", "mv", 0), "a", "b"); len(*r.NodeNames) != 0 {
		t.Fatalf("first bound without an allocation yet: second fit %v", *r.NodeNames)
	}
	block = block.DeepCopy()
	block.Spec.Allocations["10.9.0.2"] = v1alpha1.Allocation{PodNamespace: "default", PodName: "first", PodUID: "uid-first"}
	c.SetBlock(block)
	if r := filter(t, c, testPod("second", "mv", 0), "a", "b"); len(*r.NodeNames) != 0 || !strings.Contains(r.FailedNodes["a"], "2 allocated, 0 promised") {
		t.Fatalf("after the allocation: fit %v, reason %q", *r.NodeNames, r.FailedNodes["a"])
	}
	// The old pod goes and its address is freed.
	c.DeletePod("uid-old")
	block = block.DeepCopy()
	delete(block.Spec.Allocations, "10.9.0.1")
	c.SetBlock(block)
	if r := filter(t, c, testPod("second", "mv", 0), "a", "b"); len(*r.NodeNames) != 2 {
		t.Fatalf("after a release: fit %v, want both", *r.NodeNames)
	}
}

// With nodeCacheCapable false the scheduler sends Node objects and expects them back; a node the
// informer has not delivered yet is judged from the object.
func TestFilterNodeObjects(t *testing.T) {
	c := issueCluster(t)
	list := &corev1.NodeList{Items: []corev1.Node{*testNode("n1", 4, map[string]string{"net/n3": "true"}), *testNode("new", 4, map[string]string{"net/n3": "true"}), *testNode("n3", 2, nil)}}
	r, stats := c.Filter(t.Context(), &extenderv1.ExtenderArgs{Pod: testPod("p", "sriov-n3", 3), Nodes: list})
	if r.NodeNames != nil || r.Nodes == nil {
		t.Fatalf("answered names to a call with objects: %+v", r)
	}
	var got []string
	for _, n := range r.Nodes.Items {
		got = append(got, n.Name)
	}
	if !slices.Equal(got, []string{"n1", "new"}) {
		t.Fatalf("fit %v, want [n1 new]", got)
	}
	if stats[ReasonNetworkNotOnNode] != 1 {
		t.Fatalf("stats %v, want one %s", stats, ReasonNetworkNotOnNode)
	}
	// Unknown names, in a nodeCacheCapable call, are refused for now, not dropped silently.
	r = filter(t, c, testPod("q", "sriov-n3", 1), "ghost")
	if !strings.Contains(r.FailedNodes["ghost"], "has not seen this node yet") {
		t.Fatalf("unknown node: %+v", r)
	}
}

func TestFilterErrors(t *testing.T) {
	c := issueCluster(t)
	if r, _ := c.Filter(t.Context(), &extenderv1.ExtenderArgs{}); r.Error == "" {
		t.Fatal("a call without a pod got no error")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	args := names("n1")
	args.Pod = testPod("p", "sriov-n3", 1)
	if r, _ := c.Filter(ctx, args); !strings.Contains(r.Error, "before the deadline") {
		t.Fatalf("a call past its deadline: %+v", r)
	}
	args.Pod = testPod("p", strings.Repeat("sriov-n3,", 40)+"sriov-n3", 1)
	if r, _ := c.Filter(t.Context(), args); !strings.Contains(r.FailedAndUnresolvableNodes["n1"], "selects 41 networks") {
		t.Fatalf("41 networks: %+v", r)
	}
}

func TestResourceNames(t *testing.T) {
	c := issueCluster(t)
	c.SetNAD(testNAD("other", "mellanox.com/cx6", "", ""))
	c.SetNAD(testNAD("again", vf, "", ""))
	if got := c.ResourceNames(); !slices.Equal(got, []string{vf, "mellanox.com/cx6"}) {
		t.Fatalf("ResourceNames = %v", got)
	}
	c.DeleteNAD("default", "other")
	if got := c.ResourceNames(); !slices.Equal(got, []string{vf}) {
		t.Fatalf("after delete: ResourceNames = %v", got)
	}
}

// Once the scheduler says where a pod goes (bind), it stops counting on the other nodes.
func TestBoundNarrowsTheAssumption(t *testing.T) {
	c := NewCluster(Options{})
	c.SetNode(testNode("a", 1, nil))
	c.SetNode(testNode("b", 1, nil))
	c.SetNAD(testNAD("net", vf, "", ""))
	filter(t, c, testPod("p0", "net", 1), "a", "b")
	if r := filter(t, c, testPod("p1", "net", 1), "a", "b"); len(*r.NodeNames) != 0 {
		t.Fatalf("p0 may go to either node, yet p1 fit %v", *r.NodeNames)
	}
	c.Bound("uid-p0", "a")
	if r := filter(t, c, testPod("p1", "net", 1), "a", "b"); !slices.Equal(*r.NodeNames, []string{"b"}) {
		t.Fatalf("p0 is bound to a: p1 fit %v, want [b]", *r.NodeNames)
	}
	// The informer's binding then replaces the assumption; a is still full.
	c.SetPod(bound(testPod("p0", "net", 1), "a"))
	c.Bound("uid-p0", "b") // late or repeated: no effect once seen bound
	if r := filter(t, c, testPod("p2", "net", 1), "a"); len(*r.NodeNames) != 0 {
		t.Fatalf("a holds p0, yet p2 fit %v", *r.NodeNames)
	}
}

// Under single-NUMA placement, the VFs of all the pod's pools come from one NUMA node together.
func TestFilterNUMAAcrossPools(t *testing.T) {
	const vfB = "intel.com/sriov_b"
	node := func(a, b map[string]capacity.Count) *corev1.Node {
		n := testNode("n", 4, map[string]string{TopologyPolicyLabel: PolicySingleNUMANode})
		n.Status.Allocatable[vfB] = *resource.NewQuantity(4, resource.DecimalSI)
		b2, _ := json.Marshal(capacity.NodeCapacity{Pools: map[string]capacity.PoolCapacity{vf: poolCapacity(a, 1), vfB: poolCapacity(b, 1)}})
		n.Annotations = map[string]string{capacity.Annotation: string(b2)}
		return n
	}
	numa := func(h0, f0, h1, f1 int) map[string]capacity.Count {
		return map[string]capacity.Count{"0": {Healthy: h0, Free: f0}, "1": {Healthy: h1, Free: f1}}
	}
	for _, tc := range []struct {
		name   string
		a, b   map[string]capacity.Count
		reason string
		unres  bool
	}{
		{name: "both free on NUMA 1", a: numa(2, 2, 2, 1), b: numa(2, 0, 2, 1)},
		{name: "free only on different NUMA nodes", a: numa(2, 2, 2, 0), b: numa(2, 0, 2, 2),
			reason: "networks n3, n6: no NUMA node of this node has 1 free VF of pool intel.com/sriov_b and 1 free VF of pool intel.com/sriov_netdevice together, the pod needs them on one NUMA node (the node's Topology Manager policy is single-numa-node)"},
		{name: "each pool on its own NUMA node", a: numa(4, 4, 0, 0), b: numa(0, 0, 4, 4), unres: true,
			reason: "has 1 healthy VF of pool intel.com/sriov_b and 1 healthy VF of pool intel.com/sriov_netdevice together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCluster(Options{})
			c.SetNAD(testNAD("n3", vf, "", ""))
			c.SetNAD(testNAD("n6", vfB, "", ""))
			c.SetNode(node(tc.a, tc.b))
			p := testPod("p", "n3, n6", 0)
			r := filter(t, c, p, "n")
			msg, unres := r.FailedNodes["n"], false
			if m, ok := r.FailedAndUnresolvableNodes["n"]; ok {
				msg, unres = m, true
			}
			if tc.reason == "" {
				if msg != "" || len(*r.NodeNames) != 1 {
					t.Fatalf("want a fit, got %q", msg)
				}
				return
			}
			if !strings.Contains(msg, tc.reason) || unres != tc.unres {
				t.Fatalf("got %q (unresolvable %v), want %q (unresolvable %v)", msg, unres, tc.reason, tc.unres)
			}
		})
	}
}
