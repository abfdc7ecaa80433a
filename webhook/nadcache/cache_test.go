package nadcache

import (
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-project/plexus/cni/network"
)

func podWith(phase corev1.PodPhase, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "p", Annotations: annotations, Labels: map[string]string{"a": "b"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func TestIndexPod(t *testing.T) {
	cases := []struct {
		name  string
		pod   *corev1.Pod
		wants string
	}{
		{"comma form, namespace defaulted, duplicates once", podWith(corev1.PodRunning, map[string]string{
			network.NetworksAnnotation: "net1, other/net2@eth1, net1@eth2"}), "team/net1 other/net2"},
		{"JSON and default network", podWith(corev1.PodPending, map[string]string{
			network.NetworksAnnotation: `[{"name":"net1","namespace":"x"}]`, network.DefaultNetworkAnnotation: "kube-system/def"}), "x/net1 kube-system/def"},
		{"finished pods hold nothing", podWith(corev1.PodSucceeded, map[string]string{network.NetworksAnnotation: "net1"}), ""},
		{"failed pods hold nothing", podWith(corev1.PodFailed, map[string]string{network.NetworksAnnotation: "net1"}), ""},
		{"unparseable annotation holds nothing", podWith(corev1.PodRunning, map[string]string{network.NetworksAnnotation: "a/b/c"}), ""},
		{"no networks", podWith(corev1.PodRunning, nil), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(indexPod(tc.pod), " "); got != tc.wants {
				t.Errorf("keys = %q, want %q", got, tc.wants)
			}
		})
	}
}

func TestStripPod(t *testing.T) {
	p := podWith(corev1.PodRunning, map[string]string{network.NetworksAnnotation: "net1", "big": strings.Repeat("x", 1000)})
	out, err := stripPod(p)
	if err != nil {
		t.Fatal(err)
	}
	s := out.(*corev1.Pod)
	if s.Name != "p" || s.Namespace != "team" || s.Status.Phase != corev1.PodRunning || s.Annotations[network.NetworksAnnotation] != "net1" {
		t.Errorf("lost what the index needs: %+v", s)
	}
	if len(s.Annotations) != 1 || s.Labels != nil || len(s.Spec.Containers) != 0 {
		t.Errorf("kept more than needed: %+v", s)
	}
}

func TestParse(t *testing.T) {
	good := Parse(&nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "n",
		Annotations: map[string]string{network.ResourceNameAnnotation: "intel.com/x"}},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","type":"macvlan"}`}})
	if good.Err != nil || good.Network.ResourceName != "intel.com/x" || good.Key() != "a/n" {
		t.Errorf("good NAD: %+v", good)
	}
	bad := Parse(&nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "bad"}})
	if bad.Err == nil || bad.Network != nil {
		t.Errorf("bad NAD parsed: %+v", bad)
	}
}
