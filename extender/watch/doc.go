// Package watch feeds an extender.Cluster from informers: Nodes, Pods,
// NetworkAttachmentDefinitions and plexus-ipam IPBlocks, each reduced on arrival to the fields
// the extender reads (labels, allocatable and the VF capacity annotation of a Node; the network
// annotations, node, phase and extended-resource requests of a Pod), so its memory grows with
// the cluster by a few hundred bytes per object. After the first list, the extender makes no
// API request: every decision reads the Cluster.
package watch
