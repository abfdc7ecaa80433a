package cluster

import (
	"context"
	"fmt"
)

// bridgeName is the host bridge that plays the physical network between the nodes.
func (c *Cluster) bridgeName() string { return c.opts.Name + "-br" }

// createHostNetwork creates the host bridge carrying the node network, with the control
// plane's address. Nodes get no default route, so nothing leaves the machine.
func (c *Cluster) createHostNetwork(ctx context.Context) error {
	br := c.bridgeName()
	if err := c.state.record(func(s *state) { s.Links = append(s.Links, br) }); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"ip", "link", "add", br, "type", "bridge"},
		{"ip", "addr", "add", fmt.Sprintf("%s/24", c.addr.BridgeIP()), "dev", br},
		{"ip", "link", "set", br, "up"},
	} {
		if err := run(ctx, args...); err != nil {
			return fmt.Errorf("creating the host bridge %s: %w", br, err)
		}
	}
	return nil
}
