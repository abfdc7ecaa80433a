package extender

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/plexus-project/plexus/extender/app"
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// Issue 12's first acceptance: nodes with 4, 2 and 0 VFs free after the pods already there, and
// sriov-n3 only on the nodes labelled net/n3=true (n1 and n2). The scheduler leaves the VF
// count to the extender (ignoredByScheduler), so the placements and reasons are the extender's.
func TestNetworksVFsAndMissingNAD(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := start(t, stanza{managed: []string{string(vf)}, ignoredByScheduler: true})
	e.node(ctx, t, "n1", 4, map[string]string{"net/n3": "true"})
	e.node(ctx, t, "n2", 4, map[string]string{"net/n3": "true"})
	e.node(ctx, t, "n3", 2, nil)
	e.nad(ctx, t, "sriov-n3", string(vf), "net/n3=true", "")
	e.create(ctx, t, pod("there-before-2", "", 2, "n2"), pod("there-before-3", "", 2, "n3"))

	two := pod("two-vfs", "sriov-n3", 2, "")
	e.create(ctx, t, two)
	e.settle(ctx, t, two)
	if two.Spec.NodeName != "n1" {
		t.Fatalf("the 2-VF pod went to %q (%s), want n1: the only node with the network and VFs to spare", two.Spec.NodeName, unschedulable(two))
	}

	four := pod("four-vfs", "sriov-n3", 4, "")
	e.create(ctx, t, four)
	e.settle(ctx, t, four)
	if four.Spec.NodeName != "" {
		t.Fatalf("the 4-VF pod was bound to %s, which has 2 free", four.Spec.NodeName)
	}
	msg := unschedulable(four)
	t.Logf("4-VF pod Pending: %s", msg)
	wantContains(t, "the 4-VF pod's PodScheduled message", msg,
		"0/3 nodes are available",
		"2 network sriov-n3: pool intel.com/sriov_netdevice has 2 of 4 VFs free on this node, the pod needs 4",
		"1 network sriov-n3 is not on this node: NetworkAttachmentDefinition default/sriov-n3 selects nodes labelled net/n3=true")

	// --print-scheduler-config reads the NADs and lists their resources.
	var out bytes.Buffer
	if err := app.Main(ctx, []string{"--print-scheduler-config", "--kubeconfig", e.cp.Kubeconfig(t, "print"), "--port", "10999"}, &out, io.Discard); err != nil {
		t.Fatalf("--print-scheduler-config: %v", err)
	}
	wantContains(t, "--print-scheduler-config", out.String(), "kind: KubeSchedulerConfiguration", "urlPrefix: http://127.0.0.1:10999/",
		"bindVerb: bind", "nodeCacheCapable: true", "ignorable: false", "name: intel.com/sriov_netdevice")

	missing := pod("missing-nad", "sriov-n9", 1, "")
	e.create(ctx, t, missing)
	e.settle(ctx, t, missing)
	if missing.Spec.NodeName != "" {
		t.Fatalf("a pod whose NAD does not exist was bound to %s", missing.Spec.NodeName)
	}
	msg = unschedulable(missing)
	t.Logf("missing-NAD pod Pending: %s", msg)
	wantContains(t, "the missing-NAD pod's PodScheduled message", msg,
		"3 network sriov-n9: NetworkAttachmentDefinition default/sriov-n9 does not exist; create it or fix the pod's k8s.v1.cni.cncf.io/networks annotation")
}

// An IP pool with one free address: of two pods created at once, exactly one is bound, and the
// other stays Pending naming the pool, also after the first is bound without its address yet.
// The pods ask for no device, so the scheduler sends every pod (no managedResources).
func TestIPPoolWithOneFreeAddress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := start(t, stanza{})
	e.node(ctx, t, "a", 0, nil)
	e.node(ctx, t, "b", 0, nil)
	e.nad(ctx, t, "mv", "", "", `{"type":"plexus-ipam","range":"10.9.0.0/24","range_start":"10.9.0.1","range_end":"10.9.0.2","network_name":"mv"}`)
	// 10.9.0.1 is held by a pod already running on a.
	e.create(ctx, t, pod("holder", "mv", 0, "a"))
	block := &v1alpha1.IPBlock{ObjectMeta: metav1.ObjectMeta{Name: "mv-10-9-0-0-27"}, Spec: v1alpha1.IPBlockSpec{
		Network: "mv", CIDR: "10.9.0.0/27", Node: "a",
		Allocations: map[string]v1alpha1.Allocation{"10.9.0.1": {PodNamespace: "default", PodName: "holder", Pool: "x"}},
	}}
	if err := e.c.Create(ctx, block); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let the extender's informers deliver the block and the pod

	p1, p2 := pod("first", "mv", 0, ""), pod("second", "mv", 0, "")
	var wg sync.WaitGroup
	for _, p := range []*corev1.Pod{p1, p2} {
		wg.Add(1)
		go func() { defer wg.Done(); e.create(ctx, t, p) }()
	}
	wg.Wait()
	e.settle(ctx, t, p1)
	e.settle(ctx, t, p2)
	// Wait past a scheduler retry: the Pending one must stay Pending once the other is bound.
	time.Sleep(3 * time.Second)
	e.settle(ctx, t, p1)
	e.settle(ctx, t, p2)
	boundN, pending := 0, (*corev1.Pod)(nil)
	for _, p := range []*corev1.Pod{p1, p2} {
		if p.Spec.NodeName != "" {
			boundN++
		} else {
			pending = p
		}
	}
	if boundN != 1 || pending == nil {
		t.Fatalf("%d of 2 pods bound, want exactly 1 (one free address)", boundN)
	}
	msg := unschedulable(pending)
	t.Logf("%s Pending: %s", pending.Name, msg)
	wantContains(t, "the Pending pod's PodScheduled message", msg, "network mv: IP pool mv-10-9-0-0-24-", "(10.9.0.0/24", "has 0 free of 2 addresses")
}

// 20 one-VF pods created at once against 3 nodes with 16 VFs: exactly 16 are bound, no node
// gets more than it has, and the other 4 are Pending with the reason.
func TestBurstNeverOversubscribes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := start(t, stanza{managed: []string{string(vf)}, ignoredByScheduler: true})
	capacity := map[string]int{"b1": 8, "b2": 5, "b3": 3}
	for n, c := range capacity {
		e.node(ctx, t, n, int64(c), map[string]string{"net/burst": "true"})
	}
	e.nad(ctx, t, "burst", string(vf), "net/burst=true", "")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); e.create(ctx, t, pod(fmt.Sprintf("burst-%02d", i), "burst", 1, "")) }()
	}
	wg.Wait()

	var perNode map[string]int
	var pendingMsg string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		perNode, pendingMsg = map[string]int{}, ""
		settled := 0
		for _, p := range e.pods(ctx, t) {
			if p.Spec.NodeName != "" {
				perNode[p.Spec.NodeName]++
				settled++
			} else if m := unschedulable(&p); m != "" {
				pendingMsg = m
				settled++
			}
		}
		for n, c := range perNode {
			if c > capacity[n] {
				return false, fmt.Errorf("node %s got %d one-VF pods, it has %d VFs", n, c, capacity[n])
			}
		}
		return settled == 20 && perNode["b1"]+perNode["b2"]+perNode["b3"] == 16, nil
	})
	if err != nil {
		t.Fatalf("bound per node %v (want all 16 VFs used, 4 Pending): %v", perNode, err)
	}
	// Stays so: the 4 left keep being refused.
	time.Sleep(3 * time.Second)
	total := 0
	for _, p := range e.pods(ctx, t) {
		if p.Spec.NodeName != "" {
			total++
		}
	}
	if total != 16 {
		t.Fatalf("%d pods bound after settling, want 16", total)
	}
	t.Logf("bound per node %v; the others Pending: %s", perNode, pendingMsg)
	wantContains(t, "a Pending pod's message", pendingMsg, "pool intel.com/sriov_netdevice has 0 of")
}

// With nodeCacheCapable false the scheduler sends whole Nodes and takes Nodes back; the
// decisions are the same.
func TestWholeNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := start(t, stanza{managed: []string{string(vf)}, ignoredByScheduler: true, wholeNodes: true})
	e.node(ctx, t, "with-net", 2, map[string]string{"net/w": "true"})
	e.node(ctx, t, "without", 8, nil)
	e.nad(ctx, t, "w", string(vf), "net/w=true", "")
	first := pod("first", "w", 2, "")
	e.create(ctx, t, first)
	e.settle(ctx, t, first)
	if first.Spec.NodeName != "with-net" {
		t.Fatalf("first went to %q (%s), want with-net", first.Spec.NodeName, unschedulable(first))
	}
	second := pod("second", "w", 1, "")
	e.create(ctx, t, second)
	e.settle(ctx, t, second)
	if second.Spec.NodeName != "" {
		t.Fatalf("second was bound to %s, which has no VF left or not the network", second.Spec.NodeName)
	}
	wantContains(t, "the second pod's message", unschedulable(second),
		"1 network w is not on this node", "1 network w: pool intel.com/sriov_netdevice has 0 of 2 VFs free on this node, the pod needs 1")
}
