// Package cache keeps, per container, what the CNI server attached: each delegate's network,
// interface, the exact configuration it was called with and its result. One JSON file per
// container under the daemon's state directory, replaced atomically (write, fsync, rename).
//
// The entry is written before a delegate is called and again after it answers, so DEL can undo
// every attachment from the file alone: when the NetworkAttachmentDefinition was deleted, the
// pod object is gone, the API server is down or the daemon restarted in between.
package cache
