package sysfstest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
)

// PF describes a physical function to write.
type PF struct {
	// Address is the PF's PCI address, e.g. 0000:03:00.0 (required).
	Address string
	// Vendor and Device are 4 hex digits, e.g. 8086 and 1572 (required).
	Vendor, Device string
	// VFDevice is the device ID of its VFs (default: Device).
	VFDevice string
	// Class is the PCI class (default 0x020000, Ethernet controller).
	Class string
	// Driver is the PF driver, e.g. i40e or mlx5_core ("" for none).
	Driver string
	// VFDriver is the default driver of its VFs (default: Driver).
	VFDriver string
	// NUMANode is written to numa_node (use -1 for "unknown").
	NUMANode int
	// IfName is the PF netdev ("" for none).
	IfName string
	// LinkType is the netdev's type: "ether" (default) or "infiniband".
	LinkType string
	// TotalVFs is sriov_totalvfs (default: len(VFs)).
	TotalVFs int
	// NetdevTarget, when set, makes net/<IfName> a symlink to this directory (a real
	// interface's /sys/class/net/<name>) instead of a fake netdev directory.
	NetdevTarget string
	// VFs are the enabled VFs; VF i is virtfn<i>, and sriov_numvfs is len(VFs).
	VFs []VF
}

// VF describes a virtual function.
type VF struct {
	// Address is the VF's PCI address (required).
	Address string
	// Driver overrides the PF's VFDriver, e.g. "vfio-pci".
	Driver string
	// IfName is the VF netdev ("" for none, as when bound to vfio-pci).
	IfName string
	// VFIOGroup is the IOMMU group (the N of /dev/vfio/N), written when Driver is vfio-pci.
	VFIOGroup int
	// RDMA adds infiniband/ and infiniband_verbs/uverbs<N> (N = VF index), and infiniband/ to
	// the PF.
	RDMA bool
	// NetdevTarget as for PF.
	NetdevTarget string
}

// Tree is a fake sysfs tree. Its methods are safe for concurrent use.
type Tree struct {
	// Root is the directory to pass as --sysfs-root.
	Root string

	mu  sync.Mutex
	pfs map[string]*PF
}

// New creates the skeleton of a sysfs tree in root (created if missing).
func New(root string) (*Tree, error) {
	for _, d := range []string{"bus/pci/devices", "bus/pci/drivers", "class/net", "devices/pci0000:00", "kernel/iommu_groups"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("creating the fake sysfs tree: %w", err)
		}
	}
	return &Tree{Root: root, pfs: map[string]*PF{}}, nil
}

func (t *Tree) dev(addr string) string { return filepath.Join(t.Root, "devices", "pci0000:00", addr) }

// AddPF writes a PF and its VFs.
func (t *Tree) AddPF(pf PF) error {
	if pf.Address == "" || pf.Vendor == "" || pf.Device == "" {
		return errors.New("sysfstest: a PF needs Address, Vendor and Device")
	}
	if pf.VFDevice == "" {
		pf.VFDevice = pf.Device
	}
	if pf.Class == "" {
		pf.Class = "0x020000"
	}
	if pf.VFDriver == "" {
		pf.VFDriver = pf.Driver
	}
	if pf.LinkType == "" {
		pf.LinkType = "ether"
	}
	if pf.TotalVFs == 0 {
		pf.TotalVFs = len(pf.VFs)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.writeDevice(pf.Address, pf.Vendor, pf.Device, pf.Class, pf.Driver, pf.NUMANode); err != nil {
		return err
	}
	d := t.dev(pf.Address)
	if err := writeFile(d, "sriov_totalvfs", strconv.Itoa(pf.TotalVFs)); err != nil {
		return err
	}
	if err := writeFile(d, "sriov_vf_device", pf.VFDevice); err != nil {
		return err
	}
	if pf.IfName != "" {
		if err := t.writeNetdev(pf.Address, pf.IfName, pf.LinkType, pf.NetdevTarget, "00:00:00:00:00:01"); err != nil {
			return err
		}
	}
	if slices.ContainsFunc(pf.VFs, func(vf VF) bool { return vf.RDMA }) {
		// An RDMA-capable NIC's PF has its own RDMA device too.
		if err := os.MkdirAll(filepath.Join(d, "infiniband", "mlx5_pf"), 0o755); err != nil {
			return err
		}
	}
	stored := pf
	stored.VFs = append([]VF(nil), pf.VFs...)
	t.pfs[pf.Address] = &stored
	return t.enableVFs(&stored, len(pf.VFs))
}

// enableVFs writes VFs [0, n) of pf, removes the others and sets sriov_numvfs to n.
func (t *Tree) enableVFs(pf *PF, n int) error {
	d := t.dev(pf.Address)
	for i, vf := range pf.VFs {
		link := filepath.Join(d, "virtfn"+strconv.Itoa(i))
		if i >= n {
			if err := t.removeDevice(vf.Address, vf.IfName); err != nil {
				return err
			}
			if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
				return err
			}
			continue
		}
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := t.writeVF(pf, i, vf); err != nil {
			return err
		}
		if err := os.Symlink("../"+vf.Address, link); err != nil {
			return err
		}
	}
	return writeFile(d, "sriov_numvfs", strconv.Itoa(n))
}

func (t *Tree) writeVF(pf *PF, index int, vf VF) error {
	driver := vf.Driver
	if driver == "" {
		driver = pf.VFDriver
	}
	// A VF sits on its PF's NUMA node, as the kernel reports it.
	if err := t.writeDevice(vf.Address, pf.Vendor, pf.VFDevice, pf.Class, driver, pf.NUMANode); err != nil {
		return err
	}
	d := t.dev(vf.Address)
	if err := os.Symlink("../"+pf.Address, filepath.Join(d, "physfn")); err != nil {
		return err
	}
	if driver == "vfio-pci" {
		g := strconv.Itoa(vf.VFIOGroup)
		gdir := filepath.Join(t.Root, "kernel", "iommu_groups", g, "devices")
		if err := os.MkdirAll(gdir, 0o755); err != nil {
			return err
		}
		if err := os.Symlink("../../../../devices/pci0000:00/"+vf.Address, filepath.Join(gdir, vf.Address)); err != nil && !os.IsExist(err) {
			return err
		}
		if err := os.Symlink("../../../kernel/iommu_groups/"+g, filepath.Join(d, "iommu_group")); err != nil {
			return err
		}
	}
	if vf.RDMA {
		if err := os.MkdirAll(filepath.Join(d, "infiniband", "mlx5_"+strconv.Itoa(index)), 0o755); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(d, "infiniband_verbs", "uverbs"+strconv.Itoa(index)), 0o755); err != nil {
			return err
		}
	}
	if vf.IfName != "" {
		mac := fmt.Sprintf("02:00:00:00:%02x:%02x", index/256, index%256)
		return t.writeNetdev(vf.Address, vf.IfName, pf.LinkType, vf.NetdevTarget, mac)
	}
	return nil
}

func (t *Tree) writeDevice(addr, vendor, device, class, driver string, numa int) error {
	d := t.dev(addr)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("sysfstest: %w", err)
	}
	for name, v := range map[string]string{"vendor": "0x" + vendor, "device": "0x" + device, "class": class, "numa_node": strconv.Itoa(numa)} {
		if err := writeFile(d, name, v); err != nil {
			return err
		}
	}
	if driver != "" {
		if err := os.MkdirAll(filepath.Join(t.Root, "bus", "pci", "drivers", driver), 0o755); err != nil {
			return err
		}
		if err := os.Symlink("../../../bus/pci/drivers/"+driver, filepath.Join(d, "driver")); err != nil {
			return fmt.Errorf("sysfstest: driver link of %s: %w", addr, err)
		}
	}
	if err := os.Symlink("../../../devices/pci0000:00/"+addr, filepath.Join(t.Root, "bus", "pci", "devices", addr)); err != nil {
		return fmt.Errorf("sysfstest: device %s: %w", addr, err)
	}
	return nil
}

func (t *Tree) removeDevice(addr, ifName string) error {
	if ifName != "" {
		_ = os.Remove(filepath.Join(t.Root, "class", "net", ifName))
	}
	if err := os.Remove(filepath.Join(t.Root, "bus", "pci", "devices", addr)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.RemoveAll(t.dev(addr))
}

func (t *Tree) writeNetdev(addr, ifName, linkType, target, mac string) error {
	netDir := filepath.Join(t.dev(addr), "net")
	if err := os.MkdirAll(netDir, 0o755); err != nil {
		return err
	}
	nd := filepath.Join(netDir, ifName)
	if target != "" {
		if err := os.Symlink(target, nd); err != nil {
			return err
		}
	} else {
		if err := os.MkdirAll(nd, 0o755); err != nil {
			return err
		}
		typ := "1"
		if linkType == "infiniband" {
			typ = "32"
		}
		for name, v := range map[string]string{"type": typ, "operstate": "up", "carrier": "1", "address": mac} {
			if err := writeFile(nd, name, v); err != nil {
				return err
			}
		}
	}
	cn := filepath.Join(t.Root, "class", "net", ifName)
	_ = os.Remove(cn)
	return os.Symlink("../../devices/pci0000:00/"+addr+"/net/"+ifName, cn)
}

// SetOperState writes operstate ("up", "down", ...) of the fake netdev ifName.
func (t *Tree) SetOperState(ifName, state string) error {
	return writeFile(filepath.Join(t.Root, "class", "net", ifName), "operstate", state)
}

// SetNumVFs emulates `echo n > sriov_numvfs` on the PF at pfAddr: VFs with index >= n vanish
// and VFs below n that were removed come back as they were described to AddPF.
func (t *Tree) SetNumVFs(pfAddr string, n int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	pf, ok := t.pfs[pfAddr]
	if !ok {
		return fmt.Errorf("sysfstest: no PF %s", pfAddr)
	}
	if n < 0 || n > len(pf.VFs) {
		return fmt.Errorf("sysfstest: PF %s was described with %d VFs, cannot enable %d", pfAddr, len(pf.VFs), n)
	}
	return t.enableVFs(pf, n)
}

// RemoveNetdev makes the netdev ifName of the device at addr disappear (as when it is deleted
// or moved to another network namespace).
func (t *Tree) RemoveNetdev(addr, ifName string) error {
	_ = os.Remove(filepath.Join(t.Root, "class", "net", ifName))
	return os.RemoveAll(filepath.Join(t.dev(addr), "net", ifName))
}

// RestoreNetdev brings back a fake ether netdev ifName on the device at addr.
func (t *Tree) RestoreNetdev(addr, ifName string) error {
	return t.writeNetdev(addr, ifName, "ether", "", "02:00:00:00:ff:ff")
}

func writeFile(dir, name, value string) error {
	if err := os.WriteFile(filepath.Join(dir, name), []byte(value+"\n"), 0o644); err != nil {
		return fmt.Errorf("sysfstest: %w", err)
	}
	return nil
}
