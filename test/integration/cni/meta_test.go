package cni

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// The selection's bandwidth and portMappings reach the reference bandwidth and portmap plugins
// of the network's conflist through their capabilities: the host side of the pod's interface is
// shaped at the rates asked for, the host port is forwarded to the pod's address, and DEL
// removes both.
func TestBandwidthAndPortMappingsReachTheirPlugins(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 3*time.Minute)
	for _, tool := range []string{"tc", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: the bandwidth and portmap plugins need it", tool)
		}
	}
	br := "pxb" + e.suffix
	e.cleanupLink(br)
	e.createNAD(ctx, "bridge-shaped", fmt.Sprintf(`{"cniVersion":"1.0.0","name":"bridge-shaped","plugins":[
		{"type":"bridge","bridge":%q,"ipam":{"type":"static","addresses":[{"address":"10.97.0.10/24"}]}},
		{"type":"bandwidth","capabilities":{"bandwidth":true}},
		{"type":"portmap","capabilities":{"portMappings":true},"snat":false}]}`, br), nil)
	e.startDaemon()
	rt := e.runtime()
	const hostPort = "18931"
	sb := e.newSandbox(ctx, "pod-shaped", `[{"name":"bridge-shaped",
		"bandwidth":{"ingressRate":1000000,"ingressBurst":100000,"egressRate":2000000,"egressBurst":100000},
		"portMappings":[{"hostPort":`+hostPort+`,"containerPort":80,"protocol":"tcp"}]}]`)
	if _, err := rt.add(ctx, sb); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	hostVeth := bridgePort(t, br)
	if got := run(t, "tc", "qdisc", "show", "dev", hostVeth); !strings.Contains(got, "tbf") || !strings.Contains(got, "rate 1Mbit") {
		t.Errorf("qdiscs of %s (the pod's net1, host side) = %q; want a tbf at 1Mbit (ingressRate)", hostVeth, got)
	}
	ifb := ifbLinks(t)
	if len(ifb) != 1 {
		t.Fatalf("ifb devices %v; want the one the bandwidth plugin shapes egress on", ifb)
	}
	if got := run(t, "tc", "qdisc", "show", "dev", ifb[0]); !strings.Contains(got, "rate 2Mbit") {
		t.Errorf("qdiscs of %s = %q; want a tbf at 2Mbit (egressRate)", ifb[0], got)
	}
	dnat := "--dport " + hostPort
	if got := run(t, "iptables", "-t", "nat", "-S"); !strings.Contains(got, dnat) || !strings.Contains(got, "--to-destination 10.97.0.10:80") {
		t.Errorf("no DNAT of host port %s to 10.97.0.10:80 in the nat table:\n%s", hostPort, got)
	}
	if err := rt.del(ctx, sb); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if got := run(t, "iptables", "-t", "nat", "-S"); strings.Contains(got, dnat) {
		t.Errorf("the DNAT of host port %s is still there after DEL:\n%s", hostPort, got)
	}
	if left := ifbLinks(t); len(left) != 0 {
		t.Errorf("ifb devices %v left after DEL", left)
	}
}

// bridgePort is the one interface enslaved to bridge br.
func bridgePort(t *testing.T, br string) string {
	t.Helper()
	bl, err := netlink.LinkByName(br)
	if err != nil {
		t.Fatalf("bridge %s: %v", br, err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, l := range links {
		if l.Attrs().MasterIndex == bl.Attrs().Index {
			ports = append(ports, l.Attrs().Name)
		}
	}
	if len(ports) != 1 {
		t.Fatalf("bridge %s has ports %v; want the pod's one", br, ports)
	}
	return ports[0]
}

// ifbLinks are the host's ifb devices (the bandwidth plugin's, named bwp...).
func ifbLinks(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		if l.Type() == "ifb" && strings.HasPrefix(l.Attrs().Name, "bwp") {
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
