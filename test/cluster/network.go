package cluster

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
)

// bridgeName is the host bridge that plays the physical network between the nodes.
func (c *Cluster) bridgeName() string { return c.opts.Name + "-br" }

// createHostNetwork creates the host bridge carrying the node network, with the control
// plane's address. Nodes get no default route, so nothing leaves the machine.
func (c *Cluster) createHostNetwork(ctx context.Context) error {
	br := c.bridgeName()
	// Checked before recording: Down must never remove another cluster's bridge.
	if linkExists(br) {
		return fmt.Errorf("the host already has a link %s: %w named %s (tear it down, or choose another name and network ID)", br, ErrInUse, c.opts.Name)
	}
	if hostHasAddress(c.addr.BridgeIP()) {
		return fmt.Errorf("the host already has the address %s: network ID %d is %w", c.addr.BridgeIP(), c.opts.NetworkID, ErrInUse)
	}
	if err := c.state.record(func(s *state) { s.Links = append(s.Links, br) }); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"ip", "link", "add", br, "type", "bridge"},
		{"ip", "addr", "add", fmt.Sprintf("%s/24", c.addr.BridgeIP()), "dev", br},
		{"ip", "link", "set", br, "up"},
	} {
		if err := run(ctx, args...); err != nil {
			return fmt.Errorf("creating the host bridge %s: %w", br, err)
		}
	}
	return nil
}

// vethName is the host end of node n's uplink.
func (c *Cluster) vethName(n *Node) string { return fmt.Sprintf("%s-n%d", c.opts.Name, n.Index) }

// createNodeNetwork creates node n's network namespace with eth0 (a veth whose host end is on
// the bridge), routes to the other nodes' pod networks, a host route to n's pod network (the
// API server calls webhooks at pod IPs), and a DNAT from the kubernetes service IP to the API
// server (there is no kube-proxy).
func (c *Cluster) createNodeNetwork(ctx context.Context, n *Node) error {
	veth := c.vethName(n)
	if linkExists(veth) {
		return fmt.Errorf("the host already has a link %s: %w named %s", veth, ErrInUse, c.opts.Name)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", n.Name)); err == nil {
		return fmt.Errorf("network namespace %s exists: %w named %s", n.Name, ErrInUse, c.opts.Name)
	}
	if err := c.state.record(func(s *state) {
		s.NetNS = append(s.NetNS, n.Name)
		s.Links = append(s.Links, veth)
	}); err != nil {
		return err
	}
	cmds := [][]string{
		{"ip", "netns", "add", n.Name},
		{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", n.Name},
		{"ip", "link", "set", veth, "master", c.bridgeName(), "up"},
		{"ip", "-n", n.Name, "link", "set", "lo", "up"},
		{"ip", "-n", n.Name, "addr", "add", n.IP + "/24", "dev", "eth0"},
		{"ip", "-n", n.Name, "link", "set", "eth0", "up"},
		{"ip", "route", "add", n.PodCIDR, "via", n.IP, "dev", c.bridgeName()},
	}
	for i := 1; i <= c.opts.Nodes; i++ {
		if i != n.Index {
			cmds = append(cmds, []string{"ip", "-n", n.Name, "route", "add", c.addr.PodPrefix(i).String(), "via", c.addr.NodeIP(i).String()})
		}
	}
	// Host-network pods connect from the node itself: without a route to the service range
	// the connect fails before the OUTPUT DNAT below could rewrite it.
	cmds = append(cmds, []string{"ip", "-n", n.Name, "route", "add", c.addr.ServicePrefix().String(), "via", c.addr.BridgeIP().String()})
	svc := c.addr.KubernetesServiceIP().String()
	to := fmt.Sprintf("%s:%d", c.addr.BridgeIP(), apiServerPort)
	for _, chain := range []string{"PREROUTING", "OUTPUT"} {
		cmds = append(cmds, []string{"nsenter", "--net=/run/netns/" + n.Name, "iptables", "-w", "-t", "nat", "-A", chain,
			"-d", svc + "/32", "-p", "tcp", "--dport", "443", "-j", "DNAT", "--to-destination", to})
	}
	for _, args := range cmds {
		if err := run(ctx, args...); err != nil {
			return fmt.Errorf("wiring the network of %s: %w", n.Name, err)
		}
	}
	return nil
}

// hostHasAddress says whether an interface of the host has ip.
func hostHasAddress(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == ip {
			return true
		}
	}
	return false
}
