// Package server is the CNI server of plexus-daemon: it listens on the root-only unix socket
// the `plexus` shim calls (package wire), bounds the work in progress (a fixed number of calls
// in flight, a bounded queue behind them, so a burst of pods after a node reboot cannot exhaust
// memory), waits for the daemon to be ready before an ADD, and hands each call to a Handler
// (the Attacher of package attach). Its Prometheus metrics count what happens.
package server
