// Package deviceplugin holds integration tests that run plexus-deviceplugin's manager against
// a test kubelet (real gRPC Registration and PodResources servers on unix sockets) over a fake
// sysfs tree, and its capacity publication against a real kube-apiserver (envtest).
package deviceplugin
