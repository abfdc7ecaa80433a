// Package kube is the CNI server's view of the API: informer caches of this node's pods (a
// field selector on spec.nodeName, stripped to their metadata) and of every
// NetworkAttachmentDefinition, so that at steady state an attachment costs no GET, plus the two
// writes the server makes: the pod's network-status (one patch of pods/status) and Warning
// Events on the pod.
package kube
