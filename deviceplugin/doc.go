// Package deviceplugin discovers SR-IOV virtual functions from sysfs, groups them into resource
// pools by selectors (in the sriov-network-device-plugin config format), and serves each pool to
// kubelet over the device plugin API v1beta1 with NUMA- and PF-aware allocation.
package deviceplugin
