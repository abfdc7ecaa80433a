package deviceplugin_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/plexus-project/plexus/deviceplugin"
	"github.com/plexus-project/plexus/deviceplugin/devinfo"
	"github.com/plexus-project/plexus/deviceplugin/kubelettest"
	"github.com/plexus-project/plexus/deviceplugin/server"
	"github.com/plexus-project/plexus/deviceplugin/sysfs/sysfstest"
)

const fourPools = `{"resourceList": [
	{"resourceName": "pf_range", "selectors": {"pfNames": ["ens1f0#0-3"]}},
	{"resourceName": "dpdk", "selectors": {"drivers": ["vfio-pci"], "needVhostNet": true}},
	{"resourceName": "intel", "selectors": {"vendors": ["8086"]}},
	{"resourceName": "ib", "resourcePrefix": "mellanox.com", "isRdma": true, "selectors": {"linkTypes": ["infiniband"]}}]}`

var wantPools = map[string][]string{
	"intel.com/pf_range": {"0000:3b:02.0", "0000:3b:02.1", "0000:3b:02.2", "0000:3b:02.3"},
	"intel.com/dpdk":     {"0000:3b:02.6", "0000:3b:02.7", "0000:af:01.1"},
	"intel.com/intel":    {"0000:3b:02.4", "0000:3b:02.5"},
	"mellanox.com/ib":    {"0000:af:00.2", "0000:af:00.3", "0000:af:00.4", "0000:af:00.5", "0000:af:00.6", "0000:af:00.7", "0000:af:01.0"},
}

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuffer) logger(t *testing.T) logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		l.lines = append(l.lines, args)
		l.mu.Unlock()
		t.Log(args)
	}, funcr.Options{Verbosity: 1})
}

func (l *logBuffer) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

type env struct {
	tree      *sysfstest.Tree
	kubelet   *kubelettest.Kubelet
	pluginDir string
	cfgPath   string
	devinfo   *devinfo.Store
	logs      *logBuffer
}

func startPlugin(t *testing.T) *env { return startPluginWith(t, nil) }

// startPluginWith runs the manager over the TwoNICs tree and a test kubelet; configure may
// change the options (e.g. to publish capacity), and the dependencies come from
// deviceplugin.NewDeps, as in the binary.
func startPluginWith(t *testing.T, configure func(*deviceplugin.Options)) *env {
	t.Helper()
	return startPluginSetup(t, configure, false)
}

// startPluginSetup is startPluginWith; with kubeletLater the test kubelet is not started (the
// test calls env.startKubelet), as when the plugin comes up before kubelet.
func startPluginSetup(t *testing.T, configure func(*deviceplugin.Options), kubeletLater bool) *env {
	t.Helper()
	dir := t.TempDir()
	tree, err := sysfstest.TwoNICs(filepath.Join(dir, "sys"))
	if err != nil {
		t.Fatal(err)
	}
	pluginDir := filepath.Join(dir, "device-plugins")
	if err := os.MkdirAll(pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var k *kubelettest.Kubelet
	podResources := filepath.Join(pluginDir, "pod-resources", "kubelet.sock")
	if !kubeletLater {
		k = kubelettest.Start(t, pluginDir)
	}
	cfgDir := filepath.Join(dir, "config")
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(cfgDir, "config.json")
	if err := os.WriteFile(cfgPath, []byte(fourPools), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &env{tree: tree, kubelet: k, pluginDir: pluginDir, cfgPath: cfgPath, devinfo: &devinfo.Store{Dir: filepath.Join(dir, "devinfo")}, logs: &logBuffer{}}
	opts := deviceplugin.Options{
		ConfigFile: cfgPath, SysfsRoot: tree.Root, DevicePluginDir: pluginDir, DevInfoDir: e.devinfo.Dir,
		PodResourcesSocket: podResources, KubeletCheckInterval: 200 * time.Millisecond,
		ConfigCheckInterval: 200 * time.Millisecond, ReleaseInterval: 200 * time.Millisecond, ReleaseGrace: 300 * time.Millisecond,
	}
	if configure != nil {
		configure(&opts)
	}
	deps, err := deviceplugin.NewDeps(opts, e.logs.logger(t))
	if err != nil {
		t.Fatal(err)
	}
	m := deviceplugin.NewManager(opts, deps)
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), e.logs.logger(t)))
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	return e
}

func ids(devs []*pluginapi.Device) []string {
	out := make([]string, len(devs))
	for i, d := range devs {
		out[i] = d.ID
	}
	slices.Sort(out)
	return out
}

func health(devs []*pluginapi.Device) map[string]string {
	out := map[string]string{}
	for _, d := range devs {
		out[d.ID] = d.Health
	}
	return out
}

func TestPoolsRegisterAndListDevices(t *testing.T) {
	e := startPlugin(t)
	for name, want := range wantPools {
		p := e.kubelet.WaitPlugin(t, name, 1, 10*time.Second)
		if !p.Options.GetGetPreferredAllocationAvailable() {
			t.Errorf("%s: registered without GetPreferredAllocationAvailable", name)
		}
		if p.Endpoint != server.SocketName(name) {
			t.Errorf("%s: endpoint %q", name, p.Endpoint)
		}
		devs := p.WaitDevices(t, 5*time.Second, func(d []*pluginapi.Device) bool { return len(d) == len(want) })
		if d := cmp.Diff(want, ids(devs)); d != "" {
			t.Errorf("%s devices (-want +got):\n%s", name, d)
		}
		for _, d := range devs {
			numa := int64(0)
			if strings.HasPrefix(d.ID, "0000:af") {
				numa = 1
			}
			if d.Health != pluginapi.Healthy || d.Topology == nil || len(d.Topology.Nodes) != 1 || d.Topology.Nodes[0].ID != numa {
				t.Errorf("%s: device %v, want Healthy on NUMA node %d", name, d, numa)
			}
		}
	}
}

func TestAllocateEnvDeviceSpecsAndDevInfo(t *testing.T) {
	e := startPlugin(t)
	ctx := context.Background()
	p := e.kubelet.WaitPlugin(t, "intel.com/pf_range", 1, 10*time.Second)
	resp, err := p.Client.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIDs: []string{"0000:3b:02.0", "0000:3b:02.1"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := resp.ContainerResponses[0]
	if got := c.Envs["PCIDEVICE_INTEL_COM_PF_RANGE"]; got != "0000:3b:02.0,0000:3b:02.1" {
		t.Errorf("PCIDEVICE_INTEL_COM_PF_RANGE = %q", got)
	}
	wantInfo := `{"0000:3b:02.0":{"generic":{"deviceID":"0000:3b:02.0"}},"0000:3b:02.1":{"generic":{"deviceID":"0000:3b:02.1"}}}`
	if got := c.Envs["PCIDEVICE_INTEL_COM_PF_RANGE_INFO"]; got != wantInfo {
		t.Errorf("_INFO = %s\nwant %s", got, wantInfo)
	}
	if len(c.Devices) != 0 {
		t.Errorf("netdevice VFs got device specs %v", c.Devices)
	}
	for _, id := range []string{"0000:3b:02.0", "0000:3b:02.1"} {
		info, err := e.devinfo.Read("intel.com/pf_range", id)
		if err != nil {
			t.Fatalf("device-info of %s: %v", id, err)
		}
		if info.Version != "1.1.0" || info.Type != "pci" || info.Pci.PciAddress != id || info.Pci.PfPciAddress != sysfstest.IntelPF {
			t.Errorf("device-info of %s = %+v %+v", id, info, info.Pci)
		}
	}
	if _, err := os.Stat(filepath.Join(e.devinfo.Dir, "intel.com-pf_range-0000:3b:02.0-device.json")); err != nil {
		t.Errorf("device-info file not at the NAD client's path: %v", err)
	}

	dpdk := e.kubelet.WaitPlugin(t, "intel.com/dpdk", 1, 10*time.Second)
	resp, err = dpdk.Client.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIDs: []string{"0000:3b:02.6"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c = resp.ContainerResponses[0]
	var paths []string
	for _, d := range c.Devices {
		paths = append(paths, d.HostPath+"->"+d.ContainerPath+":"+d.Permissions)
	}
	wantPaths := []string{"/dev/vfio/vfio->/dev/vfio/vfio:rw", "/dev/vfio/106->/dev/vfio/106:rw", "/dev/vhost-net->/dev/vhost-net:rw", "/dev/net/tun->/dev/net/tun:rw"}
	if d := cmp.Diff(wantPaths, paths); d != "" {
		t.Errorf("vfio device specs (-want +got):\n%s", d)
	}
	var info map[string]map[string]map[string]string
	if err := json.Unmarshal([]byte(c.Envs["PCIDEVICE_INTEL_COM_DPDK_INFO"]), &info); err != nil {
		t.Fatal(err)
	}
	if v := info["0000:3b:02.6"]["vfio"]; v["mount"] != "/dev/vfio/vfio" || v["dev-mount"] != "/dev/vfio/106" {
		t.Errorf("vfio _INFO = %v", info)
	}
	if di, _ := e.devinfo.Read("intel.com/dpdk", "0000:3b:02.6"); di == nil || di.Pci.Vhostnet != "/dev/vhost-net" {
		t.Errorf("dpdk device-info = %+v", di)
	}

	if _, err := p.Client.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIDs: []string{"0000:3b:02.4"}},
	}}); err == nil || !strings.Contains(err.Error(), "not in pool intel.com/pf_range") {
		t.Errorf("allocating a device of another pool: %v", err)
	}

	// Kubelet's PodResources lists only 02.0 as used: 02.1 and 02.6 are released.
	e.kubelet.SetInUse(map[string][]string{"intel.com/pf_range": {"0000:3b:02.0"}})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := e.devinfo.Read("intel.com/pf_range", "0000:3b:02.1"); os.IsNotExist(err) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := e.devinfo.Read("intel.com/pf_range", "0000:3b:02.1"); !os.IsNotExist(err) {
		t.Errorf("device-info of released 0000:3b:02.1 still there: %v", err)
	}
	if _, err := e.devinfo.Read("intel.com/dpdk", "0000:3b:02.6"); !os.IsNotExist(err) {
		t.Errorf("device-info of released 0000:3b:02.6 still there: %v", err)
	}
	if _, err := e.devinfo.Read("intel.com/pf_range", "0000:3b:02.0"); err != nil {
		t.Errorf("device-info of 0000:3b:02.0, still in use, is gone: %v", err)
	}
}

func TestGetPreferredAllocationOverGRPC(t *testing.T) {
	e := startPlugin(t)
	p := e.kubelet.WaitPlugin(t, "intel.com/pf_range", 1, 10*time.Second)
	resp, err := p.Client.GetPreferredAllocation(context.Background(), &pluginapi.PreferredAllocationRequest{
		ContainerRequests: []*pluginapi.ContainerPreferredAllocationRequest{{
			AvailableDeviceIDs: []string{"0000:3b:02.3", "0000:3b:02.1", "0000:3b:02.2"}, MustIncludeDeviceIDs: []string{"0000:3b:02.2"}, AllocationSize: 2,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"0000:3b:02.2", "0000:3b:02.1"}, resp.ContainerResponses[0].DeviceIDs); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// waitHealth waits at most 1s (the promise) for the plugin to report want, and logs how long
// it took.
func waitHealth(t *testing.T, p *kubelettest.Plugin, what string, want map[string]string) {
	t.Helper()
	start := time.Now()
	p.WaitDevices(t, time.Second, func(d []*pluginapi.Device) bool {
		got := health(d)
		for id, h := range want {
			if got[id] != h {
				return false
			}
		}
		return true
	})
	t.Logf("%s: reported through ListAndWatch in %s", what, time.Since(start).Round(time.Millisecond))
}

func all(idList []string, h string) map[string]string {
	out := map[string]string{}
	for _, id := range idList {
		out[id] = h
	}
	return out
}

func TestHealthChangesWithinOneSecond(t *testing.T) {
	e := startPlugin(t)
	ib := e.kubelet.WaitPlugin(t, "mellanox.com/ib", 1, 10*time.Second)
	pfRange := e.kubelet.WaitPlugin(t, "intel.com/pf_range", 1, 10*time.Second)
	ib.WaitDevices(t, 5*time.Second, func(d []*pluginapi.Device) bool { return len(d) == 7 })
	pfRange.WaitDevices(t, 5*time.Second, func(d []*pluginapi.Device) bool { return len(d) == 4 })

	must(t, e.tree.SetOperState("ens2f0", "down"))
	waitHealth(t, ib, "PF link down", all(wantPools["mellanox.com/ib"], pluginapi.Unhealthy))
	must(t, e.tree.SetOperState("ens2f0", "up"))
	waitHealth(t, ib, "PF link up", all(wantPools["mellanox.com/ib"], pluginapi.Healthy))

	must(t, e.tree.RemoveNetdev("0000:3b:02.1", "ens1f0v1"))
	waitHealth(t, pfRange, "netdev gone", map[string]string{"0000:3b:02.1": pluginapi.Unhealthy, "0000:3b:02.0": pluginapi.Healthy})
	must(t, e.tree.RestoreNetdev("0000:3b:02.1", "ens1f0v1"))
	waitHealth(t, pfRange, "netdev back", map[string]string{"0000:3b:02.1": pluginapi.Healthy})

	must(t, e.tree.SetNumVFs(sysfstest.MellanoxPF, 5))
	waitHealth(t, ib, "sriov_numvfs 8 -> 5", map[string]string{
		"0000:af:00.6": pluginapi.Healthy, "0000:af:00.7": pluginapi.Unhealthy, "0000:af:01.0": pluginapi.Unhealthy})
	must(t, e.tree.SetNumVFs(sysfstest.MellanoxPF, 8))
	waitHealth(t, ib, "sriov_numvfs back to 8", all(wantPools["mellanox.com/ib"], pluginapi.Healthy))
}

func TestKubeletRestartReregistersEveryPool(t *testing.T) {
	e := startPlugin(t)
	for name := range wantPools {
		e.kubelet.WaitPlugin(t, name, 1, 10*time.Second)
	}
	e.kubelet.Restart()
	for name, want := range wantPools {
		p := e.kubelet.WaitPlugin(t, name, 2, 5*time.Second)
		devs := p.WaitDevices(t, 5*time.Second, func(d []*pluginapi.Device) bool { return len(d) == len(want) })
		if d := cmp.Diff(want, ids(devs)); d != "" {
			t.Errorf("%s after restart (-want +got):\n%s", name, d)
		}
	}
}

func TestConfigReload(t *testing.T) {
	e := startPlugin(t)
	for name := range wantPools {
		e.kubelet.WaitPlugin(t, name, 1, 10*time.Second)
	}
	// Invalid: the old pools stay, and the log says why.
	must(t, os.WriteFile(e.cfgPath, []byte(`{"resourceList": [{"resourceName": "x", "selectors": {"pfNames": ["ens1f0#4-2"]}}]}`), 0o644))
	// os.WriteFile truncates first: the watcher may see the empty file (and refuse it) before the
	// invalid one, so wait for the line that names the entry.
	refused := func() bool {
		return e.logs.contains("keeping the previous pools") && e.logs.contains(`resourceList[0] (\"x\")`)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !refused() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !refused() {
		t.Error("no log line saying the invalid configuration was refused and naming the entry")
	}
	if _, err := os.Stat(filepath.Join(e.kubelet.Dir, server.SocketName("intel.com/intel"))); err != nil {
		t.Errorf("a pool's socket went away after an invalid configuration: %v", err)
	}

	// Valid: intel is removed, a new pool appears, pf_range grows, in the same process.
	next := `{"resourceList": [
		{"resourceName": "pf_range", "selectors": {"pfNames": ["ens1f0#0-5"]}},
		{"resourceName": "dpdk", "selectors": {"drivers": ["vfio-pci"]}},
		{"resourceName": "ib", "resourcePrefix": "mellanox.com", "selectors": {"linkTypes": ["infiniband"]}},
		{"resourceName": "fresh", "selectors": {"pciAddresses": ["0000:3b:02.0"]}}]}`
	must(t, os.WriteFile(e.cfgPath, []byte(next), 0o644))
	fresh := e.kubelet.WaitPlugin(t, "intel.com/fresh", 1, 5*time.Second)
	if got := ids(fresh.WaitDevices(t, 5*time.Second, func(d []*pluginapi.Device) bool { return true })); len(got) != 0 {
		t.Errorf("fresh pool got %v, want none (0000:3b:02.0 belongs to pf_range, the first match)", got)
	}
	pr := e.kubelet.Plugin("intel.com/pf_range")
	pr.WaitDevices(t, 5*time.Second, func(d []*pluginapi.Device) bool { return len(d) == 6 })
	deadline = time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(e.kubelet.Dir, server.SocketName("intel.com/intel"))); os.IsNotExist(err) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Error("the removed pool intel.com/intel still serves")
}

func (e *env) startKubelet(t *testing.T) { e.kubelet = kubelettest.Start(t, e.pluginDir) }

func TestKubeletStartingAfterThePlugin(t *testing.T) {
	e := startPluginSetup(t, nil, true)
	time.Sleep(300 * time.Millisecond) // the plugin is up, with nobody to register with
	e.startKubelet(t)
	for name, want := range wantPools {
		p := e.kubelet.WaitPlugin(t, name, 1, 5*time.Second)
		devs := p.WaitDevices(t, 5*time.Second, func(d []*pluginapi.Device) bool { return len(d) == len(want) })
		if d := cmp.Diff(want, ids(devs)); d != "" {
			t.Errorf("%s (-want +got):\n%s", name, d)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
