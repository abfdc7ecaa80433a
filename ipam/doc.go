// Package ipam is Plexus's cluster-wide IP address management: pools and allocations stored as
// custom resources, range math, a lock-free allocator, the plexus-ipam CNI plugin and the
// reconciler that reclaims leaked addresses.
package ipam
