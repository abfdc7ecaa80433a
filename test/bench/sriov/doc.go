// Package sriov benchmarks plexus-sriov: the latency of ADD and DEL (p50, p99 over 200 calls
// each) on emulated VFs (cni/sriov/sriovtest: macvlan netdevs listed in a fake sysfs, the
// recorder PF backend), next to the macvlan reference plugin's in the same run, both over the
// CNI exec protocol with the static IPAM plugin, calls of the two interleaved on one schedule.
package sriov
