package health_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/plexus-project/plexus/deviceplugin/health"
	"github.com/plexus-project/plexus/deviceplugin/sysfs"
	"github.com/plexus-project/plexus/deviceplugin/sysfs/sysfstest"
)

func TestCheck(t *testing.T) {
	tree, err := sysfstest.TwoNICs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fs := sysfs.New(tree.Root)
	pfs, err := fs.Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := health.Checker{Src: fs}
	inUse := map[string]bool{"0000:3b:02.2": true}
	unhealthy := func() []string {
		var ids []string
		for id := range c.Check(pfs, func(id string) bool { return inUse[id] }).Unhealthy {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return ids
	}
	steps := []struct {
		name   string
		change func() error
		want   []string
	}{
		{"all healthy", func() error { return nil }, nil},
		{"free VF netdev gone", func() error { return tree.RemoveNetdev("0000:3b:02.1", "ens1f0v1") }, []string{"0000:3b:02.1"}},
		{"allocated VF netdev gone is fine", func() error { return tree.RemoveNetdev("0000:3b:02.2", "ens1f0v2") }, []string{"0000:3b:02.1"}},
		{"netdev back", func() error { return tree.RestoreNetdev("0000:3b:02.1", "ens1f0v1") }, nil},
		{"numvfs shrinks", func() error { return tree.SetNumVFs(sysfstest.MellanoxPF, 6) }, []string{"0000:af:01.0", "0000:af:01.1"}},
		{"numvfs back", func() error { return tree.SetNumVFs(sysfstest.MellanoxPF, 8) }, nil},
		{"PF link down", func() error { return tree.SetOperState("ens1f0", "down") },
			[]string{"0000:3b:02.0", "0000:3b:02.1", "0000:3b:02.2", "0000:3b:02.3", "0000:3b:02.4", "0000:3b:02.5", "0000:3b:02.6", "0000:3b:02.7"}},
		{"PF link up", func() error { return tree.SetOperState("ens1f0", "up") }, nil},
	}
	for _, s := range steps {
		if err := s.change(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if d := cmp.Diff(s.want, unhealthy()); d != "" {
			t.Errorf("%s: unhealthy (-want +got):\n%s", s.name, d)
		}
	}
}

func TestNetdevShardsSpreadChecksOverPolls(t *testing.T) {
	tree, err := sysfstest.TwoNICs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fs := sysfs.New(tree.Root)
	pfs, err := fs.Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingSource{Source: fs}
	c := health.Checker{Src: counting, NetdevShards: 2}
	notInUse := func(string) bool { return false }
	c.Check(pfs, notInUse)
	c.Check(pfs, notInUse)
	const withNetdev = 13 // 16 VFs, 3 on vfio-pci
	if counting.netdevCalls != withNetdev {
		t.Errorf("two polls with 2 shards made %d netdev checks, want %d (each VF once)", counting.netdevCalls, withNetdev)
	}
	if err := tree.RemoveNetdev("0000:3b:02.1", "ens1f0v1"); err != nil {
		t.Fatal(err)
	}
	seen := false
	for range 2 {
		if _, bad := c.Check(pfs, notInUse).Unhealthy["0000:3b:02.1"]; bad {
			seen = true
		}
	}
	if !seen {
		t.Error("a vanished netdev went unnoticed for a full round of shards")
	}
}

type countingSource struct {
	health.Source
	netdevCalls int
}

func (c *countingSource) NetdevPresent(addr, name string) bool {
	c.netdevCalls++
	return c.Source.NetdevPresent(addr, name)
}
