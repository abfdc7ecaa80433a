// Package agent is the node-local IPAM agent and its client.
//
// A plugin process lives for one CNI call: it starts, loads a kubeconfig, opens a TLS connection,
// writes one IPBlock and exits. The agent is the long-lived half (hosted by plexus-daemon, one per
// node): it keeps the API connection and the node's blocks warm and holds one allocator per node
// name, whose group commit turns the concurrent ADDs of a node into about one block write. The
// plugin forwards its allocations to the agent over a unix socket in its lock_dir when one
// answers, and allocates directly otherwise; both write through the same conditional updates, so
// they can run side by side (an agent restarting, a node being upgraded) without a duplicate.
//
// The protocol is newline-delimited JSON over the socket: one Request, one Response, as many
// times as the plugin needs on one connection.
package agent
