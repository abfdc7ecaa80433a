// Package network is the multi-network model every Plexus component shares: the networks a pod
// selects (the NPWG `k8s.v1.cni.cncf.io/networks` annotation, in each form Multus accepts), the
// Network a NetworkAttachmentDefinition describes (its CNI configuration, plugin types, device
// resource, IPAM section and node selector), and the `k8s.v1.cni.cncf.io/network-status` a pod
// reports.
//
// Parsing here is pure: bytes and strings in, values or errors that name the bad element and
// the fix out. The webhook, the scheduler extender and the node daemon all call it, so that a
// pod the webhook admits is a pod the node can attach.
package network
