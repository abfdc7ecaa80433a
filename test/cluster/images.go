package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/plexus-project/plexus/internal/images"
)

// Image is a container image built without a registry (package internal/images): a single
// layer holding Files, with the given entrypoint, written as an OCI image layout archive and
// imported into every node's containerd. Pods use it by Ref with imagePullPolicy Never or
// IfNotPresent.
type Image = images.Image

// File is one entry of an image's root filesystem.
type File = images.File

// Images every cluster has.
const (
	// PauseImage is the pod sandbox image: busybox's sh waiting for SIGTERM.
	PauseImage = "localhost/plexus/pause:v1"
	// BusyboxImage is a small test image: busybox-static with every applet linked in /bin.
	BusyboxImage = "localhost/plexus/busybox:v1"
)

const busyboxPath = "/bin/busybox"

// baseImages are pause and busybox, made from the host's busybox-static.
func baseImages() ([]Image, error) {
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("listing the applets of %s (install busybox-static: hack/deps.sh): %w", busyboxPath, err)
	}
	files := []File{
		{Path: "/bin/busybox", Source: busyboxPath},
		{Path: "/etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")},
		{Path: "/etc/group", Data: []byte("root:x:0:\nnogroup:x:65534:\n")},
		{Path: "/tmp/.keep", Data: nil},
	}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			files = append(files, File{Path: "/bin/" + a, Symlink: "busybox"})
		}
	}
	pause := Image{
		Ref:        PauseImage,
		Files:      files,
		Entrypoint: []string{"/bin/sh", "-c", "trap 'exit 0' TERM INT; sleep 2147483647 & wait"},
	}
	bb := Image{Ref: BusyboxImage, Files: files, Cmd: []string{"/bin/sh"}}
	return []Image{pause, bb}, nil
}

// writeImages writes imgs as one OCI image layout archive at dst, each image named by its
// Ref, for `ctr images import`.
func writeImages(dst string, imgs []Image) error { return images.WriteArchive(dst, imgs) }

// importImages imports the OCI archive into the containerd listening on sock, in the k8s.io
// namespace the CRI plugin uses.
func importImages(ctx context.Context, sock, archive string) error {
	out, err := exec.CommandContext(ctx, "ctr", "--address", sock, "--namespace", "k8s.io",
		"images", "import", archive).CombinedOutput()
	if err != nil {
		return fmt.Errorf("importing %s into the containerd at %s: %w: %s", archive, sock, err, bytes.TrimSpace(out))
	}
	return nil
}
