// Package ipam benchmarks plexus-ipam against Whereabouts v0.9.4 in one run, on one real API
// server and the same range: 1,000 ADDs from 10 node names, 50 in flight, on one /22, each
// plugin's binary driven through the CNI exec protocol. It prints both wall times, p50/p99 and the
// ratio, and checks that Plexus handed out 1,000 distinct addresses and that DEL of all of them
// leaves nothing allocated. Whereabouts is built by hack/whereabouts.sh (never a Plexus
// dependency); set PLEXUS_BENCH_WHEREABOUTS_DEL=1 to also time its DELs and count its leaks.
package ipam
