package cluster

// Image is a container image built without a registry: a single layer holding Files, with the
// given entrypoint, written as an OCI image layout and imported into every node's containerd.
// Pods use it by Ref with imagePullPolicy Never or IfNotPresent.
type Image struct {
	// Ref is the image reference, e.g. "localhost/plexus/plexus-deviceplugin:dev".
	Ref string
	// Files make the root filesystem.
	Files []File
	// Entrypoint and Cmd are the image's defaults.
	Entrypoint, Cmd []string
}

// File is one entry of an image's root filesystem.
type File struct {
	// Path is the absolute path in the image.
	Path string
	// Source is a host file copied in; Data is used when Source is empty.
	Source string
	Data   []byte
	// Symlink, when set, makes Path a symbolic link to it.
	Symlink string
	// Mode defaults to 0755 for Source files and 0644 for Data.
	Mode int64
}
