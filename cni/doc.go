// Package cni is the node side of Plexus: the network model shared by every component
// (subpackage network), the meta-plugin shim and daemon, and the SR-IOV delegate.
package cni
