package pf_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/plexus-project/plexus/cni/sriov/pf"
)

func ptr[T any](v T) *T { return &v }

func TestRecorderSetThenRestore(t *testing.T) {
	root := t.TempDir()
	p := pf.PF{Name: "ens1f0", PCI: "0000:3b:00.0"}
	if err := os.MkdirAll(filepath.Join(root, "bus/pci/devices", p.PCI), 0o755); err != nil {
		t.Fatal(err)
	}
	r := pf.Recorder{SysfsRoot: root}
	ctx := context.Background()
	before, err := r.Get(ctx, p, 2)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(pf.Fresh(), before); d != "" {
		t.Fatalf("a VF never set is not fresh (-want +got):\n%s", d)
	}
	change := pf.Settings{VLAN: &pf.VLAN{ID: 100, QoS: 3, Proto: pf.Proto8021AD}, MAC: "02:AA:00:00:00:01",
		SpoofChk: ptr(false), Trust: ptr(true), LinkState: pf.LinkStateEnable, Rate: &pf.Rate{Min: 10, Max: 1000}}
	if err := r.Set(ctx, p, 2, change); err != nil {
		t.Fatal(err)
	}
	got, err := r.Get(ctx, p, 2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := pf.Diff(change, got); diff != nil {
		t.Fatalf("after Set: %v", diff)
	}
	if other, _ := r.Get(ctx, p, 3); cmp.Diff(pf.Fresh(), other) != "" {
		t.Fatal("setting VF 2 changed VF 3")
	}
	if err := r.Set(ctx, p, 2, before.Only(change)); err != nil {
		t.Fatal(err)
	}
	after, _ := r.Get(ctx, p, 2)
	if d := cmp.Diff(before, after); d != "" {
		t.Fatalf("restore did not bring back the former settings (-want +got):\n%s", d)
	}
	j, err := r.Journal(p.PCI, 2)
	if err != nil || len(j) != 2 || j[0].VLAN.ID != 100 || j[1].VLAN.ID != 0 {
		t.Fatalf("journal %+v, %v: want the change then the restore", j, err)
	}
	if err := r.Set(ctx, p, 2, pf.Settings{LinkState: "sometimes"}); err == nil {
		t.Fatal("an unknown link state was accepted")
	}
	if _, err := r.Get(ctx, pf.PF{Name: "x", PCI: "0000:99:00.0"}, 0); err == nil {
		t.Fatal("Get on a PF missing from the tree succeeded")
	}
}

func TestOnlyAndDiff(t *testing.T) {
	full := pf.Fresh()
	mask := pf.Settings{VLAN: &pf.VLAN{ID: 5}, Trust: ptr(true)}
	if d := cmp.Diff(pf.Settings{VLAN: full.VLAN, Trust: full.Trust}, full.Only(mask)); d != "" {
		t.Errorf("Only (-want +got):\n%s", d)
	}
	tests := []struct {
		name string
		want pf.Settings
		n    int
	}{
		{"nothing asked", pf.Settings{}, 0},
		{"same", pf.Settings{VLAN: &pf.VLAN{Proto: pf.Proto8021Q}, MAC: "00:00:00:00:00:00", SpoofChk: ptr(true)}, 0},
		{"vlan and trust differ", pf.Settings{VLAN: &pf.VLAN{ID: 7, Proto: pf.Proto8021Q}, Trust: ptr(true)}, 2},
		{"rate and state differ", pf.Settings{Rate: &pf.Rate{Max: 10}, LinkState: pf.LinkStateDisable}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pf.Diff(tc.want, full); len(got) != tc.n {
				t.Errorf("Diff = %q, want %d differences", got, tc.n)
			}
		})
	}
}
