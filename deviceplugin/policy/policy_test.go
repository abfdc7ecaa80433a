package policy_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/plexus-project/plexus/deviceplugin/policy"
)

// node builds free VFs: per NUMA node, per PF, a count.
func node(layout map[int]map[string]int) []policy.Device {
	var out []policy.Device
	for numa, pfs := range layout {
		for pf, n := range pfs {
			for i := range n {
				out = append(out, policy.Device{ID: fmt.Sprintf("%s-vf%d", pf, i), NUMA: numa, PF: pf})
			}
		}
	}
	return out
}

func TestPreferred(t *testing.T) {
	twoByTwo := node(map[int]map[string]int{0: {"pfA": 2, "pfB": 2}, 1: {"pfC": 2, "pfD": 2}})
	tests := []struct {
		name  string
		avail []policy.Device
		must  []string
		size  int
		want  []string
	}{
		{
			name:  "2 of 8 on 2 NUMA nodes: one NUMA node, two PFs",
			avail: twoByTwo, size: 2,
			want: []string{"pfA-vf0", "pfB-vf0"},
		},
		{
			name:  "must-include pins the NUMA node and the spread continues on the other PF",
			avail: twoByTwo, must: []string{"pfD-vf1"}, size: 2,
			want: []string{"pfD-vf1", "pfC-vf0"},
		},
		{
			name:  "prefer the NUMA node that spreads over more PFs",
			avail: node(map[int]map[string]int{0: {"pfA": 4}, 1: {"pfC": 1, "pfD": 1}}), size: 2,
			want: []string{"pfC-vf0", "pfD-vf0"},
		},
		{
			name:  "best fit among equally spread NUMA nodes",
			avail: node(map[int]map[string]int{0: {"pfA": 5, "pfB": 5}, 1: {"pfC": 1, "pfD": 2}}), size: 2,
			want: []string{"pfD-vf0", "pfC-vf0"},
		},
		{
			name:  "round robin over PFs for 4",
			avail: node(map[int]map[string]int{0: {"pfA": 3, "pfB": 3}}), size: 4,
			want: []string{"pfA-vf0", "pfB-vf0", "pfA-vf1", "pfB-vf1"},
		},
		{
			name:  "spill over NUMA nodes when none fits",
			avail: node(map[int]map[string]int{0: {"pfA": 2}, 1: {"pfC": 1}}), size: 3,
			want: []string{"pfA-vf0", "pfA-vf1", "pfC-vf0"},
		},
		{
			name:  "fewer available than asked",
			avail: node(map[int]map[string]int{0: {"pfA": 1}}), size: 2,
			want: []string{"pfA-vf0"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := policy.Preferred(tc.avail, tc.must, tc.size)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
