package extender

import "time"

// Node label and pod annotation that ask for single-NUMA VF placement.
const (
	// TopologyPolicyLabel on a Node states the kubelet's Topology Manager policy
	// (--topology-manager-policy); the kubelet can set it at registration with
	// --node-labels=plexus.io/topology-manager-policy=single-numa-node. With
	// "single-numa-node", every pod's VFs of one resource must come from one NUMA node there.
	TopologyPolicyLabel = "plexus.io/topology-manager-policy"
	// PolicySingleNUMANode is the Topology Manager policy that needs one NUMA node.
	PolicySingleNUMANode = "single-numa-node"
	// SingleNUMAAnnotation on a pod ("true") asks that its VFs of each resource come from one
	// NUMA node on whatever node it lands.
	SingleNUMAAnnotation = "plexus.io/single-numa"
)

// Placement is how Prioritize ranks nodes that fit equally well on NUMA and PF.
type Placement string

const (
	// Spread prefers the nodes with the most VFs left after the pod (default).
	Spread Placement = "spread"
	// Pack prefers the nodes with the fewest VFs left after the pod, keeping others whole.
	Pack Placement = "pack"
)

// Options tune a Cluster.
type Options struct {
	// Placement is the --vf-placement policy; default Spread.
	Placement Placement
	// AssumeTTL is how long a pod Filter admitted counts against its nodes and pools while it is
	// not seen bound; default 30s.
	AssumeTTL time.Duration
	// MaxNetworks is the most networks a pod may select; default 32. It bounds one call's work.
	MaxNetworks int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.Placement == "" {
		o.Placement = Spread
	}
	if o.AssumeTTL == 0 {
		o.AssumeTTL = 30 * time.Second
	}
	if o.MaxNetworks == 0 {
		o.MaxNetworks = 32
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}
