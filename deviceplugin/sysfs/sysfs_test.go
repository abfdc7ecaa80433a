package sysfs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/plexus-project/plexus/deviceplugin/sysfs"
	"github.com/plexus-project/plexus/deviceplugin/sysfs/sysfstest"
)

func TestDiscoverTwoNICs(t *testing.T) {
	tree, err := sysfstest.TwoNICs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pfs, err := sysfs.New(tree.Root).Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(pfs) != 2 {
		t.Fatalf("got %d PFs, want 2", len(pfs))
	}
	intel, mlx := pfs[0], pfs[1]
	wantPF := []sysfs.PF{
		{Address: sysfstest.IntelPF, Vendor: "8086", Device: "1572", Class: "0x020000", Driver: "i40e", NUMANode: 0, NetName: "ens1f0", LinkType: "ether", NumVFs: 8, TotalVFs: 64},
		{Address: sysfstest.MellanoxPF, Vendor: "15b3", Device: "1018", Class: "0x020000", Driver: "mlx5_core", NUMANode: 1, NetName: "ens2f0", LinkType: "infiniband", NumVFs: 8, TotalVFs: 16},
	}
	for i, pf := range []sysfs.PF{intel, mlx} {
		pf.VFs = nil
		if d := cmp.Diff(wantPF[i], pf); d != "" {
			t.Errorf("PF %d (-want +got):\n%s", i, d)
		}
	}
	tests := []struct {
		pf   sysfs.PF
		idx  int
		want sysfs.VF
	}{
		{intel, 0, sysfs.VF{Address: "0000:3b:02.0", Index: 0, PFAddress: sysfstest.IntelPF, PFName: "ens1f0", Vendor: "8086", Device: "154c", Driver: "iavf", Class: "0x020000", NUMANode: 0, NetName: "ens1f0v0", LinkType: "ether"}},
		{intel, 6, sysfs.VF{Address: "0000:3b:02.6", Index: 6, PFAddress: sysfstest.IntelPF, PFName: "ens1f0", Vendor: "8086", Device: "154c", Driver: "vfio-pci", Class: "0x020000", NUMANode: 0, LinkType: "ether", VFIOGroup: "106"}},
		{mlx, 0, sysfs.VF{Address: "0000:af:00.2", Index: 0, PFAddress: sysfstest.MellanoxPF, PFName: "ens2f0", Vendor: "15b3", Device: "1018", Driver: "mlx5_core", Class: "0x020000", NUMANode: 1, NetName: "ens2f0v0", LinkType: "infiniband", RDMA: true, RDMADevices: []string{"uverbs0"}}},
		{mlx, 7, sysfs.VF{Address: "0000:af:01.1", Index: 7, PFAddress: sysfstest.MellanoxPF, PFName: "ens2f0", Vendor: "15b3", Device: "1018", Driver: "vfio-pci", Class: "0x020000", NUMANode: 1, LinkType: "infiniband", VFIOGroup: "207"}},
	}
	for _, tc := range tests {
		t.Run(tc.want.Address, func(t *testing.T) {
			if d := cmp.Diff(tc.want, tc.pf.VFs[tc.idx]); d != "" {
				t.Errorf("VF (-want +got):\n%s", d)
			}
		})
	}
}

func TestPFStateFollowsTheTree(t *testing.T) {
	tree, err := sysfstest.TwoNICs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fs := sysfs.New(tree.Root)
	if st := fs.PFState(sysfstest.IntelPF, "ens1f0"); !st.Present || !st.LinkUp || st.NumVFs != 8 {
		t.Fatalf("initial state %+v", st)
	}
	if err := tree.SetOperState("ens1f0", "down"); err != nil {
		t.Fatal(err)
	}
	if err := tree.SetNumVFs(sysfstest.IntelPF, 4); err != nil {
		t.Fatal(err)
	}
	if st := fs.PFState(sysfstest.IntelPF, "ens1f0"); st.LinkUp || st.NumVFs != 4 {
		t.Fatalf("after down and shrink: %+v", st)
	}
	if fs.DevicePresent("0000:3b:02.5") {
		t.Error("VF 5 still present after sriov_numvfs=4")
	}
	if err := tree.SetNumVFs(sysfstest.IntelPF, 8); err != nil {
		t.Fatal(err)
	}
	if !fs.NetdevPresent("0000:3b:02.5", "ens1f0v5") {
		t.Error("VF 5 netdev not back after sriov_numvfs=8")
	}
	if err := tree.RemoveNetdev("0000:3b:02.1", "ens1f0v1"); err != nil {
		t.Fatal(err)
	}
	if fs.NetdevPresent("0000:3b:02.1", "ens1f0v1") {
		t.Error("removed netdev still present")
	}
}

func TestLookupVF(t *testing.T) {
	tree, err := sysfstest.TwoNICs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fs := sysfs.New(tree.Root)
	pfs, err := fs.Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// LookupVF reports each VF exactly as Discover does.
	for _, pf := range pfs {
		for _, want := range pf.VFs {
			got, err := fs.LookupVF(want.Address)
			if err != nil {
				t.Fatalf("LookupVF(%s): %v", want.Address, err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("LookupVF(%s) (-Discover +LookupVF):\n%s", want.Address, d)
			}
		}
	}
	for _, tc := range []struct {
		addr string
		want error
	}{
		{"0000:3b:09.0", sysfs.ErrNoDevice},
		{sysfstest.IntelPF, sysfs.ErrNotVF},
	} {
		if _, err := fs.LookupVF(tc.addr); !errors.Is(err, tc.want) {
			t.Errorf("LookupVF(%s) = %v, want an error wrapping %v", tc.addr, err, tc.want)
		}
	}
}

// TestDiscoverSkipsBadDevices: a PF that cannot be read and a VF removed under the walk are
// named in a *PartialError, and every other device is still discovered.
func TestDiscoverSkipsBadDevices(t *testing.T) {
	tree, err := sysfstest.TwoNICs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	devices := filepath.Join(tree.Root, "bus", "pci", "devices")
	if err := os.Remove(filepath.Join(devices, sysfstest.IntelPF, "vendor")); err != nil {
		t.Fatal(err)
	}
	const goneVF = "0000:af:00.3" // the Mellanox PF's VF 1: its virtfn1 link now points nowhere
	target, err := filepath.EvalSymlinks(filepath.Join(devices, goneVF))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(target); err != nil {
		t.Fatal(err)
	}
	pfs, err := sysfs.New(tree.Root).Discover(context.Background())
	var partial *sysfs.PartialError
	if !errors.As(err, &partial) {
		t.Fatalf("err = %v, want a *PartialError", err)
	}
	if len(partial.Failed) != 2 || partial.Failed[sysfstest.IntelPF] == nil || partial.Failed[goneVF] == nil {
		t.Errorf("failed = %v, want the Intel PF and %s", partial.Failed, goneVF)
	}
	if !strings.Contains(err.Error(), sysfstest.IntelPF+": the PCI vendor ID") {
		t.Errorf("message = %q", err)
	}
	if len(pfs) != 1 || pfs[0].Address != sysfstest.MellanoxPF || len(pfs[0].VFs) != 7 {
		t.Fatalf("got %d PFs (%+v), want the Mellanox PF with its 7 other VFs", len(pfs), pfs)
	}
	for _, vf := range pfs[0].VFs {
		if vf.Address == goneVF {
			t.Errorf("the removed VF %s was discovered", goneVF)
		}
	}
}
