// Package testing drives a CNI IPAM plugin binary through the exec protocol (CNI_* environment,
// configuration on stdin, result or error JSON on stdout), one call or many concurrent calls, for
// the integration tests and the benchmark. It works with any IPAM plugin binary, which is how the
// benchmark times plexus-ipam and Whereabouts side by side.
package testing
