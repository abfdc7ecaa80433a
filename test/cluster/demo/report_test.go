package demo

import (
	"reflect"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/plexus-project/plexus/cni/network"
)

func TestParseIPAddr(t *testing.T) {
	out := `1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
2: eth0@if12    inet 198.19.1.4/24 brd 198.19.1.255 scope global eth0\       valid_lft forever preferred_lft forever
2: eth0@if12    inet6 fe80::1/64 scope link \       valid_lft forever preferred_lft forever
3: net1    inet 198.18.210.2/24 brd 198.18.210.255 scope global net1\       valid_lft forever preferred_lft forever
3: net1    inet6 2001:db8::2/64 scope global \       valid_lft forever preferred_lft forever
`
	want := map[string][]string{"eth0": {"198.19.1.4"}, "net1": {"198.18.210.2", "2001:db8::2"}}
	if got := parseIPAddr(out); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestCheckNetworks: the demo fails for every way a pod can lack what the CNI promises.
func TestCheckNetworks(t *testing.T) {
	sels, err := network.ParseSelections("sriov-n3, macvlan-n4", "default")
	if err != nil {
		t.Fatal(err)
	}
	resources := map[string]string{"default/sriov-n3": SRIOVResource}
	good := func() PodReport {
		return PodReport{
			Pod: "upf-1", PodIP: "198.19.1.4", VFs: []string{"0000:3b:02.0", "0000:3b:02.1"}, Selected: sels,
			Status: []network.Status{
				{Name: "plexus-default", Interface: "eth0", IPs: []string{"198.19.1.4"}, Default: true},
				{Name: "default/sriov-n3", Interface: "net1", IPs: []string{"198.18.210.2"},
					DeviceInfo: &nadv1.DeviceInfo{Type: "pci", Pci: &nadv1.PciDevice{PciAddress: "0000:3b:02.1"}}},
				{Name: "default/macvlan-n4", Interface: "net2", IPs: []string{"198.18.212.2"}},
			},
			Addrs: map[string][]string{"eth0": {"198.19.1.4"}, "net1": {"198.18.210.2"}, "net2": {"198.18.212.2"}},
		}
	}
	tests := []struct {
		name    string
		edit    func(r *PodReport)
		sriov   bool
		wantErr string
	}{
		{name: "all there", sriov: true},
		{name: "no network-status", edit: func(r *PodReport) { r.Status = nil }, wantErr: "no k8s.v1.cni.cncf.io/network-status"},
		{name: "a network missing", edit: func(r *PodReport) { r.Status = r.Status[:2] }, wantErr: "network default/macvlan-n4 has no interface net2"},
		{name: "no address", edit: func(r *PodReport) { r.Status[2].IPs = nil }, wantErr: "default/macvlan-n4 (net2) has no address"},
		{name: "address not in the pod", edit: func(r *PodReport) { r.Addrs["net2"] = nil }, wantErr: "which the pod does not have"},
		{name: "wrong network on an interface", edit: func(r *PodReport) { r.Status[1].Name = "default/other" }, wantErr: "is network default/other"},
		{name: "no default eth0", edit: func(r *PodReport) { r.Status[0].Default = false }, wantErr: "no default eth0"},
		{name: "VF not the pod's", sriov: true, edit: func(r *PodReport) { r.Status[1].DeviceInfo.Pci.PciAddress = "0000:3b:02.3" }, wantErr: "not one of the pod's VFs"},
		{name: "VF not checked without plexus-sriov", edit: func(r *PodReport) { r.Status[1].DeviceInfo = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good()
			if tt.edit != nil {
				tt.edit(&r)
			}
			errs := checkNetworks(r, resources, tt.sriov)
			if tt.wantErr == "" {
				if len(errs) > 0 {
					t.Errorf("got %v, want no error", errs)
				}
				return
			}
			var msgs []string
			for _, e := range errs {
				msgs = append(msgs, e.Error())
			}
			if !strings.Contains(strings.Join(msgs, "\n"), tt.wantErr) {
				t.Errorf("got %q, want an error with %q", msgs, tt.wantErr)
			}
		})
	}
}
