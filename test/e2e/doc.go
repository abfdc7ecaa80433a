// Package e2e tests Plexus end to end on a local cluster of real kubelets (package
// test/cluster): real etcd, kube-apiserver, kube-scheduler and kube-controller-manager, and
// worker nodes that each run a real containerd and kubelet in their own network and mount
// namespaces.
//
// TestSmoke runs in `make test` (`go test ./...`): cluster up, two nodes Ready, a pod on each,
// a ping between them, down, nothing left on the host; it prints how long each step took. The
// rest of the suite runs with PLEXUS_E2E=1 (`make e2e`) on one cluster shared by its tests.
// All tests need root and skip without it.
package e2e
