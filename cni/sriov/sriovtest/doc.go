// Package sriovtest is a node with emulated SR-IOV VFs for the tests and the benchmark of
// plexus-sriov: a network namespace playing the node's host netns, holding an uplink (a veth)
// and one real macvlan per VF on it, a fake sysfs tree (deviceplugin/sysfs/sysfstest) whose VFs
// list those macvlans as their netdevs, and the node settings file selecting that tree and the
// recorder PF backend. Plugins run in the node's netns over the CNI exec protocol (Node.Call),
// and ReturnVF does what the kernel does with a real VF whose netns died.
package sriovtest
