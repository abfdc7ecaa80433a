// Package cniinstall copies the Plexus CNI binaries from an image onto the node's CNI bin
// directory, the job of the node DaemonSet's init container. Each binary is written beside its
// destination and renamed over it, so a container runtime that runs the plugin meanwhile runs
// either the old or the new binary, never a half-written one.
package cniinstall
