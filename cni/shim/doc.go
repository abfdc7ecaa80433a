// Package shim is the `plexus` CNI plugin the container runtime runs: a thin client that
// forwards every CNI call (ADD, DEL, CHECK, GC, STATUS) to the CNI server of the node's
// plexus-daemon over its unix socket and prints the daemon's answer.
//
// It holds no logic of its own, so that the daemon is the one place attachments are made and
// remembered. It fails closed: when the daemon does not answer, ADD fails with an error naming
// the node and the socket (kubelet shows it in the pod's FailedCreatePodSandBox event) and
// STATUS reports the plugin not ready; DEL reports the failure too rather than swallowing it,
// so the runtime retries.
package shim
