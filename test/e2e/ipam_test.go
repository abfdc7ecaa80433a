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

	"github.com/plexus-project/plexus/test/cluster"
	"github.com/plexus-project/plexus/test/cluster/demo"
)

// TestIPAMOnNodes runs the plexus-ipam binary the sandbox installs in every node's
// /opt/cni/bin, on the nodes, the way a CNI runtime does. First on its own: with the kubeconfig
// the sandbox writes on each node (user plexus-ipam, RBAC from the sandbox's manifest) and the
// node's name from its host name. Then through the IPAM agent of plexus-daemon, installed as a
// DaemonSet (its ServiceAccount, the node name from the downward API). Each time, two ADDs per
// node from one range give four distinct addresses on blocks of the right nodes; DEL frees them.
func TestIPAMOnNodes(t *testing.T) {
	s := requireSuite(t)
	s.requireBinary(t, "plexus-ipam")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	y, err := demo.Manifest("plexus-ipam")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kubectlStdin(ctx, s.Cluster, string(y), "apply", "-f", "-"); err != nil {
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
	t.Run("direct", func(t *testing.T) { addAndDelOnNodes(ctx, t, s, netns, "") })
	s.requireBinary(t, "plexus-daemon")
	t.Run("agent", func(t *testing.T) {
		if err := demo.Install(ctx, s.Cluster, "plexus-daemon"); err != nil {
			t.Fatal(err)
		}
		y, _ := demo.Manifest("plexus-daemon")
		defer kubectlStdin(context.Background(), s.Cluster, string(y), "delete", "-f", "-", "--wait=true")
		for _, n := range s.Nodes {
			if err := n.Command(ctx, "test", "-S", demo.IPAMAgentSocket).Run(); err != nil {
				t.Fatalf("no IPAM agent listening at %s on %s", demo.IPAMAgentSocket, n.Name)
			}
		}
		// A kubeconfig that does not exist: only the agent (its own credentials) can answer.
		addAndDelOnNodes(ctx, t, s, netns, `, "kubernetes": {"kubeconfig": "/nonexistent"}`)
	})
}

// addAndDelOnNodes runs two ADDs of one range on every node, checks the addresses and blocks,
// and DELs them; ipamExtra is added to the ipam section.
func addAndDelOnNodes(ctx context.Context, t *testing.T, s *suiteCluster, netns map[string]string, ipamExtra string) {
	conf := `{"cniVersion": "1.0.0", "name": "e2e-ipam", "type": "macvlan",
		"ipam": {"type": "plexus-ipam", "range": "198.18.230.0/28"` + ipamExtra + `}}`
	prefix := netip.MustParsePrefix("198.18.230.0/28")
	seen := map[string]string{}
	type call struct{ node, id string }
	var added []call
	for _, n := range s.Nodes {
		for i := range 2 {
			id := fmt.Sprintf("e2e-%s-%d", n.Name, i)
			out, err := ipamCall(ctx, n, netns[n.Name], "ADD", id, conf)
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
			if !prefix.Contains(addr) {
				t.Errorf("ADD on %s gave %s, outside %s", n.Name, addr, prefix)
			}
			if other, dup := seen[addr.String()]; dup {
				t.Errorf("%s got %s, already given to %s", id, addr, other)
			}
			seen[addr.String()] = id
			added = append(added, call{n.Name, id})
		}
	}
	t.Logf("plexus-ipam on the nodes handed out %v", seen)
	// Blocks are claimed per node: each node's name (its host name) is on one.
	blocks, err := kubectl(ctx, s.Cluster, "get", "ipblocks.ipam.plexus.io", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range s.Nodes {
		if !strings.Contains(blocks, n.Name) {
			t.Errorf("no IPBlock names node %s:\n%s", n.Name, blocks)
		}
	}
	for _, a := range added {
		for _, n := range s.Nodes {
			if n.Name == a.node {
				if _, err := ipamCall(ctx, n, netns[n.Name], "DEL", a.id, conf); err != nil {
					t.Errorf("DEL %s on %s: %v", a.id, n.Name, err)
				}
			}
		}
	}
}

// ipamCall runs plexus-ipam on node n as a CNI runtime would, and returns its stdout.
func ipamCall(ctx context.Context, n *cluster.Node, netns, command, id, conf string) (string, error) {
	cmd := n.Command(ctx, "env", "CNI_COMMAND="+command, "CNI_CONTAINERID="+id, "CNI_NETNS="+netns,
		"CNI_IFNAME=net1", "CNI_PATH=/opt/cni/bin", "CNI_ARGS=K8S_POD_NAMESPACE=default;K8S_POD_NAME="+id,
		"/opt/cni/bin/plexus-ipam")
	cmd.Stdin = strings.NewReader(conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s %s", command, id, err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}
