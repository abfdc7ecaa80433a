// Package network_test checks the shared network model against a real kube-apiserver: a NAD
// stored through the CRD reads back as the same Network, and network-status is written to a
// real pod.
package network_test

import (
	"context"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/test/controlplane"
)

func TestNADReadBackAsNetwork(t *testing.T) {
	ctx := context.Background()
	cp := controlplane.Start(t, controlplane.Options{})

	created := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "sriov-n3", Annotations: map[string]string{
			network.ResourceNameAnnotation: "intel.com/sriov_netdevice",
			network.NodeSelectorAnnotation: "plexus.io/sriov=true",
		}},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","type":"plexus-sriov","vlan":300,
			"ipam":{"type":"plexus-ipam","range":"10.3.0.0/24"}}`},
	}
	if err := cp.Client.Create(ctx, created); err != nil {
		t.Fatalf("creating the NAD: %v", err)
	}

	var got nadv1.NetworkAttachmentDefinition
	if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(created), &got); err != nil {
		t.Fatalf("reading the NAD back: %v", err)
	}
	n, err := network.FromNAD(&got)
	if err != nil {
		t.Fatal(err)
	}
	if n.Key() != "default/sriov-n3" || n.Config.Name != "sriov-n3" || n.ResourceName != "intel.com/sriov_netdevice" {
		t.Errorf("Network = %s, config name %q, resource %q", n.Key(), n.Config.Name, n.ResourceName)
	}
	if len(n.Types) != 1 || n.Types[0] != "plexus-sriov" {
		t.Errorf("Types = %v", n.Types)
	}
	if n.IPAM == nil || n.IPAM.Type != "plexus-ipam" {
		t.Errorf("IPAM = %+v", n.IPAM)
	}
	if n.NodeSelector["plexus.io/sriov"] != "true" {
		t.Errorf("NodeSelector = %v", n.NodeSelector)
	}

	// The pod a selection names resolves to this NAD.
	sels, err := network.ParseSelections("sriov-n3@net1", "default")
	if err != nil {
		t.Fatal(err)
	}
	if sels[0].Key() != n.Key() {
		t.Errorf("selection %s does not name %s", sels[0].Key(), n.Key())
	}
}

func TestWriteStatusToRealPod(t *testing.T) {
	ctx := context.Background()
	cp := controlplane.Start(t, controlplane.Options{})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", Annotations: map[string]string{network.NetworksAnnotation: "sriov-n3"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if err := cp.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	clientset := kubernetes.NewForConfigOrDie(cp.Config)
	want := []network.Status{{Name: "default/sriov-n3", Interface: "net1", IPs: []string{"10.3.0.5"}, Mac: "02:00:00:00:00:01"}}
	if err := network.WriteStatus(ctx, clientset.CoreV1().Pods("default"), "p", want); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
		t.Fatal(err)
	}
	got, err := network.ReadStatus(pod)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "default/sriov-n3" || got[0].IPs[0] != "10.3.0.5" {
		t.Errorf("network-status = %+v", got)
	}
	if pod.Annotations[network.NetworksAnnotation] != "sriov-n3" {
		t.Errorf("the patch dropped the networks annotation: %v", pod.Annotations)
	}
}
