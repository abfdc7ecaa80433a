// Package pf sets what a physical function (PF) holds for each of its SR-IOV virtual functions:
// VLAN (ID, QoS, protocol), administrative MAC, spoof checking, trust, link state and transmit
// rates. These live in the PF's driver, not on the VF's netdev, so they are set through the PF
// and survive the VF moving between network namespaces.
//
// Backend is the one interface the SR-IOV CNI uses for them. Netlink is the production
// implementation (IFLA_VF_* through the PF netdev, as `ip link set <pf> vf N ...`). Recorder
// keeps the settings in files under the PF's device directory of a fake sysfs tree (the
// sandbox's emulated NICs, whose PFs have no driver to hold them), so tests read back what was
// set.
package pf
