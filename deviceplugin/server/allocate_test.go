package server_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/plexus-project/plexus/deviceplugin/config"
	"github.com/plexus-project/plexus/deviceplugin/devinfo"
	"github.com/plexus-project/plexus/deviceplugin/pool"
	"github.com/plexus-project/plexus/deviceplugin/server"
	"github.com/plexus-project/plexus/deviceplugin/sysfs"
)

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"intel.com/sriov_netdevice": "PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE",
		"mellanox.com/mlx-rdma.a":   "PCIDEVICE_MELLANOX_COM_MLX_RDMA_A",
	} {
		if got := server.EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestContainerResponse(t *testing.T) {
	netdev := &sysfs.VF{Address: "0000:3b:02.0", PFAddress: "0000:3b:00.0", Driver: "iavf", NetName: "ens1f0v0"}
	vfio := &sysfs.VF{Address: "0000:3b:02.6", PFAddress: "0000:3b:00.0", Driver: "vfio-pci", VFIOGroup: "106"}
	vfio2 := &sysfs.VF{Address: "0000:3b:02.7", PFAddress: "0000:3b:00.0", Driver: "vfio-pci", VFIOGroup: "107"}
	spec := func(p string) *pluginapi.DeviceSpec {
		return &pluginapi.DeviceSpec{HostPath: p, ContainerPath: p, Permissions: "rw"}
	}
	tests := []struct {
		name      string
		cfg       config.ResourceConfig
		devs      []*sysfs.VF
		wantIDs   string
		wantInfo  map[string]map[string]map[string]string
		wantSpecs []*pluginapi.DeviceSpec
	}{
		{
			name: "netdevice", devs: []*sysfs.VF{netdev},
			wantIDs:  "0000:3b:02.0",
			wantInfo: map[string]map[string]map[string]string{"0000:3b:02.0": {"generic": {"deviceID": "0000:3b:02.0"}}},
		},
		{
			name: "vfio with vhost-net and additionalInfo",
			cfg: config.ResourceConfig{Selectors: config.Selectors{Items: []config.Selector{{NeedVhostNet: true}}},
				AdditionalInfo: map[string]map[string]string{"*": {"k": "all"}, "0000:3b:02.7": {"k": "seven"}}},
			devs:    []*sysfs.VF{vfio, vfio2},
			wantIDs: "0000:3b:02.6,0000:3b:02.7",
			wantInfo: map[string]map[string]map[string]string{
				"0000:3b:02.6": {"generic": {"deviceID": "0000:3b:02.6"}, "vfio": {"mount": "/dev/vfio/vfio", "dev-mount": "/dev/vfio/106"},
					"vhost": {"net-mount": "/dev/vhost-net", "tun-mount": "/dev/net/tun"}, "extra": {"k": "all"}},
				"0000:3b:02.7": {"generic": {"deviceID": "0000:3b:02.7"}, "vfio": {"mount": "/dev/vfio/vfio", "dev-mount": "/dev/vfio/107"},
					"vhost": {"net-mount": "/dev/vhost-net", "tun-mount": "/dev/net/tun"}, "extra": {"k": "seven"}},
			},
			wantSpecs: []*pluginapi.DeviceSpec{spec("/dev/vfio/vfio"), spec("/dev/vfio/106"), spec("/dev/vhost-net"), spec("/dev/net/tun"), spec("/dev/vfio/107")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := server.ContainerResponse(&tc.cfg, "intel.com/sriov", tc.devs)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Envs["PCIDEVICE_INTEL_COM_SRIOV"]; got != tc.wantIDs {
				t.Errorf("IDs = %q, want %q", got, tc.wantIDs)
			}
			var info map[string]map[string]map[string]string
			if err := json.Unmarshal([]byte(resp.Envs["PCIDEVICE_INTEL_COM_SRIOV_INFO"]), &info); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.wantInfo, info); d != "" {
				t.Errorf("_INFO (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.wantSpecs, resp.Devices, cmp.Comparer(func(a, b *pluginapi.DeviceSpec) bool {
				return a.HostPath == b.HostPath && a.ContainerPath == b.ContainerPath && a.Permissions == b.Permissions
			})); d != "" {
				t.Errorf("device specs (-want +got):\n%s", d)
			}
		})
	}
}

// TestInfoJSONIsEncodingJSONOutput checks the hand-written _INFO against encoding/json's own
// output for the same maps (upstream builds maps and marshals them), escaping included.
func TestInfoJSONIsEncodingJSONOutput(t *testing.T) {
	cfg := config.ResourceConfig{IsRdma: true, Selectors: config.Selectors{Items: []config.Selector{{NeedVhostNet: true}}},
		AdditionalInfo: map[string]map[string]string{"*": {"zeta": "1", "alpha": `a"b<c>&d` + "\n"}}}
	devs := []*sysfs.VF{
		{Address: "0000:af:00.3", Driver: "mlx5_core", RDMA: true, RDMADevices: []string{"uverbs1"}},
		{Address: "0000:3b:02.6", Driver: "vfio-pci", VFIOGroup: "106"},
		{Address: "0000:3b:02.7", Driver: "vfio-pci"},
	}
	resp, err := server.ContainerResponse(&cfg, "intel.com/x", devs)
	if err != nil {
		t.Fatal(err)
	}
	extra := map[string]string{"zeta": "1", "alpha": `a"b<c>&d` + "\n"}
	vhost := map[string]string{"net-mount": "/dev/vhost-net", "tun-mount": "/dev/net/tun"}
	want, err := json.Marshal(map[string]map[string]map[string]string{
		"0000:af:00.3": {"generic": {"deviceID": "0000:af:00.3"}, "rdma": {"rdma_cm": "/dev/infiniband/rdma_cm", "uverbs": "/dev/infiniband/uverbs1"}, "vhost": vhost, "extra": extra},
		"0000:3b:02.6": {"generic": {"deviceID": "0000:3b:02.6"}, "vfio": {"mount": "/dev/vfio/vfio", "dev-mount": "/dev/vfio/106"}, "vhost": vhost, "extra": extra},
		"0000:3b:02.7": {"generic": {"deviceID": "0000:3b:02.7"}, "vfio": {"mount": "/dev/vfio/vfio"}, "vhost": vhost, "extra": extra},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Envs["PCIDEVICE_INTEL_COM_X_INFO"]; got != string(want) {
		t.Errorf("_INFO\n got %s\nwant %s", got, want)
	}
	if got := resp.Envs["PCIDEVICE_INTEL_COM_X"]; got != "0000:af:00.3,0000:3b:02.6,0000:3b:02.7" {
		t.Errorf("IDs keep kubelet's order: %s", got)
	}
}

// TestAllocateRecordsBeforeWriting: OnAllocate hears of the devices before their device-info
// files are written, so a release running at the same time sees the new allocation first.
func TestAllocateRecordsBeforeWriting(t *testing.T) {
	store := &devinfo.Store{Dir: t.TempDir()}
	p := pool.Pool{Name: "intel.com/x", Devices: []sysfs.VF{{Address: "0000:3b:02.0", PFAddress: "0000:3b:00.0"}}}
	var fileBefore error
	called := false
	s := server.New(p, server.Options{PluginDir: t.TempDir(), DevInfo: store, OnAllocate: func(res string, ids []string) {
		called = true
		_, fileBefore = store.Read(res, ids[0])
	}})
	if _, err := s.Allocate(context.Background(), &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{{DevicesIDs: []string{"0000:3b:02.0"}}}}); err != nil {
		t.Fatal(err)
	}
	if !called || !os.IsNotExist(fileBefore) {
		t.Errorf("OnAllocate called %v, device-info file then: %v; want it called before the file exists", called, fileBefore)
	}
	if _, err := store.Read("intel.com/x", "0000:3b:02.0"); err != nil {
		t.Errorf("device-info file not written: %v", err)
	}
}
