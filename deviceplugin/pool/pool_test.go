package pool_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/plexus-project/plexus/deviceplugin/config"
	"github.com/plexus-project/plexus/deviceplugin/pool"
	"github.com/plexus-project/plexus/deviceplugin/sysfs"
	"github.com/plexus-project/plexus/deviceplugin/sysfs/sysfstest"
)

func discover(t *testing.T) []sysfs.PF {
	t.Helper()
	tree, err := sysfstest.TwoNICs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pfs, err := sysfs.New(tree.Root).Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return pfs
}

func build(t *testing.T, pfs []sysfs.PF, cfgJSON string) map[string][]string {
	t.Helper()
	cfg, err := config.Parse([]byte(cfgJSON), "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, p := range pool.Build(context.Background(), cfg, "", pfs) {
		got[p.Name] = p.IDs()
	}
	return got
}

func TestBuildSelectsExactDevices(t *testing.T) {
	pfs := discover(t)
	tests := []struct {
		name string
		cfg  string
		want map[string][]string
	}{
		{
			name: "first match wins across pfNames range, driver, vendor, linkType",
			cfg: `{"resourceList": [
				{"resourceName": "pf_range", "selectors": {"pfNames": ["ens1f0#0-3"]}},
				{"resourceName": "dpdk", "selectors": {"drivers": ["vfio-pci"]}},
				{"resourceName": "intel", "selectors": {"vendors": ["8086"]}},
				{"resourceName": "ib", "resourcePrefix": "mellanox.com", "selectors": {"linkTypes": ["infiniband"]}}]}`,
			want: map[string][]string{
				"intel.com/pf_range": {"0000:3b:02.0", "0000:3b:02.1", "0000:3b:02.2", "0000:3b:02.3"},
				"intel.com/dpdk":     {"0000:3b:02.6", "0000:3b:02.7", "0000:af:01.1"},
				"intel.com/intel":    {"0000:3b:02.4", "0000:3b:02.5"},
				"mellanox.com/ib":    {"0000:af:00.2", "0000:af:00.3", "0000:af:00.4", "0000:af:00.5", "0000:af:00.6", "0000:af:00.7", "0000:af:01.0"},
			},
		},
		{
			name: "by vendor alone",
			cfg:  `{"resourceList": [{"resourceName": "mlx", "selectors": {"vendors": ["15B3"]}}]}`,
			want: map[string][]string{"intel.com/mlx": {"0000:af:00.2", "0000:af:00.3", "0000:af:00.4", "0000:af:00.5", "0000:af:00.6", "0000:af:00.7", "0000:af:01.0", "0000:af:01.1"}},
		},
		{
			name: "by driver and device",
			cfg:  `{"resourceList": [{"resourceName": "iavf", "selectors": {"drivers": ["iavf"], "devices": ["154c"]}}]}`,
			want: map[string][]string{"intel.com/iavf": {"0000:3b:02.0", "0000:3b:02.1", "0000:3b:02.2", "0000:3b:02.3", "0000:3b:02.4", "0000:3b:02.5"}},
		},
		{
			name: "by linkType ether",
			cfg:  `{"resourceList": [{"resourceName": "eth", "selectors": {"linkTypes": ["ether"], "drivers": ["vfio-pci"]}}]}`,
			want: map[string][]string{"intel.com/eth": {"0000:3b:02.6", "0000:3b:02.7"}},
		},
		{
			name: "selector list is ORed; rootDevices in short form; pciAddresses",
			cfg:  `{"resourceList": [{"resourceName": "mix", "selectors": [{"rootDevices": ["af:00.0"], "pfNames": ["ens2f0#6"]}, {"pciAddresses": ["0000:3b:02.1"]}]}]}`,
			want: map[string][]string{"intel.com/mix": {"0000:3b:02.1", "0000:af:01.0"}},
		},
		{
			name: "isRdma keeps RDMA-capable VFs only",
			cfg:  `{"resourceList": [{"resourceName": "rdma", "isRdma": true, "selectors": {"vendors": ["15b3", "8086"]}}]}`,
			want: map[string][]string{"intel.com/rdma": {"0000:af:00.2", "0000:af:00.3", "0000:af:00.4", "0000:af:00.5", "0000:af:00.6", "0000:af:00.7", "0000:af:01.0"}},
		},
		{
			name: "no selectors: every VF of the device type, after earlier entries",
			cfg:  `{"resourceList": [{"resourceName": "dpdk", "selectors": {"drivers": ["vfio-pci"]}}, {"resourceName": "rest"}]}`,
			want: map[string][]string{
				"intel.com/dpdk": {"0000:3b:02.6", "0000:3b:02.7", "0000:af:01.1"},
				"intel.com/rest": {"0000:3b:02.0", "0000:3b:02.1", "0000:3b:02.2", "0000:3b:02.3", "0000:3b:02.4", "0000:3b:02.5",
					"0000:af:00.2", "0000:af:00.3", "0000:af:00.4", "0000:af:00.5", "0000:af:00.6", "0000:af:00.7", "0000:af:01.0"},
			},
		},
		{
			name: "accelerator pools skip network-class VFs",
			cfg:  `{"resourceList": [{"resourceName": "acc", "deviceType": "accelerator", "selectors": {"vendors": ["8086"]}}]}`,
			want: map[string][]string{"intel.com/acc": {}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := build(t, pfs, tc.cfg)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("pools (-want +got):\n%s", d)
			}
		})
	}
}
