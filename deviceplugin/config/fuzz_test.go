package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzParse: any configuration file is either refused or accepted; an accepted one passes
// Validate, and what Marshal writes of it parses back to the same configuration (an empty list
// and an absent one being the same selector; testdata/fuzz/FuzzParse keeps the input that
// showed the difference).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"resourceList":[{"resourceName":"sriov_netdevice","selectors":{"vendors":["8086"],"devices":["154c"],"drivers":["iavf"]}}]}`,
		`{"resourceList":[{"resourceName":"dpdk","resourcePrefix":"intel.com","selectors":{"drivers":["vfio-pci"],"pfNames":["ens1f0#0-3,5"],"needVhostNet":true}}]}`,
		`{"resourceList":[{"resourceName":"rdma","resourcePrefix":"mellanox.com","selectors":[{"vendors":["15b3"],"linkTypes":["infiniband"],"isRdma":true}],"additionalInfo":{"*":{"k":"v"}}}]}`,
		`{"resourceList":[{"resourceName":"x","deviceType":"accelerator","excludeTopology":true,"selectors":{"pciAddresses":["0000:3b:02.0"],"rootDevices":["3b:00.0"]}}]}`,
		`{"resourceList":[{"resourceName":"x","selectors":{"pfNames":["ens1f0#4-2"]}}]}`,
		`{"resourceList":[]}`, `{}`, `null`, `[`, `{"resourceList":[{"resourceName":"a"},{"resourceName":"a"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, DefaultResourcePrefix)
		if err != nil {
			return
		}
		if err := Validate(cfg, DefaultResourcePrefix); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
		out, err := Marshal(cfg)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		again, err := Parse(out, DefaultResourcePrefix)
		if err != nil {
			t.Fatalf("the written configuration does not parse: %v\n%s", err, out)
		}
		// An empty list written as [] comes back absent (omitempty): the same selector.
		if d := cmp.Diff(cfg, again, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("round trip changed the configuration (-read +re-read):\n%s", d)
		}
	})
}
