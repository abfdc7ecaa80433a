// Package v1alpha1 holds the custom resources of plexus-ipam (group ipam.plexus.io):
//
//   - IPPool describes one configured range (network_name + range + bounds + exclusions). The
//     plugin creates it the first time it claims a block for the range; the reconciler keeps its
//     status (size, used, free) current, so `kubectl get ippools` shows how full each pool is.
//   - IPBlock is an aligned block of addresses (an IPv4 /27 or an IPv6 /122 by default) claimed by
//     one node, holding the allocations inside it. A node allocates in its own blocks under a
//     node-local lock and writes each block with optimistic concurrency (resourceVersion), so
//     allocations on different nodes never contend on a shared object.
//
// +kubebuilder:object:generate=true
// +groupName=ipam.plexus.io
package v1alpha1
