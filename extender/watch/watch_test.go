package watch

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/deviceplugin/capacity"
	"github.com/plexus-project/plexus/extender"
)

// The informers keep only what the extender reads; what they keep must still give the same
// decisions as the whole object.
func TestStripKeepsWhatTheExtenderReads(t *testing.T) {
	q := corev1.ResourceList{"intel.com/sriov_netdevice": resource.MustParse("2"), corev1.ResourceCPU: resource.MustParse("1")}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u", Labels: map[string]string{"app": "x"},
			Annotations:   map[string]string{network.NetworksAnnotation: "a,b", extender.SingleNUMAAnnotation: "true", "other": "big"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: corev1.PodSpec{NodeName: "n", Containers: []corev1.Container{{Name: "c", Image: "busybox", Env: []corev1.EnvVar{{Name: "X"}},
			Resources: corev1.ResourceRequirements{Requests: q, Limits: q}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady}}},
	}
	got, _ := stripPod(pod)
	p := got.(*corev1.Pod)
	switch {
	case p.UID != "u" || p.Spec.NodeName != "n" || p.Status.Phase != corev1.PodRunning:
		t.Errorf("identity, node or phase lost: %+v", p)
	case p.Annotations[network.NetworksAnnotation] != "a,b" || p.Annotations[extender.SingleNUMAAnnotation] != "true" || p.Annotations["other"] != "":
		t.Errorf("annotations %v", p.Annotations)
	case p.Spec.Containers[0].Resources.Requests.Name("intel.com/sriov_netdevice", resource.DecimalSI).Value() != 2 || p.Spec.Containers[0].Image != "":
		t.Errorf("containers %+v", p.Spec.Containers)
	case p.Labels != nil || p.ManagedFields != nil || p.Status.Conditions != nil:
		t.Errorf("kept what the extender does not read: %+v", p)
	}

	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{"net/a": "true"},
			Annotations: map[string]string{capacity.Annotation: `{"pools":{}}`, "other": "x"}},
		Status: corev1.NodeStatus{Allocatable: q, Images: []corev1.ContainerImage{{Names: []string{"big"}}}},
	}
	got, _ = stripNode(node)
	n := got.(*corev1.Node)
	if n.Labels["net/a"] != "true" || n.Annotations[capacity.Annotation] == "" || n.Annotations["other"] != "" || n.Status.Images != nil || len(n.Status.Allocatable) != 2 {
		t.Errorf("stripped node %+v", n)
	}
}
