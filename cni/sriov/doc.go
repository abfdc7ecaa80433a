// Package sriov is plexus-sriov, the CNI plugin that attaches an SR-IOV virtual function (VF) to
// a pod, as sriov-cni does: ADD moves the VF's netdev into the pod's network namespace under
// CNI_IFNAME with the configured MAC and MTU, applies the PF-side settings (VLAN, spoof
// checking, trust, link state, rates, administrative MAC) through a pf.Backend, and configures
// the addresses of the IPAM delegate; a VF on a userspace driver (vfio-pci) gets its PF settings
// and is reported by PCI address only. DEL puts everything back as it was before ADD.
//
// Each VF has a lock and an ownership record (Store) written before ADD changes anything: DEL
// restores from it even when the pod's network namespace is gone, a failed ADD rolls back from
// it, a late DEL of a former owner never touches a VF that was handed to a new one, and an ADD
// that finds the record of a dead owner restores the VF first. CHECK compares the live state
// with the record and the configuration.
//
// The configuration is sriov-cni's (Parse); node-level settings (sysfs root, PF backend, state
// directory) come only from the node's file (NodeSettings), never from a network configuration.
package sriov
