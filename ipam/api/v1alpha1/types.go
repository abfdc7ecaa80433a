package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IPPoolSpec is the range a pool hands out, as configured in the IPAM config.
type IPPoolSpec struct {
	// Network is the network_name the range belongs to ("" for none). Ranges of different
	// networks may hand out the same address; ranges of one network never do.
	// +optional
	Network string `json:"network,omitempty"`
	// Range is the subnet, e.g. "10.0.0.0/22" or "fd00::/64".
	Range string `json:"range"`
	// RangeStart is the first address handed out.
	RangeStart string `json:"rangeStart"`
	// RangeEnd is the last address handed out.
	RangeEnd string `json:"rangeEnd"`
	// Exclude lists CIDRs and addresses never handed out.
	// +optional
	Exclude []string `json:"exclude,omitempty"`
	// Gateway is never handed out.
	// +optional
	Gateway string `json:"gateway,omitempty"`
	// BlockPrefixLength is the prefix length of the blocks nodes claim from this pool.
	BlockPrefixLength int32 `json:"blockPrefixLength"`
	// Sticky keeps an address for a pod's namespace/name after DEL, for StatefulSets.
	// +optional
	Sticky bool `json:"sticky,omitempty"`
}

// IPPoolStatus counts the pool's addresses. Counts are decimal strings: an IPv6 /64 holds more
// addresses than an int64 can count.
type IPPoolStatus struct {
	// Size is the number of addresses the pool can hand out.
	// +optional
	Size string `json:"size,omitempty"`
	// Used is the number of addresses allocated (sticky reservations included).
	// +optional
	Used string `json:"used,omitempty"`
	// Free is Size - Used.
	// +optional
	Free string `json:"free,omitempty"`
	// Blocks is the number of blocks claimed inside the pool's range.
	// +optional
	Blocks int32 `json:"blocks,omitempty"`
	// LastUpdated is when the counts were computed.
	// +optional
	LastUpdated *metav1.Time `json:"lastUpdated,omitempty"`
}

// IPPool is one configured range of addresses.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=ippool
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Network",type=string,JSONPath=`.spec.network`
// +kubebuilder:printcolumn:name="Range",type=string,JSONPath=`.spec.range`
// +kubebuilder:printcolumn:name="Size",type=string,JSONPath=`.status.size`
// +kubebuilder:printcolumn:name="Used",type=string,JSONPath=`.status.used`
// +kubebuilder:printcolumn:name="Free",type=string,JSONPath=`.status.free`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type IPPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   IPPoolSpec   `json:"spec"`
	Status IPPoolStatus `json:"status,omitempty"`
}

// IPPoolList is a list of IPPools.
//
// +kubebuilder:object:root=true
type IPPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPPool `json:"items"`
}

// IPBlockSpec is an aligned block of addresses and the allocations inside it.
type IPBlockSpec struct {
	// Network is the network_name of the pools this block serves ("" for none).
	// +optional
	Network string `json:"network,omitempty"`
	// CIDR is the block, aligned to its size, e.g. "10.0.0.32/27".
	CIDR string `json:"cidr"`
	// Node is the node that claimed the block and allocates from it first. Other nodes borrow
	// from it only when no block is left to claim.
	Node string `json:"node"`
	// Allocations maps an address of the block to its holder. The map is atomic for server-side
	// field management: one writer (the node's plugin, under optimistic concurrency) replaces it
	// whole, and tracking each entry's owner costs the API server more than the write itself.
	// Keys are addresses in canonical form; values are key=value pairs separated by single
	// spaces, values escaped (no space inside one).
	// +optional
	// +mapType=atomic
	// +kubebuilder:validation:MaxProperties=1024
	// +kubebuilder:validation:XValidation:rule="self.all(k, isIP(k) && ip.isCanonical(k))",message="every key of allocations must be an IP address in canonical form, e.g. 10.0.0.5 or fd00::5"
	Allocations map[string]Allocation `json:"allocations,omitempty"`
}

// Allocation is the holder of one address. On the wire it is one string of space-separated
// key=value pairs, e.g. "pod=default/web-0 uid=5f0c… container=9a1b… if=net1 pool=… node=n1":
// a block holds tens of allocations, and the API server's cost of an update grows with the number
// of fields it decodes, validates and tracks, so one field per allocation keeps a block update
// cheap (measured: about 4x less API server CPU than eight fields per allocation).
//
// +kubebuilder:validation:Type=string
// +kubebuilder:validation:MaxLength=2048
// +kubebuilder:validation:Pattern=`^[A-Za-z]+=[!-~]*( [A-Za-z]+=[!-~]*)*$`
type Allocation struct {
	// Pool is the IPPool the address was handed out from.
	Pool string `json:"pool"`
	// ContainerID and IfName identify the CNI attachment; ADD is idempotent on them.
	// +optional
	ContainerID string `json:"containerID,omitempty"`
	// +optional
	IfName string `json:"ifName,omitempty"`
	// +optional
	PodNamespace string `json:"podNamespace,omitempty"`
	// +optional
	PodName string `json:"podName,omitempty"`
	// PodUID tells a pod from a later pod of the same name (StatefulSets).
	// +optional
	PodUID string `json:"podUID,omitempty"`
	// Node is the node the address was allocated on.
	// +optional
	Node string `json:"node,omitempty"`
	// ReservedUntil is set on a sticky address after DEL: the address waits for a pod of the same
	// namespace/name until then.
	// +optional
	ReservedUntil *metav1.Time `json:"reservedUntil,omitempty"`
	// HeldUntil marks a node hold: an address the node's IPAM agent set aside, with Node and Pool
	// and no holder, to hand out later from its node-local journal without an API write. Nobody
	// else takes it; the agent hands it out only well before HeldUntil and writes what it handed
	// out within seconds; the reconciler frees it once HeldUntil has passed.
	// +optional
	HeldUntil *metav1.Time `json:"heldUntil,omitempty"`

	// malformed is the wire text of an entry that did not parse, kept verbatim (see Malformed);
	// problem says why.
	malformed, problem string
}

// IPBlock is a block of addresses claimed by one node.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=ipblock
// +kubebuilder:printcolumn:name="Network",type=string,JSONPath=`.spec.network`
// +kubebuilder:printcolumn:name="CIDR",type=string,JSONPath=`.spec.cidr`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.node`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type IPBlock struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec IPBlockSpec `json:"spec"`
}

// IPBlockList is a list of IPBlocks.
//
// +kubebuilder:object:root=true
type IPBlockList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPBlock `json:"items"`
}
