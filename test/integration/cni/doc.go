// Package cni tests the node CNI meta-plugin end to end, as root: the real `plexus` shim driven
// over the CNI exec protocol (libcni plays the container runtime), the real plexus-daemon
// binary with its CNI server, a real kube-apiserver (test/controlplane), real network
// namespaces, the CNI reference plugins as delegates and plexus-ipam as the IPAM of some
// networks.
package cni
