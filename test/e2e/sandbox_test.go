package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/test/cluster"
	"github.com/plexus-project/plexus/test/cluster/demo"
	"github.com/plexus-project/plexus/test/repo"
)

// TestDemo runs what `make demo DEMO_EXIT=1` runs, on its own cluster: build, up with emulated
// SR-IOV, install every component, apply docs/examples, check, down. It asserts what the pods
// got, read from live state by the demo: every component installed and ready, two VFs of its
// own node per UPF pod, and eth0 plus net1-net3 with addresses from each network's range, in
// the network-status and inside the pod, each SR-IOV network on one of the pod's VFs.
func TestDemo(t *testing.T) {
	requireE2E(t)
	// The demo builds every command first: on a loaded machine that alone may take minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	var out bytes.Buffer
	var opts demo.Options
	var rep demo.Report
	var err error
	// Another run of these tests may hold a network ID: take the next.
	for _, id := range []int{4, 10, 11} {
		name := fmt.Sprintf("demo%d", id)
		out.Reset()
		rep = demo.Report{}
		opts = demo.Options{Cluster: cluster.Options{Name: name, Dir: filepath.Join(os.TempDir(), "plexus-"+name), NetworkID: id}, Exit: true, Out: &out, Report: &rep}
		if err = demo.Run(ctx, opts); !errors.Is(err, cluster.ErrInUse) {
			break
		}
	}
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	checkDemoReport(t, &rep)
	checkNoLeftovers(t, opts.Cluster.Name, opts.Cluster.Dir, nil, nil)
}

// demoRanges are the IPAM ranges of the networks of docs/examples/networks.yaml, by interface
// of the UPF pods (which select sriov-n3, sriov-n6, macvlan-n4 in that order).
var demoRanges = map[string]struct{ network, prefix string }{
	"net1": {"default/sriov-n3", "198.18.210.0/24"},
	"net2": {"default/sriov-n6", "198.18.211.0/24"},
	"net3": {"default/macvlan-n4", "198.18.212.0/24"},
}

func checkDemoReport(t *testing.T, rep *demo.Report) {
	t.Helper()
	for _, bin := range []string{"plexus-deviceplugin", "plexus-webhook", "plexus-controller", "plexus-daemon", "plexus", "plexus-sriov", "plexus-ipam"} {
		if !rep.Installed(bin) {
			t.Errorf("%s is not installed: %+v", bin, rep.Components)
		}
	}
	if len(rep.Pods) != 2 {
		t.Fatalf("the demo reports %d pods, want upf-1 and upf-2", len(rep.Pods))
	}
	seen := map[string]string{}
	for _, p := range rep.Pods {
		if p.WantVFs != 2 || len(p.VFs) != 2 {
			t.Errorf("pod %s asked for %d VFs and holds %v, want 2", p.Pod, p.WantVFs, p.VFs)
		}
		byIf := map[string]network.Status{}
		for _, s := range p.Status {
			byIf[s.Interface] = s
		}
		if eth0 := byIf["eth0"]; !eth0.Default || !slices.Contains(eth0.IPs, p.PodIP) || !slices.Contains(p.Addrs["eth0"], p.PodIP) {
			t.Errorf("pod %s: eth0 %+v, pod IP %s, in the pod %v", p.Pod, eth0, p.PodIP, p.Addrs["eth0"])
		}
		for ifName, want := range demoRanges {
			s, ok := byIf[ifName]
			if !ok || s.Name != want.network || len(s.IPs) != 1 {
				t.Errorf("pod %s: %s in network-status is %+v, want network %s with one address", p.Pod, ifName, s, want.network)
				continue
			}
			ip, err := netip.ParseAddr(s.IPs[0])
			if err != nil || !netip.MustParsePrefix(want.prefix).Contains(ip) {
				t.Errorf("pod %s: %s has %s, outside %s of %s", p.Pod, ifName, s.IPs[0], want.prefix, want.network)
			}
			if !slices.Contains(p.Addrs[ifName], s.IPs[0]) {
				t.Errorf("pod %s: %s %s is in network-status but the pod's %s holds %v", p.Pod, ifName, s.IPs[0], ifName, p.Addrs[ifName])
			}
			if other, dup := seen[s.IPs[0]]; dup {
				t.Errorf("%s: %s %s, already %s's", p.Pod, ifName, s.IPs[0], other)
			}
			seen[s.IPs[0]] = p.Pod
			if strings.HasPrefix(want.network, "default/sriov") && (s.DeviceInfo == nil || s.DeviceInfo.Pci == nil || !slices.Contains(p.VFs, s.DeviceInfo.Pci.PciAddress)) {
				t.Errorf("pod %s: %s (%s) has device-info %+v, not one of its VFs %v", p.Pod, ifName, want.network, s.DeviceInfo, p.VFs)
			}
		}
	}
}

// TestDownAfterCrash kills `plexus-sandbox up` while it brings a node up, then tears the
// cluster down from this process, which never saw it: nothing may be left on the host.
func TestDownAfterCrash(t *testing.T) {
	requireE2E(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "plexus-sandbox")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/plexus-sandbox")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building plexus-sandbox: %v %s", err, out)
	}
	dir := filepath.Join(os.TempDir(), "plexus-e2e-crash")
	up := exec.CommandContext(ctx, bin, "up", "--name", "crash", "--dir", dir, "--nodes", "2", "--network-id", "5", "--images=false")
	var log bytes.Buffer
	up.Stdout, up.Stderr = &log, &log
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	// Crash it once a kubelet runs: containerd, pods-to-be, mounts and cgroups all exist.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "state.json"))
		if bytes.Contains(b, []byte(`"crash-node2-kubelet"`)) {
			break
		}
		if time.Now().After(deadline) {
			_ = up.Process.Kill()
			t.Fatalf("plexus-sandbox up never started a kubelet:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := up.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = up.Wait()
	pids, err := cluster.PIDsIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) == 0 {
		t.Fatal("the crashed cluster has no processes: the test did not crash it while it ran")
	}
	start := time.Now()
	if err := cluster.Down(ctx, dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("down after a crash: %d processes killed, %.1f s", len(pids), time.Since(start).Seconds())
	checkNoLeftovers(t, "crash", dir, nil, pids)
}
