package cluster

import (
	"context"
	"errors"
	"fmt"
)

// Node is a worker node: a containerd and a kubelet in their own network and mount namespaces.
type Node struct {
	// Name is the Kubernetes node name, also the name of its network namespace and cgroup.
	Name string
	// Index counts nodes from 1.
	Index int
}

func (c *Cluster) nodeNames() []string {
	names := make([]string, c.opts.Nodes)
	for i := range names {
		names[i] = fmt.Sprintf("%s-node%d", c.opts.Name, i+1)
	}
	return names
}

func (c *Cluster) startNodes(ctx context.Context) error {
	return errors.New("worker nodes: not yet")
}
