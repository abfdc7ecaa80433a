// Package policy decides which VFs kubelet should prefer for a container (the answer to
// GetPreferredAllocation). The rule, in order:
//
//  1. Devices kubelet must include are taken first.
//  2. One NUMA node serves the whole request when one can: the NUMA node of the must-include
//     devices if they share one, else the NUMA node that can spread the request over the most
//     PFs, then the one with the fewest free VFs that still fit (best fit, which keeps big
//     NUMA nodes free for big requests), then the lowest node number. When no single NUMA node
//     has enough, NUMA nodes are used from the fullest down.
//  3. Within a NUMA node, VFs are taken round-robin over its PFs, starting with the PF that has
//     the most free VFs, so one PF's link failure costs the pod as few interfaces as possible.
//     Within a PF, the lowest PCI address goes first.
//
// The result is deterministic for a given input.
package policy
