package network

import (
	"context"
	"encoding/json"
	"net"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestStatusFromResultAndBack(t *testing.T) {
	ip, ipnet, _ := net.ParseCIDR("10.3.0.5/24")
	ipnet.IP = ip
	idx := 1
	result := &current.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{
			{Name: "host-side", Mac: "02:00:00:00:00:aa"},
			{Name: "net1", Mac: "02:00:00:00:00:01", Sandbox: "/var/run/netns/x"},
		},
		IPs: []*current.IPConfig{{Address: *ipnet, Interface: &idx}},
	}
	dev := &nadv1.DeviceInfo{Type: nadv1.DeviceInfoTypePCI, Version: nadv1.DeviceInfoVersion, Pci: &nadv1.PciDevice{PciAddress: "0000:3b:02.0"}}
	got, err := StatusFromResult(result, "ns/sriov-n3", false, dev)
	if err != nil {
		t.Fatal(err)
	}
	want := []Status{{Name: "ns/sriov-n3", Interface: "net1", IPs: []string{"10.3.0.5"}, Mac: "02:00:00:00:00:01", DeviceInfo: dev}}
	if !sameJSON(t, got, want) {
		t.Fatalf("StatusFromResult = %+v, want %+v", got, want)
	}

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}
	clientset := fake.NewClientset(pod)
	if err := WriteStatus(context.Background(), clientset.CoreV1().Pods("ns"), "p", got); err != nil {
		t.Fatal(err)
	}
	pod, err = clientset.CoreV1().Pods("ns").Get(context.Background(), "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadStatus(pod)
	if err != nil {
		t.Fatal(err)
	}
	if !sameJSON(t, back, want) {
		t.Errorf("ReadStatus = %+v, want %+v", back, want)
	}
}

func TestReadStatusNone(t *testing.T) {
	st, err := ReadStatus(&corev1.Pod{})
	if err != nil || st != nil {
		t.Errorf("ReadStatus of a pod without the annotation = %v, %v", st, err)
	}
	bad := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: map[string]string{NetworkStatusAnnotation: "{"}}}
	if _, err := ReadStatus(bad); err == nil {
		t.Error("ReadStatus of a malformed annotation succeeded")
	}
}

// sameJSON compares statuses as the annotation carries them (nil and empty lists alike).
func sameJSON(t *testing.T, a, b []Status) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}
