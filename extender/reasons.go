package extender

// Reason classifies why Filter dropped a node; it is the label of the extender's
// nodes-filtered metric. The message users see is a full sentence; the Reason is its kind.
type Reason string

// The reasons Filter gives.
const (
	// ReasonSelectionInvalid: the pod's network annotations do not parse (every node).
	ReasonSelectionInvalid Reason = "selection-invalid"
	// ReasonTooManyNetworks: the pod selects more networks than the extender judges (every node).
	ReasonTooManyNetworks Reason = "too-many-networks"
	// ReasonNetworkMissing: a selected NetworkAttachmentDefinition does not exist (every node).
	ReasonNetworkMissing Reason = "network-missing"
	// ReasonNetworkInvalid: a selected NetworkAttachmentDefinition is invalid (every node).
	ReasonNetworkInvalid Reason = "network-invalid"
	// ReasonNetworkNotOnNode: the network's nodeSelector does not match the node.
	ReasonNetworkNotOnNode Reason = "network-not-on-node"
	// ReasonNoVFPool: the node advertises none of the VF resource.
	ReasonNoVFPool Reason = "vf-pool-absent"
	// ReasonVFCapacity: the node has fewer healthy VFs in the pool than the pod needs.
	ReasonVFCapacity Reason = "vf-capacity"
	// ReasonVFFree: the pool has too few free VFs now (other pods hold them).
	ReasonVFFree Reason = "vf-free"
	// ReasonNUMACapacity: no NUMA node has as many healthy VFs as the pod needs on one.
	ReasonNUMACapacity Reason = "vf-numa-capacity"
	// ReasonNUMAFree: no NUMA node has as many free VFs as the pod needs on one now.
	ReasonNUMAFree Reason = "vf-numa-free"
	// ReasonPoolFull: a plexus-ipam pool of the network has no free address.
	ReasonPoolFull Reason = "ip-pool-full"
	// ReasonNodeUnknown: the extender has not seen the node yet.
	ReasonNodeUnknown Reason = "node-unknown"
)

// Reasons lists every Reason, for metrics that show zeros.
func Reasons() []Reason {
	return []Reason{
		ReasonSelectionInvalid, ReasonTooManyNetworks, ReasonNetworkMissing, ReasonNetworkInvalid,
		ReasonNetworkNotOnNode, ReasonNoVFPool, ReasonVFCapacity, ReasonVFFree, ReasonNUMACapacity,
		ReasonNUMAFree, ReasonPoolFull, ReasonNodeUnknown,
	}
}

// verdict is why one node (or every node) does not fit.
type verdict struct {
	reason Reason
	msg    string
	// unresolvable is true when the node can never fit this pod, whatever pods are preempted.
	unresolvable bool
}
