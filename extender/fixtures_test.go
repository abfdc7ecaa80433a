package extender

import (
	"encoding/json"
	"fmt"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/deviceplugin/capacity"
)

const vf = "intel.com/sriov_netdevice"

func testNode(name string, vfs int64, labels map[string]string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("4"), vf: *resource.NewQuantity(vfs, resource.DecimalSI),
		}},
	}
}

// withNUMA publishes a capacity annotation: per NUMA node, healthy and free VFs, one PF each
// (pfs PFs per NUMA node when given).
func withNUMA(n *corev1.Node, numa map[string]capacity.Count, pfs int) *corev1.Node {
	b, _ := json.Marshal(capacity.NodeCapacity{Pools: map[string]capacity.PoolCapacity{vf: poolCapacity(numa, pfs)}})
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	n.Annotations[capacity.Annotation] = string(b)
	return n
}

// poolCapacity is a published pool: per NUMA node, healthy and free VFs, pfs PFs each (one
// when 0) counting the same.
func poolCapacity(numa map[string]capacity.Count, pfs int) capacity.PoolCapacity {
	pc := capacity.PoolCapacity{NUMA: numa, PFs: map[string]capacity.PFCount{}}
	for k, c := range numa {
		pc.Healthy += c.Healthy
		pc.Free += c.Free
		var id int
		fmt.Sscan(k, &id)
		for i := 0; i < max(pfs, 1); i++ {
			pc.PFs[fmt.Sprintf("0000:%02d:00.%d", id, i)] = capacity.PFCount{Count: capacity.Count{Healthy: c.Healthy, Free: c.Free}, NUMA: id}
		}
	}
	return pc
}

func testNAD(name, resourceName, selector, ipam string) *nadv1.NetworkAttachmentDefinition {
	nad := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: map[string]string{}}}
	conf := map[string]any{"cniVersion": "1.0.0", "name": name, "type": "plexus-sriov"}
	if ipam != "" {
		conf["ipam"] = json.RawMessage(ipam)
	}
	b, _ := json.Marshal(conf)
	nad.Spec.Config = string(b)
	if resourceName != "" {
		nad.Annotations[network.ResourceNameAnnotation] = resourceName
	}
	if selector != "" {
		nad.Annotations[network.NodeSelectorAnnotation] = selector
	}
	return nad
}

func testPod(name, networks string, vfs int64) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name), Annotations: map[string]string{}}}
	if networks != "" {
		p.Annotations[network.NetworksAnnotation] = networks
	}
	ctr := corev1.Container{Name: "app"}
	if vfs > 0 {
		q := corev1.ResourceList{vf: *resource.NewQuantity(vfs, resource.DecimalSI)}
		ctr.Resources = corev1.ResourceRequirements{Requests: q, Limits: q}
	}
	p.Spec.Containers = []corev1.Container{ctr}
	return p
}

func bound(p *corev1.Pod, node string) *corev1.Pod {
	p = p.DeepCopy()
	p.Spec.NodeName = node
	return p
}

func names(ns ...string) *extenderv1.ExtenderArgs { return namesArgs(ns) }

func namesArgs(ns []string) *extenderv1.ExtenderArgs { return &extenderv1.ExtenderArgs{NodeNames: &ns} }

func filter(t *testing.T, c *Cluster, pod *corev1.Pod, nodes ...string) *extenderv1.ExtenderFilterResult {
	t.Helper()
	args := names(nodes...)
	args.Pod = pod
	r, _ := c.Filter(t.Context(), args)
	if r.Error != "" {
		t.Fatalf("Filter(%s): %s", pod.Name, r.Error)
	}
	given := map[string]bool{}
	for _, n := range nodes {
		given[n] = true
	}
	for _, n := range *r.NodeNames {
		if !given[n] {
			t.Fatalf("Filter(%s) answered node %s it was not given", pod.Name, n)
		}
	}
	return r
}
