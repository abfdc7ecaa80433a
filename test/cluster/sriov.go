package cluster

import (
	"context"
	"fmt"
	"os"

	"github.com/plexus-project/plexus/deviceplugin/sysfs/sysfstest"
)

// FakeSysfsRoot is where every node with emulated SR-IOV sees its fake sysfs tree: pass it as
// --sysfs-root to the device plugin and the SR-IOV CNI (hostPath in their pods).
const FakeSysfsRoot = "/var/lib/plexus/sysfs"

// Emulated NIC identity: an Intel X710 PF (8086:1572, i40e) whose VFs are 8086:154c on iavf.
const (
	emulatedVendor   = "8086"
	emulatedPFDevice = "1572"
	emulatedVFDevice = "154c"
)

// VF is one emulated SR-IOV virtual function of a node.
type VF struct {
	// PCI is the VF's PCI address in the fake sysfs.
	PCI string
	// PF is the PCI address of its physical function.
	PF string
	// PFName is the PF's netdev.
	PFName string
	// Netdev is the VF's interface in the node's network namespace (a macvlan on eth0, so
	// traffic through it reaches the other nodes over the host bridge).
	Netdev string
	// MAC is the netdev's MAC address as created (and recreated when a pod's netns holding it
	// dies, as the kernel returns a real VF).
	MAC string
	// NUMANode is the VF's NUMA node in the fake sysfs.
	NUMANode int
}

// PFAddress is the PCI address of emulated PF p (from 0) on every node.
func PFAddress(p int) string { return fmt.Sprintf("0000:%02x:00.0", 0x3b+p) }

// PFName is the netdev of emulated PF p (from 0): ens<p+1>f0.
func PFName(p int) string { return fmt.Sprintf("ens%df0", p+1) }

// SRIOVNodeSettings is the node settings file of plexus-sriov on every node with emulated
// SR-IOV: the fake sysfs and the recorder PF backend, which keeps VF settings in files under
// each PF's directory there (plexus-vf-settings/<N>.json).
const SRIOVNodeSettings = "/etc/plexus/sriov.json"

// createVFs writes node n's fake sysfs tree (FakeSysfsRoot inside the node) with the PFs and
// VFs of Options.SRIOV, each netdev a real macvlan interface on the node's eth0 whose sysfs
// entry links to the node's real /sys/class/net/<name>; writes plexus-sriov's node settings;
// and starts the emulation of the kernel returning a VF whose pod's netns died.
func (c *Cluster) createVFs(ctx context.Context, n *Node) error {
	tree, err := sysfstest.New(n.HostPath(FakeSysfsRoot))
	if err != nil {
		return err
	}
	for p := range c.opts.SRIOV.PFs {
		pf := sysfstest.PF{
			Address: PFAddress(p), Vendor: emulatedVendor, Device: emulatedPFDevice, VFDevice: emulatedVFDevice,
			Driver: "i40e", VFDriver: "iavf", NUMANode: p % 2, IfName: PFName(p),
			TotalVFs: 64, NetdevTarget: "/sys/class/net/" + PFName(p),
		}
		if err := c.addMacvlan(ctx, n, pf.IfName, ""); err != nil {
			return err
		}
		for v := range c.opts.SRIOV.VFsPerPF {
			vf := VF{
				PCI: fmt.Sprintf("0000:%02x:%02x.%d", 0x3b+p, 2+v/8, v%8), PF: pf.Address, PFName: pf.IfName,
				Netdev: fmt.Sprintf("%sv%d", pf.IfName, v), MAC: c.vfMAC(n, p, v), NUMANode: pf.NUMANode,
			}
			if err := c.addMacvlan(ctx, n, vf.Netdev, vf.MAC); err != nil {
				return err
			}
			pf.VFs = append(pf.VFs, sysfstest.VF{Address: vf.PCI, IfName: vf.Netdev, NetdevTarget: "/sys/class/net/" + vf.Netdev})
			n.VFs = append(n.VFs, vf)
		}
		if err := tree.AddPF(pf); err != nil {
			return err
		}
	}
	settings := fmt.Sprintf(`{"sysfsRoot": %q, "pfBackend": "recorder"}`+"\n", FakeSysfsRoot)
	if err := os.WriteFile(n.HostPath(SRIOVNodeSettings), []byte(settings), 0o644); err != nil {
		return fmt.Errorf("writing the plexus-sriov node settings of %s: %w", n.Name, err)
	}
	return c.startVFReturn(ctx, n)
}

func (c *Cluster) addMacvlan(ctx context.Context, n *Node, name, mac string) error {
	args := []string{"ip", "-n", n.Name, "link", "add", name}
	if mac != "" {
		args = append(args, "address", mac)
	}
	if err := run(ctx, append(args, "link", "eth0", "type", "macvlan", "mode", "bridge")...); err != nil {
		return fmt.Errorf("creating the emulated netdev %s of %s: %w", name, n.Name, err)
	}
	return run(ctx, "ip", "-n", n.Name, "link", "set", name, "up")
}
