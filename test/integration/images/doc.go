// Package images tests the project's images (internal/images) with a real container runtime: a
// private containerd imports the OCI archive and runs the plexus-cni image the way the node
// DaemonSet's init container does, so the archive format, the image configuration (entrypoint,
// user, KO_DATA_PATH) and the static binaries are checked together.
package images
