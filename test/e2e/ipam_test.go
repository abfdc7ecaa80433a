package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	"github.com/plexus-project/plexus/test/cluster"
	"github.com/plexus-project/plexus/test/cluster/demo"
)

// TestIPAMOnNodes runs the plexus-ipam binary the sandbox installs in every node's
// /opt/cni/bin, on the nodes, the way a CNI runtime does. First on its own: with the kubeconfig
// the sandbox writes on each node (user plexus-ipam, whose rights demo.Install grants) and the
// node's name from its host name. Then through the IPAM agent of plexus-daemon, installed with
// the chart (its ServiceAccount, the node name from the downward API). Each time, two ADDs per
// node from one range give four distinct addresses on blocks of the right nodes; DEL frees them.
func TestIPAMOnNodes(t *testing.T) {
	s := requireSuite(t)
	s.requireBinary(t, "plexus-ipam")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := demo.Install(ctx, s.Cluster, "plexus-ipam"); err != nil {
		t.Fatal(err)
	}
	// CNI_NETNS must name a namespace other than the plugin's: a pod's, on each node.
	netns := map[string]string{}
	for _, n := range s.Nodes {
		p := busyboxPod("e2e-ipam-"+n.Name, n.Name)
		got := runPod(ctx, t, s.Cluster, p)
		pid, err := n.PodPID(string(got.UID))
		if err != nil {
			t.Fatal(err)
		}
		netns[n.Name] = fmt.Sprintf("/proc/%d/ns/net", pid)
	}
	t.Run("direct", func(t *testing.T) { addAndDelOnNodes(ctx, t, s, netns, "", "") })
	s.requireBinary(t, "plexus-daemon")
	t.Run("agent", func(t *testing.T) {
		defer uninstallDaemon(t, s.Cluster) // and the CNI conflist it leaves on the nodes
		if err := demo.Install(ctx, s.Cluster, "plexus-daemon"); err != nil {
			t.Fatal(err)
		}
		for _, n := range s.Nodes {
			if err := n.Command(ctx, "test", "-S", demo.IPAMAgentSocket).Run(); err != nil {
				t.Fatalf("no IPAM agent listening at %s on %s", demo.IPAMAgentSocket, n.Name)
			}
		}
		// A node configuration whose kubeconfig does not exist: only the agent (its own
		// credentials) can answer. (A network configuration can no longer point the plugin at a
		// kubeconfig outside the node's Plexus directories: it is ignored, not obeyed.)
		addAndDelOnNodes(ctx, t, s, netns, "", `{"kubeconfig": "/nonexistent"}`)
	})
}

// e2eRange is the range addAndDelOnNodes allocates from: eight /27 blocks, so every node
// claims one of its own.
var e2eRange = netip.MustParsePrefix("198.18.230.0/24")

// addAndDelOnNodes runs two ADDs of one range on every node, checks the addresses and that each
// was written into a block the node claimed, DELs them and checks that they were freed.
// ipamExtra is added to the ipam section; nodeConfig, when set, is written on each node as the
// plugin's node configuration (config.NodeConfigEnv).
func addAndDelOnNodes(ctx context.Context, t *testing.T, s *suiteCluster, netns map[string]string, ipamExtra, nodeConfig string) {
	conf := `{"cniVersion": "1.0.0", "name": "e2e-ipam", "type": "macvlan",
		"ipam": {"type": "plexus-ipam", "range": "` + e2eRange.String() + `"` + ipamExtra + `}}`
	var env []string
	if nodeConfig != "" {
		const path = "/run/plexus-e2e-ipam-node.json"
		for _, n := range s.Nodes {
			cmd := n.Command(ctx, "sh", "-c", "cat > "+path)
			cmd.Stdin = strings.NewReader(nodeConfig)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("writing %s on %s: %v %s", path, n.Name, err, out)
			}
		}
		env = []string{"PLEXUS_IPAM_NODE_CONFIG=" + path}
	}
	seen := map[netip.Addr]string{}
	onNode := map[netip.Addr]string{}
	type call struct{ node, id string }
	var added []call
	for _, n := range s.Nodes {
		for i := range 2 {
			id := fmt.Sprintf("e2e-%s-%d", n.Name, i)
			out, err := ipamCall(ctx, n, netns[n.Name], "ADD", id, conf, env...)
			if err != nil {
				t.Fatalf("ADD on %s: %v", n.Name, err)
			}
			var res struct {
				IPs []struct{ Address string } `json:"ips"`
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.IPs) != 1 {
				t.Fatalf("ADD on %s answered %q (%v)", n.Name, out, err)
			}
			addr := netip.MustParsePrefix(res.IPs[0].Address).Addr()
			if !e2eRange.Contains(addr) {
				t.Errorf("ADD on %s gave %s, outside %s", n.Name, addr, e2eRange)
			}
			if other, dup := seen[addr]; dup {
				t.Errorf("%s got %s, already given to %s", id, addr, other)
			}
			seen[addr], onNode[addr] = id, n.Name
			added = append(added, call{n.Name, id})
		}
	}
	t.Logf("plexus-ipam on the nodes handed out %v", seen)
	// Each node allocated from a block it claimed: the block's spec.node and node label name it
	// (through the daemon, once its agent wrote what it journaled).
	var blocks []v1alpha1.IPBlock
	settle(func() bool {
		blocks = e2eBlocks(ctx, t, s)
		for addr := range onNode {
			if b, ok := blockHolding(blocks, addr); !ok || b.Spec.Allocations[addr.String()].ContainerID != seen[addr] {
				return false
			}
		}
		return true
	})
	for addr, node := range onNode {
		b, ok := blockHolding(blocks, addr)
		switch {
		case !ok:
			t.Errorf("no IPBlock holds %s", addr)
		case b.Spec.Node != node || b.Labels["ipam.plexus.io/node"] != node:
			t.Errorf("%s (ADD on %s) is in block %s of node %q (label %q)", addr, node, b.Name, b.Spec.Node, b.Labels["ipam.plexus.io/node"])
		case b.Spec.Allocations[addr.String()].ContainerID != seen[addr]:
			t.Errorf("block %s holds %s for %+v, not %s", b.Name, addr, b.Spec.Allocations[addr.String()], seen[addr])
		}
	}
	for _, a := range added {
		for _, n := range s.Nodes {
			if n.Name == a.node {
				if _, err := ipamCall(ctx, n, netns[n.Name], "DEL", a.id, conf, env...); err != nil {
					t.Errorf("DEL %s on %s: %v", a.id, n.Name, err)
				}
			}
		}
	}
	// DEL freed every address: none is held any more, and the emptied blocks are gone (through
	// the daemon, once its agent wrote the journaled DELs and gave back what it set aside).
	settle(func() bool { return len(e2eBlocks(ctx, t, s)) == 0 })
	for _, b := range e2eBlocks(ctx, t, s) {
		t.Errorf("block %s of node %s still there after DEL of everything: %v", b.Name, b.Spec.Node, b.Spec.Allocations)
	}
}

// e2eBlocks lists the IPBlocks inside e2eRange.
func e2eBlocks(ctx context.Context, t *testing.T, s *suiteCluster) []v1alpha1.IPBlock {
	t.Helper()
	out, err := kubectl(ctx, s.Cluster, "get", "ipblocks.ipam.plexus.io", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list v1alpha1.IPBlockList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("decoding the IPBlocks: %v", err)
	}
	var in []v1alpha1.IPBlock
	for _, b := range list.Items {
		if p, err := netip.ParsePrefix(b.Spec.CIDR); err == nil && e2eRange.Overlaps(p) {
			in = append(in, b)
		}
	}
	return in
}

func blockHolding(blocks []v1alpha1.IPBlock, addr netip.Addr) (v1alpha1.IPBlock, bool) {
	for _, b := range blocks {
		if _, ok := b.Spec.Allocations[addr.String()]; ok {
			return b, true
		}
	}
	return v1alpha1.IPBlock{}, false
}

// ipamCall runs plexus-ipam on node n as a CNI runtime would, and returns its stdout.
func ipamCall(ctx context.Context, n *cluster.Node, netns, command, id, conf string, env ...string) (string, error) {
	argv := append([]string{"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + id, "CNI_NETNS=" + netns,
		"CNI_IFNAME=net1", "CNI_PATH=/opt/cni/bin", "CNI_ARGS=K8S_POD_NAMESPACE=default;K8S_POD_NAME=" + id}, env...)
	cmd := n.Command(ctx, "env", append(argv, "/opt/cni/bin/plexus-ipam")...)
	cmd.Stdin = strings.NewReader(conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s %s", command, id, err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}
