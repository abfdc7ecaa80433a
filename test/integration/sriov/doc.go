// Package sriov tests plexus-sriov as a container runtime drives it: the binary, built by the
// test, runs over the CNI exec protocol in a network namespace playing the node, on emulated VFs
// whose netdevs are real macvlan links (cni/sriov/sriovtest), with plexus-ipam as its IPAM
// delegate against a real kube-apiserver and etcd (test/controlplane), into real pod network
// namespaces. Needs root.
package sriov
