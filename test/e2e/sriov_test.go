package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-project/plexus/test/cluster"
)

// TestEmulatedSRIOV checks each node's fake sysfs against its real interfaces: every VF's
// net/<ifname> resolves, inside the node, to the real macvlan (same MAC), and the VF is linked
// to its PF. Then it does by hand what the SR-IOV CNI does: moves a VF netdev of each node into
// a pod, addresses it, and pings across nodes over the VFs; the moved VF vanishes from the
// node's sysfs view, and comes back when moved back.
func TestEmulatedSRIOV(t *testing.T) {
	s := requireSuite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, n := range s.Nodes {
		if len(n.VFs) != 8 {
			t.Fatalf("node %s has %d VFs, want 2 PFs x 4", n.Name, len(n.VFs))
		}
		for _, vf := range n.VFs {
			dev := filepath.Join(cluster.FakeSysfsRoot, "bus/pci/devices", vf.PCI)
			fake := nodeOutput(ctx, t, n, "cat", filepath.Join(dev, "net", vf.Netdev, "address"))
			real := nodeOutput(ctx, t, n, "cat", "/sys/class/net/"+vf.Netdev+"/address")
			if fake != real || fake == "" {
				t.Errorf("%s: VF %s netdev %s: fake sysfs address %q, interface %q", n.Name, vf.PCI, vf.Netdev, fake, real)
			}
			if pf := nodeOutput(ctx, t, n, "readlink", "-f", filepath.Join(dev, "physfn")); filepath.Base(pf) != vf.PF {
				t.Errorf("%s: VF %s physfn -> %q, want %s", n.Name, vf.PCI, pf, vf.PF)
			}
		}
	}

	// One pod per node, each getting VF 0 of its node.
	var pods []*corev1.Pod
	for i, n := range s.Nodes {
		p := busyboxPod("e2e-vf-"+n.Name, n.Name)
		got := runPod(ctx, t, s.Cluster, p)
		pods = append(pods, got)
		vf := n.VFs[0]
		pid, err := n.PodPID(string(got.UID))
		if err != nil {
			t.Fatal(err)
		}
		nodeRun(ctx, t, n, "ip", "link", "set", vf.Netdev, "netns", fmt.Sprintf("/proc/%d/ns/net", pid))
		t.Cleanup(func() {
			// Give the VF back to the node, as the SR-IOV CNI does on DEL; a macvlan left in the
			// pod would be destroyed with it.
			out, err := hostRun(context.Background(), "nsenter", "-t", fmt.Sprint(pid), "-n", "--",
				"ip", "link", "set", vf.Netdev, "netns", fmt.Sprintf("/proc/%d/ns/net", n.HolderPID))
			if err != nil {
				t.Errorf("moving %s back to %s: %v %s", vf.Netdev, n.Name, err, out)
			}
			nodeRun(context.Background(), t, n, "ip", "link", "set", vf.Netdev, "up")
		})
		addr := fmt.Sprintf("198.18.220.%d/24", 10+i)
		if out, err := hostRun(ctx, "nsenter", "-t", fmt.Sprint(pid), "-n", "--", "sh", "-c",
			fmt.Sprintf("ip addr add %s dev %s && ip link set %s up", addr, vf.Netdev, vf.Netdev)); err != nil {
			t.Fatalf("addressing %s in pod %s: %v %s", vf.Netdev, p.Name, err, out)
		}
		// The VF's netdev left the node: its sysfs entry no longer resolves there.
		if err := n.Command(ctx, "test", "-e", filepath.Join(cluster.FakeSysfsRoot, "bus/pci/devices", vf.PCI, "net", vf.Netdev, "address")).Run(); err == nil {
			t.Errorf("%s: VF %s still shows netdev %s after it moved into a pod", n.Name, vf.PCI, vf.Netdev)
		}
	}
	out, err := kubectl(ctx, s.Cluster, "exec", pods[0].Name, "--", "ping", "-c", "2", "-W", "3", "-I", s.Nodes[0].VFs[0].Netdev, "198.18.220.11")
	if err != nil {
		t.Fatalf("ping over the VFs from %s to %s: %v", s.Nodes[0].Name, s.Nodes[1].Name, err)
	}
	t.Logf("ping over emulated VFs across nodes:\n%s", out)
}

// nodeRun runs a command on node n and fails t when it fails.
func nodeRun(ctx context.Context, t *testing.T, n *cluster.Node, name string, args ...string) {
	t.Helper()
	if out, err := n.Command(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("on %s: %s %v: %v %s", n.Name, name, args, err, out)
	}
}

// nodeOutput runs a command on node n and returns its trimmed output.
func nodeOutput(ctx context.Context, t *testing.T, n *cluster.Node, name string, args ...string) string {
	t.Helper()
	out, err := n.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Errorf("on %s: %s %v: %v %s", n.Name, name, args, err, out)
	}
	return strings.TrimSpace(string(out))
}
