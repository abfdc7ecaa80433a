// Package kube is the CNI server's view of the API: informer caches of this node's pods (a
// field selector on spec.nodeName, stripped to their metadata, network annotations and
// extended resources) and of every NetworkAttachmentDefinition, so that at steady state an
// attachment costs no GET, plus the two writes the server makes: the pod's network-status (one
// patch of pods/status) and Warning Events on the pod (a repeated failure counts up its Event).
//
// It talks to the API server through two REST clients over a scheme of the two API groups it
// uses, not client-go's clientset, informer factory and event broadcaster: those link a
// client, an informer and the types of every Kubernetes API group into the node daemon, whose
// resident memory is mostly its program text.
package kube
