package sysfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// VFIODriver is the driver name that makes a VF a userspace (DPDK) device with a /dev/vfio group.
const VFIODriver = "vfio-pci"

// PF is an SR-IOV capable physical function.
type PF struct {
	// Address is the PCI address, e.g. 0000:03:00.0.
	Address string
	// Vendor and Device are the PCI IDs as 4 lowercase hex digits, e.g. 8086 and 1572.
	Vendor, Device string
	// Class is the PCI class code as read, e.g. 0x020000 (Ethernet controller).
	Class string
	// Driver is the bound driver's name, "" when none is bound.
	Driver string
	// NUMANode is the NUMA node, -1 when the platform does not say.
	NUMANode int
	// NetName is the PF's netdev name, "" when it has none.
	NetName string
	// LinkType is the netdev's link type (ether, infiniband, ...), "" without a netdev.
	LinkType string
	// NumVFs and TotalVFs are sriov_numvfs and sriov_totalvfs.
	NumVFs, TotalVFs int
	// VFs are the enabled VFs, ordered by index.
	VFs []VF
}

// VF is a virtual function of a PF.
type VF struct {
	// Address is the VF's PCI address.
	Address string
	// Index is N in the PF's virtfnN link.
	Index int
	// PFAddress and PFName identify the parent PF (PFName is its netdev name).
	PFAddress, PFName string
	// Vendor, Device and Driver as for PF.
	Vendor, Device, Driver string
	// Class is inherited from the PF (a VF has the class of its PF).
	Class string
	// NUMANode is the VF's NUMA node, -1 when unknown.
	NUMANode int
	// NetName is the VF's netdev name, "" when it has none (e.g. bound to vfio-pci).
	NetName string
	// LinkType is the VF netdev's link type, or the PF's when the VF has no netdev.
	LinkType string
	// VFIOGroup is the IOMMU group number when the VF is bound to vfio-pci ("" otherwise); its
	// device file is /dev/vfio/<VFIOGroup>.
	VFIOGroup string
	// RDMA is true when the VF has an RDMA device (an infiniband/ directory); RDMADevices are its
	// character devices under /dev/infiniband (uverbsN, ...).
	RDMA        bool
	RDMADevices []string
}

// FS reads a sysfs tree rooted at Root.
type FS struct {
	// Root is the sysfs mount point, /sys in production.
	Root string
}

// New returns an FS rooted at root.
func New(root string) *FS { return &FS{Root: root} }

func (s *FS) devicePath(addr string) string {
	return filepath.Join(s.Root, "bus", "pci", "devices", addr)
}

// Discover lists every PF that has sriov_totalvfs, with its enabled VFs, ordered by PCI address.
func (s *FS) Discover(ctx context.Context) ([]PF, error) {
	dir := filepath.Join(s.Root, "bus", "pci", "devices")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing PCI devices in %s (is --sysfs-root right?): %w", dir, err)
	}
	var pfAddrs []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "sriov_totalvfs")); err == nil {
			pfAddrs = append(pfAddrs, e.Name())
		}
	}
	sort.Strings(pfAddrs)
	pfs := make([]PF, len(pfAddrs))
	errs := make([]error, len(pfAddrs))
	work := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(runtime.GOMAXPROCS(0)*2, len(pfAddrs))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				pfs[i], errs[i] = s.readPF(pfAddrs[i])
			}
		}()
	}
	for i := range pfAddrs {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return pfs, nil
}

func (s *FS) readPF(addr string) (PF, error) {
	p := s.devicePath(addr)
	pf := PF{Address: addr}
	var err error
	if pf.Vendor, err = readID(p, "vendor"); err != nil {
		return pf, err
	}
	if pf.Device, err = readID(p, "device"); err != nil {
		return pf, err
	}
	pf.Class, _ = readString(p, "class")
	pf.Driver = linkBase(p, "driver")
	pf.NUMANode = readNUMA(p)
	pf.NetName = firstEntry(filepath.Join(p, "net"))
	if pf.NetName != "" {
		pf.LinkType = readLinkType(filepath.Join(p, "net", pf.NetName))
	}
	if pf.NumVFs, err = readInt(p, "sriov_numvfs"); err != nil {
		return pf, err
	}
	if pf.TotalVFs, err = readInt(p, "sriov_totalvfs"); err != nil {
		return pf, err
	}
	for i := 0; i < pf.NumVFs; i++ {
		vfAddr := linkBase(p, "virtfn"+strconv.Itoa(i))
		if vfAddr == "" {
			continue // the kernel is still creating it; the next discovery sees it
		}
		vf, err := s.readVF(&pf, vfAddr, i)
		if err != nil {
			return pf, err
		}
		pf.VFs = append(pf.VFs, vf)
	}
	return pf, nil
}

func (s *FS) readVF(pf *PF, addr string, index int) (VF, error) {
	p := s.devicePath(addr)
	vf := VF{Address: addr, Index: index, PFAddress: pf.Address, PFName: pf.NetName, Class: pf.Class}
	var err error
	if vf.Vendor, err = readID(p, "vendor"); err != nil {
		return vf, err
	}
	if vf.Device, err = readID(p, "device"); err != nil {
		return vf, err
	}
	vf.Driver = linkBase(p, "driver")
	vf.NUMANode = readNUMA(p)
	vf.NetName = firstEntry(filepath.Join(p, "net"))
	vf.LinkType = pf.LinkType
	if vf.NetName != "" {
		if lt := readLinkType(filepath.Join(p, "net", vf.NetName)); lt != "" {
			vf.LinkType = lt
		}
	}
	if vf.Driver == VFIODriver {
		vf.VFIOGroup = linkBase(p, "iommu_group")
	}
	if verbs, err := os.ReadDir(filepath.Join(p, "infiniband_verbs")); err == nil {
		vf.RDMA = true
		for _, v := range verbs {
			vf.RDMADevices = append(vf.RDMADevices, v.Name())
		}
	} else if _, err := os.Stat(filepath.Join(p, "infiniband")); err == nil {
		vf.RDMA = true
	}
	return vf, nil
}

// PFState is what the health checker needs to know about a PF right now.
type PFState struct {
	// Present is false when the PF's device directory is gone.
	Present bool
	// LinkUp is true when the PF netdev's operstate is up (or unknown, which virtual and some
	// physical drivers report while carrying traffic).
	LinkUp bool
	// NumVFs is the current sriov_numvfs.
	NumVFs int
}

// PFState reads the current state of the PF at addr whose netdev was netName.
func (s *FS) PFState(addr, netName string) PFState {
	p := s.devicePath(addr)
	n, err := readInt(p, "sriov_numvfs")
	if err != nil {
		return PFState{}
	}
	st := PFState{Present: true, NumVFs: n, LinkUp: true}
	if netName != "" {
		op, err := readString(filepath.Join(p, "net", netName), "operstate")
		st.LinkUp = err == nil && (op == "up" || op == "unknown")
	}
	return st
}

// NetdevPresent reports whether the VF at addr still has its netdev netName (following a
// symlink to a real interface, if the tree has one).
func (s *FS) NetdevPresent(addr, netName string) bool {
	_, err := os.Stat(filepath.Join(s.devicePath(addr), "net", netName))
	return err == nil
}

// DevicePresent reports whether the PCI device at addr exists.
func (s *FS) DevicePresent(addr string) bool {
	_, err := os.Lstat(s.devicePath(addr))
	return err == nil
}

func readString(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func readInt(dir, name string) (int, error) {
	s, err := readString(dir, name)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", filepath.Join(dir, name), err)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %q is not a number: %w", filepath.Join(dir, name), s, err)
	}
	return n, nil
}

// readID reads a PCI ID file ("0x8086\n") as "8086".
func readID(dir, name string) (string, error) {
	s, err := readString(dir, name)
	if err != nil {
		return "", fmt.Errorf("reading the PCI %s ID of %s: %w", name, filepath.Base(dir), err)
	}
	return strings.ToLower(strings.TrimPrefix(s, "0x")), nil
}

func readNUMA(dir string) int {
	s, err := readString(dir, "numa_node")
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// linkBase returns the last element of the symlink dir/name's target, "" if there is none.
func linkBase(dir, name string) string {
	t, err := os.Readlink(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return filepath.Base(t)
}

func firstEntry(dir string) string {
	f, err := os.Open(dir)
	if err != nil {
		return ""
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil && !errors.Is(err, fs.ErrNotExist) || len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return names[0]
}

// readLinkType maps the ARPHRD_* number in net/<if>/type to the name `ip link` prints.
func readLinkType(netdevDir string) string {
	s, err := readString(netdevDir, "type")
	if err != nil {
		return ""
	}
	switch s {
	case "1":
		return "ether"
	case "32":
		return "infiniband"
	case "772":
		return "loopback"
	case "65534":
		return "none"
	}
	return s
}
