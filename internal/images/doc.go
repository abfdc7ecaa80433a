// Package images builds Plexus's container images without a registry or a daemon, with
// go-containerregistry: each is one layer holding static binaries on an empty base, runs as a
// non-root user unless the component needs root on the node, and carries the OCI annotation
// labels (title, description, source, version, revision). WriteArchive writes images as one OCI
// image layout archive that `ctr images import` (and `docker load` of an OCI archive) reads,
// each image named by its reference.
//
// Suite says which images the project ships and what goes into each; cmd/plexus-images (make
// images) and the sandbox build them from the same list.
package images
