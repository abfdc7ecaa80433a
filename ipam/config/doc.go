// Package config parses the IPAM section of a CNI network configuration, in the format of
// Whereabouts (range, range_start, range_end, exclude, gateway, routes, dns, network_name,
// enable_overlapping_ranges, ipRanges, kubernetes.kubeconfig, log_level, configuration_path) plus
// the fields of plexus-ipam (node_name, sticky_ips, sticky_ttl, lock_dir, timeout), and the
// per-call inputs: the addresses a pod asks for (runtimeConfig "ips", args.cni.ips, CNI_ARGS IP=)
// and the pod identity in CNI_ARGS.
//
// Parsing is pure: bytes in, a validated Config out. Reading the flat configuration file named by
// configuration_path is left to the caller, which passes its bytes in.
package config
