// Package ipam tests plexus-ipam against a real kube-apiserver and etcd: the plugin binary is
// built once per package and driven through the CNI exec protocol (environment + stdin), many
// processes at a time, as a container runtime would; the reconciler runs in-process on a
// controller-runtime manager as it does inside plexus-controller.
package ipam
