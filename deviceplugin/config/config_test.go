package config_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/plexus-project/plexus/deviceplugin/config"
)

// Documented examples of the upstream README and docs, reproduced in substance.
var documented = map[string]string{
	"readme": `{
    "resourceList": [{
            "resourceName": "intel_sriov_netdevice",
            "selectors": {"vendors": ["8086"], "devices": ["154c", "10ed"], "drivers": ["i40evf", "ixgbevf"]}
        },
        {
            "resourceName": "intel_sriov_dpdk",
            "resourcePrefix": "intel.com",
            "selectors": {"vendors": ["8086"], "devices": ["154c", "10ed"], "drivers": ["vfio-pci"], "pfNames": ["enp0s0f0","enp2s2f1"]}
        },
        {
            "resourceName": "mlnx_sriov_rdma",
            "resourcePrefix": "mellanox.com",
            "isRdma": true,
            "selectors": {"vendors": ["15b3"], "devices": ["1018"], "drivers": ["mlx5_ib"]}
        },
        {
            "resourceName": "infiniband_rdma_netdevs",
            "isRdma": true,
            "selectors": {"linkTypes": ["infiniband"]}
        }
    ]
}`,
	"vf-ranges":     `{"resourceList": [{"resourceName": "mlnx_sriov_rdma", "selectors": {"pfNames": ["enp0s0f0#1,3,5-9,23", "enp2s2f1"], "vendors": ["15b3"], "devices": ["1018"], "drivers": ["mlx5_ib"], "isRdma": true}}]}`,
	"node-specific": `{"resourceList":[{"resourceName":"sriovnics","selectors":{"pfNames":["ens785f0#0-4","ens785f1#0-9"],"IsRdma":false,"NeedVhostNet":false},"SelectorObj":null}]}`,
	"selector-list": `{"resourceList": [{"resourceName": "sriov_net_A", "resourcePrefix": "intel.com", "deviceType": "netDevice", "excludeTopology": true,
		"selectors": [{"vendors": ["8086"], "devices": ["154c"], "drivers": ["iavf"], "pfNames": ["enp0s0f0"], "rootDevices": ["0000:86:00.0"], "linkTypes": ["ether"], "needVhostNet": true, "pciAddresses": ["0000:86:02.0"]}],
		"additionalInfo": {"*": {"myKey": "myValue"}}}]}`,
	"accelerator": `{"resourceList": [{"resourceName": "intel_fpga", "deviceType": "accelerator", "selectors": {"vendors": ["8086"], "devices": ["0d90"]}}]}`,
}

func TestParseDocumentedExamples(t *testing.T) {
	for name, doc := range documented {
		t.Run(name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(doc), "")
			if err != nil {
				t.Fatal(err)
			}
			out, err := config.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var a, b any
			if err := json.Unmarshal([]byte(doc), &a); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(out, &b); err != nil {
				t.Fatal(err)
			}
			if name == "node-specific" {
				return // IsRdma/NeedVhostNet false are written back as the canonical (omitted) keys
			}
			if d := cmp.Diff(a, b); d != "" {
				t.Errorf("round trip changed the JSON (-in +out):\n%s", d)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	cfg, err := config.Parse([]byte(documented["readme"]), "")
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, r := range cfg.ResourceList {
		got = append(got, r.FullName(""))
	}
	want := []string{"intel.com/intel_sriov_netdevice", "intel.com/intel_sriov_dpdk", "mellanox.com/mlnx_sriov_rdma", "intel.com/infiniband_rdma_netdevs"}
	if d := cmp.Diff(want, got); d != "" {
		t.Error(d)
	}
	if cfg.ResourceList[0].Type() != config.NetDevice || !cfg.ResourceList[2].IsRdma {
		t.Errorf("defaults: %+v", cfg.ResourceList)
	}
	cfg, err = config.Parse([]byte(documented["node-specific"]), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if n := cfg.ResourceList[0].FullName("example.com"); n != "example.com/sriovnics" {
		t.Errorf("prefix from the flag: %s", n)
	}
}

func TestParseErrorsNameTheEntry(t *testing.T) {
	entry := func(sel string) string {
		return `{"resourceList": [{"resourceName": "ok", "selectors": {"vendors": ["8086"]}}, {"resourceName": "bad", "selectors": ` + sel + `}]}`
	}
	tests := []struct {
		name, in string
		want     []string
	}{
		{"unknown top key", `{"resourceList": [], "extra": 1}`, []string{"unknown field", "extra"}},
		{"unknown entry key", `{"resourceList": [{"resourceName": "x", "resourcePrefx": "a.com", "selectors": {"vendors": ["8086"]}}]}`, []string{`resourceList[0] ("x")`, "resourcePrefx"}},
		{"unknown selector key", entry(`{"vendor": ["8086"]}`), []string{`resourceList[1] ("bad")`, `"vendor"`}},
		{"bad vendor", entry(`{"vendors": ["86"]}`), []string{`resourceList[1] ("bad")`, "selectors[0].vendors", `"86"`}},
		{"bad device", entry(`{"devices": ["15x2"]}`), []string{"selectors[0].devices"}},
		{"bad range", entry(`{"pfNames": ["ens1f0#3-1"]}`), []string{`resourceList[1] ("bad")`, "pfNames", "ends before it starts"}},
		{"bad index", entry(`{"pfNames": ["ens1f0#a"]}`), []string{"pfNames", `"a" is not a VF index`}},
		{"empty range", entry(`{"pfNames": ["ens1f0#"]}`), []string{"pfNames"}},
		{"bad root device", entry(`{"rootDevices": ["3b:00"]}`), []string{"rootDevices"}},
		{"bad link type", entry(`{"linkTypes": ["wifi"]}`), []string{"linkTypes", "wifi"}},
		{"unsupported ddp", entry(`{"ddpProfiles": ["GTP"]}`), []string{"ddpProfiles", "not supported"}},
		{"second list item", entry(`[{"vendors": ["8086"]}, {"drivers": [""]}]`), []string{"selectors[1].drivers"}},
		{"bad name", `{"resourceList": [{"resourceName": "a/b", "selectors": {"vendors": ["8086"]}}]}`, []string{"resourceName"}},
		{"duplicate", `{"resourceList": [{"resourceName": "x", "selectors": {"vendors": ["8086"]}}, {"resourceName": "x", "resourcePrefix": "intel.com", "selectors": {"vendors": ["8086"]}}]}`, []string{`resourceList[1] ("x")`, "already defined by resourceList[0]"}},
		{"aux type", `{"resourceList": [{"resourceName": "x", "deviceType": "auxNetDevice", "selectors": {"vendors": ["8086"]}}]}`, []string{"auxNetDevice", "not supported"}},
		{"accelerator pfNames", `{"resourceList": [{"resourceName": "x", "deviceType": "accelerator", "selectors": {"pfNames": ["ens1f0"]}}]}`, []string{"pfNames", "accelerator"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.in), "")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParsePFName(t *testing.T) {
	tests := []struct {
		in     string
		want   config.PFName
		in0    []int
		notIn0 []int
	}{
		{in: "ens1f0", want: config.PFName{Name: "ens1f0"}, in0: []int{0, 63}},
		{in: "ens1f0#0-3", want: config.PFName{Name: "ens1f0", Ranges: [][2]int{{0, 3}}}, in0: []int{0, 3}, notIn0: []int{4}},
		{in: "netpf0#0,2-7,9", want: config.PFName{Name: "netpf0", Ranges: [][2]int{{0, 0}, {2, 7}, {9, 9}}}, in0: []int{0, 2, 7, 9}, notIn0: []int{1, 8, 10}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := config.ParsePFName(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Error(d)
			}
			for _, i := range tc.in0 {
				if !got.Contains(got.Name, i) {
					t.Errorf("VF %d not selected", i)
				}
			}
			for _, i := range tc.notIn0 {
				if got.Contains(got.Name, i) {
					t.Errorf("VF %d selected", i)
				}
			}
			if got.Contains("other", 0) {
				t.Error("other PF selected")
			}
		})
	}
}
