package pf_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/plexus-project/plexus/cni/sriov/pf"
)

// TestNetlinkOnANICWithoutVFs drives the production backend against a real link that has no
// VFs (this machine has no SR-IOV NIC): reads and writes fail with errors that name the PF, its
// PCI address, the VF and the setting.
func TestNetlinkOnANICWithoutVFs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	name := "pxs-pf-nl-test"
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "add", "pf0", "type", "veth", "peer", "name", "pf1").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	netns, err := ns.GetNS("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer netns.Close()
	p := pf.PF{Name: "pf0", PCI: "0000:3b:00.0"}
	ctx := context.Background()
	err = netns.Do(func(ns.NetNS) error {
		if _, err := (pf.Netlink{}).Get(ctx, p, 3); err == nil || !strings.Contains(err.Error(), "PF pf0 (0000:3b:00.0) reports no VF 3") {
			t.Errorf("Get = %v, want an error naming the PF and the VF", err)
		}
		err := (pf.Netlink{}).Set(ctx, p, 3, pf.Settings{VLAN: &pf.VLAN{ID: 100, Proto: pf.Proto8021Q}})
		if err == nil || !strings.Contains(err.Error(), "setting vlan of VF 3 on PF pf0 (0000:3b:00.0)") {
			t.Errorf("Set = %v, want an error naming the setting, the VF and the PF", err)
		}
		if _, err := (pf.Netlink{}).Get(ctx, pf.PF{Name: "nosuch0", PCI: "0000:99:00.0"}, 0); err == nil || !strings.Contains(err.Error(), "PF nosuch0 (0000:99:00.0)") {
			t.Errorf("Get on a missing PF = %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
