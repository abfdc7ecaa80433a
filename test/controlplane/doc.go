// Package controlplane starts the real Kubernetes control plane that Plexus's integration tests
// run against: etcd and kube-apiserver through controller-runtime's envtest, with the
// NetworkAttachmentDefinition CRD and every Plexus CRD of the chart installed, and, on request,
// a real kube-scheduler with a given KubeSchedulerConfiguration.
//
// The binaries come from `make test-bins`, which builds them from the Go module proxy into
// $HOME/.cache/plexus/bin; KUBEBUILDER_ASSETS overrides that directory.
package controlplane
