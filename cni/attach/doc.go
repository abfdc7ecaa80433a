// Package attach is what the node's CNI server does for one CNI call: it resolves the pod's
// networks (the cluster default network as the runtime's interface, then each network of the
// k8s.v1.cni.cncf.io/networks annotation as net1, net2, ... or the name asked for), calls their
// plugins through libcni (independent networks in parallel, results in annotation order), and
// records every attachment in the result cache before it is made.
//
// Every step that can fail undoes what was done before it answers: a failed ADD deletes the
// attachments already made in reverse order (returning their addresses and devices), reports
// the failure on the pod as an Event in words naming the network, the plugin and the cause,
// and leaves no cache entry. DEL, CHECK and GC work from the cache alone, so they succeed when
// the NetworkAttachmentDefinition, the pod or the API server are gone.
//
// Host access (the API caches, kubelet's PodResources, the plugins, network namespaces) comes
// through the small interfaces in attacher.go, given to New.
package attach
