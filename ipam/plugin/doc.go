// Package plugin is the plexus-ipam CNI IPAM plugin: ADD, DEL, CHECK, STATUS (and a no-op GC:
// leaks are reclaimed by the reconciler) for skel. Each command reads top to bottom: load the
// configuration, connect to the API server, allocate or release through the allocator, print the
// result. Host access (environment, files, API server, locks) is injected through Host.
package plugin
