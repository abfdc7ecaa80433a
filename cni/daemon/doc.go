// Package daemon assembles plexus-daemon, the node daemon: the IPAM agent (ipam/agent) and the
// node's CNI server (the informer caches of package kube, the 00-plexus.conflist writer of
// package conflist, the Attacher of package attach over libcni and the socket server of
// package server), one /healthz and /readyz for both, and the CNI metrics on an address that is
// loopback-only by default.
package daemon
