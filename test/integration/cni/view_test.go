package cni

import (
	"context"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-project/plexus/cni/kube"
	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/test/controlplane"
)

// TestViewAgainstTheAPIServer: the CNI server's view, under the daemon's role, reads this node's pods (stripped) and the
// NADs from its caches, reads a pod not yet cached with one GET and refuses a pod of another
// node, writes network-status with one pods/status patch, and counts a repeated Event up
// instead of writing another.
func TestViewAgainstTheAPIServer(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{Scheme: scheme()})
	ctx := ctxT(t, 2*time.Minute)
	onNode := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "a", Annotations: map[string]string{
		network.NetworksAnnotation: "net1", "kubectl.kubernetes.io/last-applied-configuration": "{...big...}"}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	elsewhere := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "b"},
		Spec: corev1.PodSpec{NodeName: "node-2", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	for _, p := range []*corev1.Pod{onNode, elsewhere} {
		if err := cp.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := cp.Client.Create(ctx, &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "net1"},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","type":"macvlan"}`}}); err != nil {
		t.Fatal(err)
	}
	v, err := kube.NewView(cp.NewIdentity(t, daemonUser, daemonRole).Config, node, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	v.Start(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for !v.Synced() {
		if time.Now().After(deadline) {
			t.Fatal("caches not synced within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	pod, err := v.Pod(pctx, "default", "a")
	if err != nil {
		t.Fatal(err)
	}
	if pod.UID != onNode.UID || pod.Annotations[network.NetworksAnnotation] != "net1" {
		t.Errorf("cached pod = %+v", pod.ObjectMeta)
	}
	if _, ok := pod.Annotations["kubectl.kubernetes.io/last-applied-configuration"]; ok || len(pod.Spec.Containers) != 0 || len(pod.ManagedFields) != 0 {
		t.Errorf("the cache keeps more of a pod than the server reads: %+v", pod)
	}
	nad, err := v.NAD("default", "net1")
	if err != nil || nad.Spec.Config == "" || len(nad.ManagedFields) != 0 {
		t.Errorf("NAD from the cache = %+v, %v; want its config without managedFields", nad, err)
	}
	if _, err := v.NAD("default", "nosuch"); !apierrors.IsNotFound(err) {
		t.Errorf("missing NAD = %v, want NotFound", err)
	}
	// Not in the cache (another node's): one GET, which finds it bound elsewhere.
	wctx, wcancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer wcancel()
	if _, err := v.Pod(wctx, "default", "b"); !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "node-2") {
		t.Errorf("another node's pod = %v, want NotFound naming node-2", err)
	}

	st := []network.Status{{Name: "default/net1", Interface: "net1", IPs: []string{"10.1.0.5"}}}
	if err := v.WriteStatus(ctx, pod, st); err != nil {
		t.Fatal(err)
	}
	var got corev1.Pod
	if err := cp.Client.Get(ctx, keyOf(onNode), &got); err != nil {
		t.Fatal(err)
	}
	if back, err := network.ReadStatus(&got); err != nil || len(back) != 1 || back[0].Interface != "net1" || back[0].IPs[0] != "10.1.0.5" {
		t.Errorf("network-status written = %+v, %v", back, err)
	}

	// The same failure three times is one Event counted three times; another is another Event.
	for range 3 {
		v.Warn(pod, "NetworkAttachFailed", "network default/net1: master interface nosuch0 not found")
		time.Sleep(300 * time.Millisecond) // sent in the background, one after another
	}
	v.Warn(pod, "NetworkAttachFailed", "network default/net1: something else")
	deadline = time.Now().Add(10 * time.Second)
	for {
		var list corev1.EventList
		if err := cp.Client.List(ctx, &list); err != nil {
			t.Fatal(err)
		}
		counts := map[string]int32{}
		for _, ev := range list.Items {
			if ev.InvolvedObject.UID == pod.UID && ev.Type == corev1.EventTypeWarning && ev.Source.Component == "plexus-daemon" && ev.Source.Host == node {
				counts[ev.Message] += ev.Count
			}
		}
		if len(counts) == 2 && counts["network default/net1: master interface nosuch0 not found"] == 3 && counts["network default/net1: something else"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events on the pod = %v, want the first failure counted 3 times and the second once", counts)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
