package sysfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
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
	// Vendor and Device are the PCI IDs (a VF has its PF's vendor and the PF's VF device ID,
	// sriov_vf_device); Driver is the bound driver.
	Vendor, Device, Driver string
	// Class is the PF's (a VF has the class of its PF).
	Class string
	// NUMANode is the VF's NUMA node (its PF's), -1 when unknown.
	NUMANode int
	// NetName is the VF's netdev name, "" when it has none (e.g. bound to vfio-pci).
	NetName string
	// LinkType is the PF's link type (VFs of an Ethernet PF are Ethernet, of an InfiniBand PF
	// InfiniBand, with or without a netdev).
	LinkType string
	// VFIOGroup is the IOMMU group number when the VF is bound to vfio-pci ("" otherwise); its
	// device file is /dev/vfio/<VFIOGroup>.
	VFIOGroup string
	// RDMA is true when the VF has RDMA verbs (an infiniband_verbs/ directory); RDMADevices are
	// its character devices under /dev/infiniband (uverbsN).
	RDMA        bool
	RDMADevices []string
}

// FS reads a sysfs tree rooted at Root.
type FS struct {
	// Root is the sysfs mount point, /sys in production.
	Root string

	resolved sync.Map // PCI address -> device directory without symlinks, for health polls
}

// New returns an FS rooted at root.
func New(root string) *FS { return &FS{Root: root} }

func (s *FS) devicePath(addr string) string {
	return filepath.Join(s.Root, "bus", "pci", "devices", addr)
}

// PartialError lists the PFs and VFs discovery could not read (unreadable, or hot-removed while
// being read); Discover returns it with every device it could read.
type PartialError struct {
	// Failed maps the PCI address of each device skipped to why.
	Failed map[string]error
}

func (e *PartialError) Error() string {
	addrs := make([]string, 0, len(e.Failed))
	for a := range e.Failed {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	msgs := make([]string, len(addrs))
	for i, a := range addrs {
		msgs[i] = fmt.Sprintf("%s: %v", a, e.Failed[a])
	}
	return fmt.Sprintf("skipped %d device(s) that could not be read: %s", len(addrs), strings.Join(msgs, "; "))
}

// Discover lists every PF that has sriov_totalvfs, with its enabled VFs, ordered by PCI address.
// A PF or VF that cannot be read (unreadable, hot-removed during the walk) is left out and named
// in a *PartialError, returned with every other device: one bad device never hides the rest.
// Any other error (the devices directory itself cannot be listed, ctx ended) comes with no PFs.
func (s *FS) Discover(ctx context.Context) ([]PF, error) {
	dir := filepath.Join(s.Root, "bus", "pci", "devices")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing PCI devices in %s (is --sysfs-root right?): %w", dir, err)
	}
	dirfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	defer unix.Close(dirfd)
	var pfAddrs []string
	for _, e := range entries {
		if unix.Faccessat(dirfd, e.Name()+"/sriov_totalvfs", unix.F_OK, 0) == nil {
			pfAddrs = append(pfAddrs, e.Name())
		}
	}
	sort.Strings(pfAddrs)
	pfs := make([]PF, len(pfAddrs))
	errs := make([]error, len(pfAddrs))
	skipped := make([]map[string]error, len(pfAddrs))
	work := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(runtime.GOMAXPROCS(0)*2, len(pfAddrs))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				pfs[i], skipped[i], errs[i] = s.readPF(pfAddrs[i])
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
	partial := &PartialError{Failed: map[string]error{}}
	good := pfs[:0]
	for i, pf := range pfs {
		if errs[i] != nil {
			partial.Failed[pfAddrs[i]] = errs[i]
			continue
		}
		for addr, err := range skipped[i] {
			partial.Failed[addr] = err
		}
		good = append(good, pf)
	}
	if len(partial.Failed) > 0 {
		return good, partial
	}
	return good, nil
}

// readPF reads the PF at addr and its VFs; skipped are the VFs that could not be read.
func (s *FS) readPF(addr string) (pf PF, skipped map[string]error, err error) {
	pf = PF{Address: addr}
	d, err := openDevice(s.devicePath(addr))
	if err != nil {
		return pf, nil, err
	}
	defer d.close()
	if err := readPFAttrs(d, &pf); err != nil {
		return pf, nil, err
	}
	// Every VF of a PF has the PF's vendor and the VF device ID of the PF's SR-IOV capability
	// (sriov_vf_device); read it once, from the first VF on kernels without that file.
	vfDevice, _ := d.id("sriov_vf_device")
	// VFs can have RDMA devices only on an RDMA-capable NIC, whose PF has one.
	rdmaNIC := d.exists("infiniband")
	pf.VFs = make([]VF, 0, pf.NumVFs)
	for i := 0; i < pf.NumVFs; i++ {
		vfAddr := d.linkBase("virtfn" + strconv.Itoa(i))
		if vfAddr == "" {
			continue // the kernel is still creating it; the next discovery sees it
		}
		vf, err := s.readVF(&pf, vfAddr, i, vfDevice, rdmaNIC)
		if err != nil { // this VF only: its PF and siblings stay usable
			if skipped == nil {
				skipped = map[string]error{}
			}
			skipped[vfAddr] = err
			continue
		}
		vfDevice = vf.Device
		pf.VFs = append(pf.VFs, vf)
	}
	return pf, skipped, nil
}

// readPFAttrs reads the PF's own attributes (all but its VFs).
func readPFAttrs(d *devDir, pf *PF) error {
	var err error
	if pf.Vendor, err = d.id("vendor"); err != nil {
		return err
	}
	if pf.Device, err = d.id("device"); err != nil {
		return err
	}
	pf.Class, _ = d.read("class")
	pf.Driver = d.linkBase("driver")
	pf.NUMANode = d.numa()
	pf.NetName = d.firstEntry("net")
	if pf.NetName != "" {
		pf.LinkType = d.linkType("net/" + pf.NetName + "/type")
	}
	if pf.NumVFs, err = d.int("sriov_numvfs"); err != nil {
		return err
	}
	if pf.TotalVFs, err = d.int("sriov_totalvfs"); err != nil {
		return err
	}
	return nil
}

// ErrNoDevice is wrapped by LookupVF's error when no PCI device has the address.
var ErrNoDevice = errors.New("no such PCI device")

// ErrNotVF is wrapped by LookupVF's error when the device is not an SR-IOV VF.
var ErrNotVF = errors.New("not an SR-IOV virtual function")

// LookupVF reads the one VF at PCI address addr, as Discover would report it (index, PF
// address and netdev name, driver, netdev, IOMMU group), without reading the PF's other VFs:
// the SR-IOV CNI calls it once per attachment. Its errors wrap ErrNoDevice or ErrNotVF when the
// address names no device or a device that is no VF.
func (s *FS) LookupVF(addr string) (VF, error) {
	if _, err := os.Lstat(s.devicePath(addr)); err != nil {
		return VF{}, fmt.Errorf("PCI device %s: %w under %s", addr, ErrNoDevice, filepath.Dir(s.devicePath(addr)))
	}
	vfd, err := openDevice(s.devicePath(addr))
	if err != nil {
		return VF{}, err
	}
	pfAddr := vfd.linkBase("physfn")
	vfd.close()
	if pfAddr == "" {
		return VF{}, fmt.Errorf("PCI device %s: %w (it has no physfn link)", addr, ErrNotVF)
	}
	pf := PF{Address: pfAddr}
	d, err := openDevice(s.devicePath(pfAddr))
	if err != nil {
		return VF{}, err
	}
	defer d.close()
	if err := readPFAttrs(d, &pf); err != nil {
		return VF{}, err
	}
	for i := 0; i < pf.NumVFs; i++ {
		if d.linkBase("virtfn"+strconv.Itoa(i)) == addr {
			vfDevice, _ := d.id("sriov_vf_device")
			return s.readVF(&pf, addr, i, vfDevice, d.exists("infiniband"))
		}
	}
	return VF{}, fmt.Errorf("PCI device %s: its PF %s lists it in none of virtfn0..%d: %w", addr, pfAddr, pf.NumVFs-1, ErrNotVF)
}

// readVF reads what differs between the VFs of a PF: driver, netdev, IOMMU group and (on an
// RDMA-capable NIC) RDMA devices. Vendor, class, NUMA node and link type are the PF's (the
// kernel places a VF on its PF's bus and NUMA node); device is vfDevice when known.
func (s *FS) readVF(pf *PF, addr string, index int, vfDevice string, rdmaNIC bool) (VF, error) {
	vf := VF{Address: addr, Index: index, PFAddress: pf.Address, PFName: pf.NetName, Vendor: pf.Vendor,
		Device: vfDevice, Class: pf.Class, NUMANode: pf.NUMANode, LinkType: pf.LinkType}
	d, err := openDevice(s.devicePath(addr))
	if err != nil {
		return vf, err
	}
	defer d.close()
	if vf.Device == "" {
		if vf.Device, err = d.id("device"); err != nil {
			return vf, err
		}
	}
	vf.Driver = d.linkBase("driver")
	vf.NetName = d.firstEntry("net")
	if vf.Driver == VFIODriver {
		vf.VFIOGroup = d.linkBase("iommu_group")
	}
	if rdmaNIC {
		if verbs, ok := d.entries("infiniband_verbs"); ok {
			vf.RDMA, vf.RDMADevices = true, verbs
		}
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
// symlink to a real interface, if the tree has one). The health poll calls it for thousands of
// VFs several times a second, so the device directory's symlink is resolved once and the check
// is a single access(2).
func (s *FS) NetdevPresent(addr, netName string) bool {
	return unix.Access(s.resolvedDevice(addr)+"/net/"+netName, unix.F_OK) == nil
}

func (s *FS) resolvedDevice(addr string) string {
	if dir, ok := s.resolved.Load(addr); ok {
		return dir.(string)
	}
	dir, err := filepath.EvalSymlinks(s.devicePath(addr))
	if err != nil {
		return s.devicePath(addr) // gone for now: do not cache
	}
	s.resolved.Store(addr, dir)
	return dir
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
