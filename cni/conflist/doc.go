// Package conflist owns the CNI configuration the container runtime reads: it finds the
// cluster's default network (the first other config in the CNI conf dir, or a configured file
// or NetworkAttachmentDefinition), and writes 00-plexus.conflist, which sorts first and makes
// the runtime call the `plexus` shim for every pod.
//
// The file is never removed, also not when the daemon stops: the runtime keeps calling the shim,
// which fails while the daemon is down, so a pod that selected networks never starts without
// them (fail closed). The Writer follows changes of the cluster network and rewrites the file
// when what it would write changes.
package conflist
