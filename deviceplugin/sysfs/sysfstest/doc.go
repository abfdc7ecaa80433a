// Package sysfstest writes a fake sysfs tree with the kernel's real layout, for tests, benchmarks
// and the local cluster's emulated SR-IOV NICs. Point the device plugin's --sysfs-root (and the
// SR-IOV CNI's) at Tree.Root.
//
//	tree, err := sysfstest.New(dir)
//	err = tree.AddPF(sysfstest.PF{
//		Address: "0000:03:00.0", Vendor: "8086", Device: "1572", VFDevice: "154c",
//		Driver: "i40e", VFDriver: "iavf", NUMANode: 0, IfName: "ens1f0",
//		VFs: []sysfstest.VF{
//			{Address: "0000:03:02.0", IfName: "ens1f0v0"},
//			{Address: "0000:03:02.1", Driver: "vfio-pci", VFIOGroup: 40},
//		},
//	})
//
// For each device it writes devices/pci0000:00/<pci>/ with vendor, device, class, numa_node,
// driver -> ../../../bus/pci/drivers/<name>, and for a PF sriov_numvfs, sriov_totalvfs, sriov_vf_device and
// virtfnN -> ../<vf>; for a VF physfn -> ../<pf> and, on vfio-pci, iommu_group ->
// ../../../kernel/iommu_groups/<n>. bus/pci/devices/<pci> links to the device directory. A
// netdev is net/<ifname>/ (type, operstate, address) with class/net/<ifname> linking to it.
//
// Real interfaces: set PF.NetdevTarget or VF.NetdevTarget to a directory such as
// /sys/class/net/veth1 and net/<ifname> becomes a symlink to it, so the plugin reads the real
// interface's operstate and type, and sees it vanish when it is deleted or moved to another
// network namespace. The local cluster uses this with veth or macvlan interfaces in a node's
// netns, in the mount namespace where that node's sysfs is mounted.
//
// Tree's mutators (SetOperState, SetNumVFs, RemoveNetdev, RestoreNetdev) emulate what the
// kernel does on `ip link set down`, `echo N > sriov_numvfs` and a netdev leaving.
package sysfstest
