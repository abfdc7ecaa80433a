package sriovtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/plexus-project/plexus/cni/sriov"
	"github.com/plexus-project/plexus/cni/sriov/pf"
	"github.com/plexus-project/plexus/deviceplugin/sysfs/sysfstest"
)

// PFPCI is the PCI address of the emulated PF of every Node.
const PFPCI = "0000:3b:00.0"

// VF is an emulated VF.
type VF struct {
	PCI   string
	Index int
	// Netdev is its netdev in the node netns ("" for a VF without one), with MAC and MTU as
	// created.
	Netdev string
	MAC    string
	MTU    int
}

// Options shape a Node.
type Options struct {
	// VFs is the number of VFs with a netdev (index 0..VFs-1). Defaults to 2.
	VFs int
	// VFIO adds that many VFs bound to vfio-pci (no netdev) after them.
	VFIO int
	// NoNetdev adds that many VFs on iavf without a netdev (a broken VF) after those.
	NoNetdev int
	// InHostNetns puts the node in the test's own network namespace (the host's), for plugins
	// whose delegates must reach the host's loopback (plexus-ipam and its API server); its links
	// get names unique to the node. Otherwise the node is a network namespace of its own.
	InHostNetns bool
}

// Node is a node with emulated VFs.
type Node struct {
	// Netns is the node's host network namespace.
	Netns ns.NetNS
	// Dir holds the fake sysfs (Dir/sysfs), the state directory (Dir/state) and the node settings
	// (Dir/sriov.json).
	Dir      string
	Settings sriov.NodeSettings
	// SettingsFile is the file to pass in sriov.NodeConfigEnv.
	SettingsFile string
	Tree         *sysfstest.Tree
	PF           pf.PF
	VFs          []VF
	// Uplink is the veth the PF and VF macvlans sit on.
	Uplink string

	ipNetns string // the node netns's name for ip -n, "" in the host's
}

// RequireRoot skips t unless it runs as root (network namespaces need it).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and links")
	}
}

// VFAddress is the PCI address of VF i: 0000:3b:<2+i/8>.<i%8>.
func VFAddress(i int) string { return fmt.Sprintf("0000:3b:%02x.%d", 2+i/8, i%8) }

// NewNode creates a node; everything is removed in t.Cleanup.
func NewNode(t testing.TB, opts Options) *Node {
	t.Helper()
	if opts.VFs == 0 {
		opts.VFs = 2
	}
	n := &Node{Dir: t.TempDir()}
	prefix := "ens1f0"
	if opts.InHostNetns {
		cur, err := ns.GetCurrentNS()
		if err != nil {
			t.Fatal(err)
		}
		n.Netns = cur
		prefix = "pxs" + randomHex(2) // unique on the host; pxs<4 hex>v<i> fits IFNAMSIZ
	} else {
		n.Netns = NewNetns(t, "node")
		n.ipNetns = filepath.Base(n.Netns.Path())
	}
	n.PF = pf.PF{Name: prefix + "pf", PCI: PFPCI}
	n.Uplink = prefix + "up"
	tree, err := sysfstest.New(filepath.Join(n.Dir, "sysfs"))
	if err != nil {
		t.Fatal(err)
	}
	n.Tree = tree
	n.run(t, "link", "add", n.Uplink, "type", "veth", "peer", "name", prefix+"uq")
	if opts.InHostNetns {
		// Deleting one end deletes both, and the macvlans on it.
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", n.Uplink).Run() })
	}
	n.run(t, "link", "add", n.PF.Name, "link", n.Uplink, "type", "macvlan", "mode", "bridge")
	for _, l := range []string{n.Uplink, prefix + "uq", n.PF.Name} {
		n.run(t, "link", "set", l, "up")
	}
	p := sysfstest.PF{Address: PFPCI, Vendor: "8086", Device: "1572", VFDevice: "154c", Driver: "i40e", VFDriver: "iavf",
		IfName: n.PF.Name, TotalVFs: 256}
	for i := range opts.VFs + opts.VFIO + opts.NoNetdev {
		vf := VF{PCI: VFAddress(i), Index: i}
		svf := sysfstest.VF{Address: vf.PCI}
		switch {
		case i < opts.VFs:
			vf.Netdev, vf.MTU = fmt.Sprintf("%sv%d", prefix, i), 1500
			vf.MAC = fmt.Sprintf("02:3b:00:00:%02x:%02x", i/256, i%256)
			n.run(t, "link", "add", vf.Netdev, "address", vf.MAC, "link", n.Uplink, "type", "macvlan", "mode", "bridge")
			n.run(t, "link", "set", vf.Netdev, "up")
			svf.IfName, svf.NetdevTarget = vf.Netdev, "/sys/class/net/"+vf.Netdev
		case i < opts.VFs+opts.VFIO:
			svf.Driver, svf.VFIOGroup = "vfio-pci", 100+i
		}
		p.VFs = append(p.VFs, svf)
		n.VFs = append(n.VFs, vf)
	}
	if err := tree.AddPF(p); err != nil {
		t.Fatal(err)
	}
	n.Settings = sriov.NodeSettings{SysfsRoot: tree.Root, PFBackend: sriov.BackendRecorder, StateDir: filepath.Join(n.Dir, "state")}
	b, _ := json.Marshal(n.Settings)
	n.SettingsFile = filepath.Join(n.Dir, "sriov.json")
	if err := os.WriteFile(n.SettingsFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewNetns creates a network namespace (named with prefix and a random suffix) and deletes it
// in t.Cleanup unless the test deleted it first.
func NewNetns(t testing.TB, prefix string) ns.NetNS {
	t.Helper()
	name := "pxs-" + prefix + "-" + randomHex(4)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v %s", name, err, out)
	}
	n, err := ns.GetNS("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Close()
		if _, err := os.Stat("/run/netns/" + name); err == nil {
			_ = exec.Command("ip", "netns", "del", name).Run()
		}
	})
	return n
}

// DeleteNetns deletes the network namespace at path, as a container runtime does when a pod
// goes: virtual links in it (an emulated VF's macvlan) are destroyed with it.
func DeleteNetns(t testing.TB, n ns.NetNS) {
	t.Helper()
	path := n.Path()
	n.Close()
	if out, err := exec.Command("ip", "netns", "del", filepath.Base(path)).CombinedOutput(); err != nil {
		t.Fatalf("ip netns del %s: %v %s", path, err, out)
	}
}

// ipArgs are the arguments of `ip` that run args in the node's netns.
func (n *Node) ipArgs(args ...string) []string {
	if n.ipNetns == "" {
		return args
	}
	return append([]string{"-n", n.ipNetns}, args...)
}

func (n *Node) run(t testing.TB, args ...string) {
	t.Helper()
	full := n.ipArgs(args...)
	if out, err := exec.Command("ip", full...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v %s", full, err, out)
	}
}

// ReturnVF does what the kernel does when the netns holding a real VF's netdev dies: the
// netdev reappears in the host netns. The emulated VF (a macvlan, destroyed with the netns) is
// created again under its host name, with mac and mtu (what it had in the pod).
//
// The dying netns frees its macvlan (and with it the MAC on the uplink) a moment after it is
// deleted, so this retries for a few seconds.
func (n *Node) ReturnVF(t testing.TB, vf VF, mac string, mtu int) {
	t.Helper()
	args := n.ipArgs("link", "add", vf.Netdev, "address", mac, "mtu", fmt.Sprint(mtu),
		"link", n.Uplink, "type", "macvlan", "mode", "bridge")
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Link reads the link name in netns n (nil: the node's).
func (n *Node) Link(netns ns.NetNS, name string) (sriov.NetdevState, error) {
	if netns == nil {
		netns = n.Netns
	}
	var st sriov.NetdevState
	err := netns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		a := l.Attrs()
		st = sriov.NetdevState{Name: a.Name, MAC: a.HardwareAddr.String(), MTU: a.MTU, Up: a.Flags&net.FlagUp != 0}
		return nil
	})
	return st, err
}

// Addrs lists the addresses (CIDR form) of link name in netns.
func Addrs(netns ns.NetNS, name string) ([]string, error) {
	var out []string
	err := netns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		as, err := netlink.AddrList(l, netlink.FAMILY_V4)
		for _, a := range as {
			out = append(out, a.IPNet.String())
		}
		return err
	})
	return out, err
}

// Recorder reads the PF settings the plugin recorded.
func (n *Node) Recorder() pf.Recorder { return pf.Recorder{SysfsRoot: n.Settings.SysfsRoot} }

// Call is one plugin invocation over the CNI exec protocol.
type Call struct {
	// Binary is the plugin; CNI_PATH is its directory plus ExtraPath.
	Binary      string
	ExtraPath   []string
	Command     string
	ContainerID string
	Netns       string
	IfName      string
	Args        string
	Conf        []byte
	// Env is added to the environment (node settings of delegates, e.g. plexus-ipam's).
	Env []string
}

// Call runs c in the node's netns with the node's settings and returns its stdout; a plugin
// error comes back as *types.Error-like text in the error, with the stdout.
func (n *Node) Call(ctx context.Context, c Call) ([]byte, error) {
	path := filepath.Dir(c.Binary)
	for _, p := range c.ExtraPath {
		path += ":" + p
	}
	cmd := exec.CommandContext(ctx, c.Binary)
	cmd.Env = []string{
		"CNI_COMMAND=" + c.Command, "CNI_CONTAINERID=" + c.ContainerID, "CNI_NETNS=" + c.Netns,
		"CNI_IFNAME=" + c.IfName, "CNI_ARGS=" + c.Args, "CNI_PATH=" + path, "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		sriov.NodeConfigEnv + "=" + n.SettingsFile,
	}
	cmd.Env = append(cmd.Env, c.Env...)
	cmd.Stdin = bytes.NewReader(c.Conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Started from a thread in the node's netns, the plugin runs there.
	err := n.Netns.Do(func(ns.NetNS) error { return cmd.Run() })
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: stdout %s stderr %s", c.Command, c.ContainerID, err, bytes.TrimSpace(stdout.Bytes()), bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}
