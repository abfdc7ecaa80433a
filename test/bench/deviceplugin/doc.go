// Package deviceplugin benchmarks plexus-deviceplugin: sysfs discovery of 64 PFs x 64 VFs
// (4,096 VFs) from a fake sysfs tree on disk and on tmpfs (goal: under 300 ms), and the
// latency of Allocate through gRPC on a unix socket, device-info files included (goal: p99
// under 1 ms).
package deviceplugin
