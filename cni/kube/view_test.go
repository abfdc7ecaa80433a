package kube

import (
	"context"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadfake "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/plexus-project/plexus/cni/network"
)

func TestViewReadsFromCachesAndFallsBackToOneGet(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	onNode := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "u1", Annotations: map[string]string{
		network.NetworksAnnotation: "net1", "kubectl.kubernetes.io/last-applied-configuration": "{...big...}"}},
		Spec: corev1.PodSpec{NodeName: "node1", Containers: []corev1.Container{{Name: "c"}}}}
	elsewhere := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b"}, Spec: corev1.PodSpec{NodeName: "node2"}}
	client := fake.NewClientset(onNode)
	// Created through the client: the fake's tracker files objects given to NewSimpleClientset
	// under a guessed resource name the NAD client does not use.
	nads := nadfake.NewSimpleClientset()
	if _, err := nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions("ns").Create(ctx,
		&nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "net1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	v := NewView(client, nads, "node1", time.Second)
	v.Start(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for !v.Synced() {
		if time.Now().After(deadline) {
			t.Fatal("caches not synced")
		}
		time.Sleep(10 * time.Millisecond)
	}
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	defer pcancel()
	pod, err := v.Pod(pctx, "ns", "a")
	if err != nil {
		t.Fatal(err)
	}
	if pod.UID != "u1" || pod.Annotations[network.NetworksAnnotation] != "net1" {
		t.Errorf("cached pod = %+v", pod.ObjectMeta)
	}
	if _, ok := pod.Annotations["kubectl.kubernetes.io/last-applied-configuration"]; ok || len(pod.Spec.Containers) != 0 {
		t.Error("the cache keeps more of a pod than the server reads")
	}
	for _, err := v.NAD("ns", "net1"); err != nil; _, err = v.NAD("ns", "net1") {
		if time.Now().After(deadline) {
			t.Fatalf("NAD from the cache: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := v.NAD("ns", "nosuch"); !apierrors.IsNotFound(err) {
		t.Errorf("missing NAD = %v, want NotFound", err)
	}
	// A pod bound to another node is not this node's, even though a GET finds it.
	if _, err := client.CoreV1().Pods("ns").Create(ctx, elsewhere, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer wcancel()
	if _, err := v.Pod(wctx, "ns", "c"); !apierrors.IsNotFound(err) {
		t.Errorf("missing pod = %v, want NotFound", err)
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
