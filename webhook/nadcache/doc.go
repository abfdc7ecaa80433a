// Package nadcache keeps, in memory, every NetworkAttachmentDefinition of the cluster parsed
// into a network.Network, and an index of the running pods that select each one. It is fed by
// informers (list once, then watch), so an admission never makes an API request: at 100
// replicas per second the webhook answers from memory.
//
// Lookup is the narrow read interface the admission concerns use; Cache implements it over a
// controller-runtime cache, and the testing subpackage over a map. Resolve turns a pod's
// networks annotations into the NADs they select, with refusals that name the element at fault.
package nadcache
