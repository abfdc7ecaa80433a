// Package sysfs discovers SR-IOV physical functions (PFs) and their virtual functions (VFs) from a
// sysfs tree, the way the kernel lays it out under /sys: bus/pci/devices/<pci> entries with
// vendor, device, class, numa_node, sriov_numvfs, sriov_totalvfs, virtfnN and physfn links, the
// bound driver (driver -> .../drivers/<name>), the netdev under net/<ifname> with its link type
// and operstate, and the IOMMU group of VFs bound to vfio-pci.
//
// The root of the tree is a parameter (FS.Root), so tests and the local cluster point it at a
// tree written by the sysfstest builder; production uses /sys. Reads follow symlinks, so a fake
// tree whose net/<ifname> entries link to real interfaces reports their real state.
package sysfs
