// Package capacity publishes the node's SR-IOV capacity for the scheduler extender, which reads
// it from the Node object without talking to the node: the annotation
// deviceplugin.plexus.io/sriov-capacity holds a JSON NodeCapacity with, per pool, the count of
// healthy VFs and of healthy VFs not allocated ("free"), broken down per NUMA node and per PF.
//
// An annotation rather than a CRD: the extender already watches Nodes (nodeCacheCapable), so it
// needs no second informer and no join, and the object's lifecycle is the Node's. The plugin
// needs RBAC to patch nodes. "free" lags reality by the plugin's release poll (a few seconds)
// and counts allocations at container start, so the extender should treat it as a hint for
// NUMA/PF fit and keep using allocatable minus pod requests for the count.
package capacity
