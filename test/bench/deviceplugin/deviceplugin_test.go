package deviceplugin_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/plexus-project/plexus/deviceplugin/config"
	"github.com/plexus-project/plexus/deviceplugin/devinfo"
	"github.com/plexus-project/plexus/deviceplugin/health"
	"github.com/plexus-project/plexus/deviceplugin/kubelettest"
	"github.com/plexus-project/plexus/deviceplugin/pool"
	"github.com/plexus-project/plexus/deviceplugin/server"
	"github.com/plexus-project/plexus/deviceplugin/sysfs"
	"github.com/plexus-project/plexus/deviceplugin/sysfs/sysfstest"
)

const (
	numPFs = 64
	vfsPer = 64

	discoveryGoal = 300 * time.Millisecond
	allocateGoal  = time.Millisecond
)

// bigTree writes 64 PFs with 64 VFs each (half the VFs of every 8th PF on vfio-pci) in root.
func bigTree(b *testing.B, root string) *sysfstest.Tree {
	b.Helper()
	tree, err := sysfstest.New(root)
	if err != nil {
		b.Fatal(err)
	}
	for p := range numPFs {
		pf := sysfstest.PF{
			Address: fmt.Sprintf("0000:%02x:00.0", p+1), Vendor: "8086", Device: "1572", VFDevice: "154c",
			Driver: "i40e", VFDriver: "iavf", NUMANode: p % 2, IfName: fmt.Sprintf("ens%df0", p+1),
		}
		for v := range vfsPer {
			vf := sysfstest.VF{Address: fmt.Sprintf("0000:%02x:%02x.%d", p+1, 2+v/8, v%8), IfName: fmt.Sprintf("ens%df0v%d", p+1, v)}
			if p%8 == 0 && v%2 == 1 {
				vf = sysfstest.VF{Address: vf.Address, Driver: "vfio-pci", VFIOGroup: 1000 + p*vfsPer + v}
			}
			pf.VFs = append(pf.VFs, vf)
		}
		if err := tree.AddPF(pf); err != nil {
			b.Fatal(err)
		}
	}
	return tree
}

func BenchmarkDiscovery64x64(b *testing.B) {
	dirs := map[string]string{"disk": b.TempDir()}
	if shm, err := os.MkdirTemp("/dev/shm", "plexus-bench-"); err == nil {
		b.Cleanup(func() { os.RemoveAll(shm) })
		dirs["tmpfs"] = shm
	}
	for _, medium := range []string{"disk", "tmpfs"} {
		dir, ok := dirs[medium]
		if !ok {
			continue
		}
		b.Run(medium, func(b *testing.B) {
			tree := bigTree(b, filepath.Join(dir, "sys"))
			fs := sysfs.New(tree.Root)
			var times []time.Duration
			for range b.N {
				for range 5 {
					start := time.Now()
					pfs, err := fs.Discover(context.Background())
					times = append(times, time.Since(start))
					if err != nil {
						b.Fatal(err)
					}
					n := 0
					for _, pf := range pfs {
						n += len(pf.VFs)
					}
					if len(pfs) != numPFs || n != numPFs*vfsPer {
						b.Fatalf("discovered %d PFs, %d VFs", len(pfs), n)
					}
				}
			}
			slices.Sort(times)
			median, worst := times[len(times)/2], times[len(times)-1]
			b.ReportMetric(float64(median.Microseconds())/1000, "ms-median")
			b.ReportMetric(float64(worst.Microseconds())/1000, "ms-max")
			verdict := "OK"
			if median > discoveryGoal {
				verdict = "OVER GOAL"
				b.Errorf("discovery median %s is over the %s goal", median, discoveryGoal)
			}
			fmt.Printf("deviceplugin discovery, %d PFs x %d VFs on %s: median %s, max %s over %d runs (goal < %s): %s; load average %s\n",
				numPFs, vfsPer, medium, median.Round(time.Microsecond), worst.Round(time.Microsecond), len(times), discoveryGoal, verdict, loadAvg())
		})
	}
}

func BenchmarkAllocateP99(b *testing.B) {
	dir := b.TempDir()
	tree := bigTree(b, filepath.Join(dir, "sys"))
	pfs, err := sysfs.New(tree.Root).Discover(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Parse([]byte(`{"resourceList": [{"resourceName": "sriov_netdevice", "selectors": {"drivers": ["iavf"]}}]}`), "")
	if err != nil {
		b.Fatal(err)
	}
	p := pool.Build(context.Background(), cfg, "", pfs)[0]
	pluginDir := filepath.Join(dir, "device-plugins")
	if err := os.MkdirAll(pluginDir, 0o755); err != nil {
		b.Fatal(err)
	}
	k := kubelettest.Start(b, pluginDir)
	// Device-info files go to /var/run (tmpfs) in production: use tmpfs here too when there is one.
	devinfoDir := filepath.Join(dir, "devinfo")
	if shm, err := os.MkdirTemp("/dev/shm", "plexus-devinfo-"); err == nil {
		b.Cleanup(func() { os.RemoveAll(shm) })
		devinfoDir = shm
	}
	srv := server.New(p, server.Options{PluginDir: pluginDir, DevInfo: &devinfo.Store{Dir: devinfoDir}})
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Stop)
	client := k.WaitPlugin(b, p.Name, 1, 10*time.Second).Client
	ids := p.IDs()

	const calls, warmup = 2000, 200
	var lat []time.Duration
	for i := range warmup { // connection, first files, caches
		if _, err := client.Allocate(context.Background(), &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
			{DevicesIDs: []string{ids[i%len(ids)]}},
		}}); err != nil {
			b.Fatal(err)
		}
	}
	for range b.N {
		for i := range calls {
			req := pairRequest(ids, i)
			start := time.Now()
			if _, err := client.Allocate(context.Background(), req); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
	}
	// The same requests answered in process, without gRPC and the scheduler's wake-ups of two
	// goroutines per call: the plugin's own share of the latency.
	var inproc []time.Duration
	for i := range calls {
		req := pairRequest(ids, i)
		start := time.Now()
		if _, err := srv.Allocate(context.Background(), req); err != nil {
			b.Fatal(err)
		}
		inproc = append(inproc, time.Since(start))
	}
	slices.Sort(inproc)
	fmt.Printf("deviceplugin Allocate handler alone (no gRPC): p50 %s, p99 %s over %d calls\n",
		inproc[len(inproc)/2].Round(time.Microsecond), inproc[len(inproc)*99/100].Round(time.Microsecond), len(inproc))

	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	b.ReportMetric(float64(p50.Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(p99.Microseconds())/1000, "ms-p99")
	verdict := "OK"
	if p99 > allocateGoal {
		verdict = "OVER GOAL"
		b.Errorf("Allocate p99 %s is over the %s goal", p99, allocateGoal)
	}
	fmt.Printf("deviceplugin Allocate (2 VFs, gRPC over a unix socket, device-info files written), pool of %d VFs: p50 %s, p99 %s over %d calls after %d warm-up calls (goal p99 < %s): %s; load average %s\n",
		len(ids), p50.Round(time.Microsecond), p99.Round(time.Microsecond), len(lat), warmup, allocateGoal, verdict, loadAvg())
}

// loadAvg is the 1-minute load average, to read the figures in context (the machine is shared).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}

// BenchmarkHealthCheck64x64 times one health poll of 4,096 VFs as the plugin runs it: every
// 250 ms, PF state every poll, each VF's netdev every second poll.
func BenchmarkHealthCheck64x64(b *testing.B) {
	tree := bigTree(b, filepath.Join(b.TempDir(), "sys"))
	fs := sysfs.New(tree.Root)
	pfs, err := fs.Discover(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	c := health.Checker{Src: fs, NetdevShards: 2} // as the plugin runs it
	var times []time.Duration
	for range b.N {
		for range 20 {
			start := time.Now()
			if res := c.Check(pfs, func(string) bool { return false }); len(res.Unhealthy) != 0 {
				b.Fatalf("unhealthy: %v", res.Unhealthy)
			}
			times = append(times, time.Since(start))
		}
	}
	slices.Sort(times)
	median := times[len(times)/2]
	b.ReportMetric(float64(median.Microseconds())/1000, "ms-median")
	fmt.Printf("deviceplugin health poll of %d VFs: median %s (every %s: %.1f%% of a core); load average %s\n",
		numPFs*vfsPer, median.Round(time.Microsecond), 250*time.Millisecond, 100*median.Seconds()/0.25, loadAvg())
}

// pairRequest asks for the i-th pair of devices of ids, as a pod limiting two VFs does.
func pairRequest(ids []string, i int) *pluginapi.AllocateRequest {
	return &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIDs: []string{ids[(2*i)%len(ids)], ids[(2*i+1)%len(ids)]}},
	}}
}
