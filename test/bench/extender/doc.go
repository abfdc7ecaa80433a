// Package extender benchmarks plexus-extender against a real kube-apiserver and the real
// kube-scheduler: BenchmarkScheduling (make bench) schedules 1,000 one-VF pods onto 500 Nodes
// with the extender and without it, and prints pods/s for both, their ratio and the filter
// latency; BenchmarkScale (make bench-scale, PLEXUS_BENCH_SCALE=1) grows the cluster to 5,000
// nodes, 10 networks and 20,000 pods and prints the filter p99 and the extender's memory per
// node at 1,000, 2,500 and 5,000 nodes.
package extender
