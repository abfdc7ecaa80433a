// Package cni benchmarks the plexus CNI shim and plexus-daemon's CNI server on the sandbox's
// real kubelets (2 nodes, make bench), each figure printed beside what it is compared with:
//
//   - BenchmarkPodBurst: 30 pods created at once with no secondary network, then with one, then
//     with three (macvlan + plexus-ipam); time to all Running, create-to-Running p50/p90 (from
//     when the burst was due, so queueing counts), the overhead of three networks over none, the
//     API requests per pod the daemon's identity made (from the API server's audit log) and
//     the daemon's peak RSS during the burst.
//   - BenchmarkManyNetworks: the Whereabouts #313 shape, 32 pods with 16 macvlan networks each
//     (each its own range) created at once, with plexus-ipam as IPAM and then with Whereabouts
//     v0.9.4 (hack/whereabouts.sh) on the same kind of NADs, both called by plexus: time to
//     all Running, the ratio and how many pod sandboxes kubelet had to retry.
package cni
