package network

import (
	"context"
	"encoding/json"
	"net"
	"testing"

	cnitypes "github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadutils "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/utils"
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

// TestStatusFromResultAsTheNADLibrary: StatusFromResult gives what the NAD client library
// (Multus's) gives for every shape of result: one interface, several with and without sandbox,
// addresses with and without an interface, gateways, default routes, DNS, a device.
func TestStatusFromResultAsTheNADLibrary(t *testing.T) {
	addr := func(s string) net.IPNet {
		ip, n, _ := net.ParseCIDR(s)
		n.IP = ip
		return *n
	}
	zero, one, two := 0, 1, 2
	gw := net.ParseIP("10.3.0.1")
	_, any4, _ := net.ParseCIDR("0.0.0.0/0")
	dns := cnitypes.DNS{Nameservers: []string{"10.0.0.10"}, Domain: "cluster.local", Search: []string{"a.svc"}, Options: []string{"ndots:5"}}
	dev := &nadv1.DeviceInfo{Type: nadv1.DeviceInfoTypePCI, Version: nadv1.DeviceInfoVersion, Pci: &nadv1.PciDevice{PciAddress: "0000:3b:02.0"}}
	results := map[string]*current.Result{
		"no interface": {IPs: []*current.IPConfig{{Address: addr("10.3.0.5/24")}}},
		"one interface": {Interfaces: []*current.Interface{{Name: "net1", Mac: "02:00:00:00:00:01", Mtu: 1400, Sandbox: "/ns"}},
			IPs: []*current.IPConfig{{Address: addr("10.3.0.5/24")}, {Address: addr("fd00::5/64"), Interface: &zero}}, DNS: dns},
		"one host-side interface": {Interfaces: []*current.Interface{{Name: "veth0"}}, IPs: []*current.IPConfig{{Address: addr("10.3.0.5/24")}}},
		"bridge shape": {Interfaces: []*current.Interface{{Name: "br0"}, {Name: "veth1"}, {Name: "eth0", Mac: "02:00:00:00:00:02", Sandbox: "/ns"}},
			IPs:    []*current.IPConfig{{Address: addr("10.3.0.5/24"), Gateway: gw, Interface: &two}},
			Routes: []*cnitypes.Route{{Dst: *any4, GW: gw}}, DNS: dns},
		"two in the pod": {Interfaces: []*current.Interface{{Name: "a", Sandbox: "/ns"}, {Name: "host"}, {Name: "b", Sandbox: "/ns"}},
			IPs: []*current.IPConfig{{Address: addr("10.3.0.5/24"), Interface: &zero}, {Address: addr("10.4.0.5/24"), Gateway: gw, Interface: &two},
				{Address: addr("10.5.0.5/24")}, {Address: addr("10.6.0.5/24"), Interface: &one}}},
		"two, no gateway": {Interfaces: []*current.Interface{{Name: "a", Sandbox: "/ns"}, {Name: "b", Sandbox: "/ns"}},
			IPs: []*current.IPConfig{{Address: addr("10.3.0.5/24"), Interface: &one}}},
	}
	for name, r := range results {
		r.CNIVersion = "1.0.0"
		for _, isDefault := range []bool{false, true} {
			for _, d := range []*nadv1.DeviceInfo{nil, dev} {
				got, err := StatusFromResult(r, "ns/n", isDefault, d)
				if err != nil {
					t.Fatal(err)
				}
				ptrs, err := nadutils.CreateNetworkStatuses(r, "ns/n", isDefault, d)
				if err != nil {
					t.Fatal(err)
				}
				want := []Status{}
				for _, p := range ptrs {
					want = append(want, *p)
				}
				if !sameJSON(t, got, want) {
					g, _ := json.Marshal(got)
					w, _ := json.Marshal(want)
					t.Errorf("%s (default %v, device %v):\n got %s\nwant %s", name, isDefault, d != nil, g, w)
				}
			}
		}
	}
}
