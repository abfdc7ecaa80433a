package cluster

import (
	"context"
	"errors"
)

// VF is one emulated SR-IOV virtual function of a node.
type VF struct {
	// PCI is the VF's PCI address in the fake sysfs.
	PCI string
	// PF is the PCI address of its physical function.
	PF string
	// Netdev is the VF's interface in the node's network namespace (a macvlan on eth0).
	Netdev string
}

func (c *Cluster) createVFs(ctx context.Context, n *Node) error {
	return errors.New("not yet")
}
