// Package scheduler_test is the scheduler-alone baseline: it runs the real kube-scheduler against
// the real kube-apiserver with NO Plexus code at all (no webhook, no extender), and checks that
// SR-IOV VFs, advertised as an extended resource in a node's status, are scheduled as kubelet
// would have them: a pod asking for one lands on the node that has it, and a second one stays
// Pending when the node has no more.
//
// It proves nothing about Plexus. It pins down what the stock scheduler already does with
// extended resources, so that the extender's tests (test/integration/extender) and the e2e
// tests can be read against it: what they show beyond this baseline is Plexus's doing. If this
// test fails, the harness or the Kubernetes version changed, not Plexus.
package scheduler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	schedulerconfigv1 "k8s.io/kube-scheduler/config/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-project/plexus/test/controlplane"
)

const (
	vf            = corev1.ResourceName("intel.com/sriov_netdevice")
	schedulerName = "plexus-test-scheduler"
)

func node(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
}

func basic(extra corev1.ResourceList) corev1.ResourceList {
	rl := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("4"),
		corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	for k, v := range extra {
		rl[k] = v
	}
	return rl
}

func vfPod(name string) *corev1.Pod {
	one := corev1.ResourceList{vf: resource.MustParse("1")}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PodSpec{SchedulerName: schedulerName, Containers: []corev1.Container{{
			Name: "app", Image: "busybox",
			Resources: corev1.ResourceRequirements{Requests: one, Limits: one},
		}}},
	}
}

func TestSchedulerPlacesVFPodsByNodeCapacity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp := controlplane.Start(t, controlplane.Options{})
	cp.CreateNode(ctx, t, node("plain-node"), basic(nil))
	cp.CreateNode(ctx, t, node("sriov-node"), basic(corev1.ResourceList{vf: resource.MustParse("1")}))
	// A profile of our own name proves the configuration reaches the scheduler.
	cp.StartScheduler(t, &schedulerconfigv1.KubeSchedulerConfiguration{
		Profiles: []schedulerconfigv1.KubeSchedulerProfile{{SchedulerName: ptr.To(schedulerName)}},
	})

	first := vfPod("first")
	if err := cp.Client.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, cp, first, "bound to sriov-node", func(p *corev1.Pod) bool { return p.Spec.NodeName != "" })
	if first.Spec.NodeName != "sriov-node" {
		t.Fatalf("pod asking for a VF was bound to %q, want sriov-node", first.Spec.NodeName)
	}

	second := vfPod("second")
	if err := cp.Client.Create(ctx, second); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, cp, second, "reported Unschedulable", func(p *corev1.Pod) bool {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				return true
			}
		}
		return false
	})
	if second.Spec.NodeName != "" {
		t.Fatalf("second pod was bound to %q though the only VF is taken", second.Spec.NodeName)
	}
	msg := podScheduledMessage(second)
	if !strings.Contains(msg, "Insufficient "+string(vf)) {
		t.Errorf("the scheduler's reason %q does not name the missing resource", msg)
	}
	t.Logf("second pod Pending: %s", msg)
}

func podScheduledMessage(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Message
		}
	}
	return ""
}

func waitFor(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, pod *corev1.Pod, what string, cond func(*corev1.Pod) bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			return false, err
		}
		return cond(pod), nil
	})
	if err != nil {
		t.Fatalf("pod %s not %s: %v (status %+v)", pod.Name, what, err, pod.Status)
	}
}
