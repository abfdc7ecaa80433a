// Package server serves one resource pool to kubelet over the device plugin API v1beta1: a gRPC
// server on its own socket in the device plugin directory, registered with kubelet at
// kubelet.sock. ListAndWatch streams the pool's devices (IDs are PCI addresses, with NUMA
// topology hints unless excludeTopology) and every health change; GetPreferredAllocation asks
// package policy; Allocate returns the sriov-network-device-plugin compatible environment
// (PCIDEVICE_<RESOURCE> and PCIDEVICE_<RESOURCE>_INFO), the vfio, vhost-net and RDMA device
// specs, and writes the device-info files.
package server
