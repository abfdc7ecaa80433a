// Package extender is the scheduling core of plexus-extender: a Cluster holds, in memory, what
// the scheduler does not know about a pod's networks (which nodes each
// NetworkAttachmentDefinition reaches, the VFs each node's device pools have and how many pods
// hold, the NUMA and PF layout plexus-deviceplugin publishes, and the free addresses of every
// plexus-ipam pool), fed by informer events; Filter keeps the nodes where every network the pod
// selects is present, its VFs fit (on one NUMA node when asked) and its pools have an address
// left, and says why each other node was dropped in a sentence a person can act on; Prioritize
// scores the rest by NUMA fit, PF spread and the --vf-placement policy.
//
// The package knows nothing of HTTP or of the API server: it takes and returns the
// k8s.io/kube-scheduler/extender/v1 types, and its inputs arrive through Set/Delete methods, so
// every decision is a pure function of the events seen so far. A pod Filter admits counts
// against the nodes it was admitted on (its VFs) and against its pools (its addresses) until the
// pod is seen bound or the assumption expires, so a burst of pods cannot oversubscribe a node
// or a pool between the scheduler's decision and the informer's event.
package extender
