package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-project/plexus/cni/network"
)

// The View's caches, its GET fallback, its status patch and its Events are tested against a
// real API server in test/integration/cni (TestViewAgainstTheAPIServer).

func TestSlimPodDropsWhatTheServerDoesNotRead(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "u1", ResourceVersion: "7", Annotations: map[string]string{
		network.NetworksAnnotation: "net1", "kubectl.kubernetes.io/last-applied-configuration": "{...big...}"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}, Labels: map[string]string{"app": "x"}},
		Spec:   corev1.PodSpec{NodeName: "node1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	got, err := slimPod(pod)
	if err != nil {
		t.Fatal(err)
	}
	p := got.(*corev1.Pod)
	if p.UID != "u1" || p.ResourceVersion != "7" || p.Spec.NodeName != "node1" || p.Annotations[network.NetworksAnnotation] != "net1" {
		t.Errorf("slim pod lost what the server reads: %+v", p.ObjectMeta)
	}
	if len(p.Annotations) != 1 || len(p.Labels) != 0 || len(p.ManagedFields) != 0 || len(p.Spec.Containers) != 0 || p.Status.Phase != "" {
		t.Errorf("slim pod keeps more than the server reads: %+v", p)
	}
}

func TestSlimPodKeepsExtendedResourcesOnly(t *testing.T) {
	vf := corev1.ResourceName("intel.com/sriov_netdevice")
	two := resourceQuantity("2")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}, Spec: corev1.PodSpec{NodeName: "node1",
		Containers: []corev1.Container{
			{Name: "plain", Image: "busybox", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resourceQuantity("1")}}},
			{Name: "dpdk", Image: "dpdk", Env: []corev1.EnvVar{{Name: "A", Value: "b"}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{vf: two, corev1.ResourceMemory: resourceQuantity("1Gi")}, Requests: corev1.ResourceList{vf: two}}},
		}}}
	got, err := slimPod(pod)
	if err != nil {
		t.Fatal(err)
	}
	cs := got.(*corev1.Pod).Spec.Containers
	if len(cs) != 1 || cs[0].Name != "dpdk" || cs[0].Image != "" || len(cs[0].Env) != 0 ||
		len(cs[0].Resources.Limits) != 1 || cs[0].Resources.Limits.Name(vf, "").Value() != 2 || len(cs[0].Resources.Requests) != 1 {
		t.Errorf("slim containers = %+v, want only dpdk with its intel.com/sriov_netdevice limit and request", cs)
	}
}

func resourceQuantity(s string) resource.Quantity { return resource.MustParse(s) }
