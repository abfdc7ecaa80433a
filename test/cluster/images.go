package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"
)

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
func writeImages(dst string, imgs []Image) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	w := tar.NewWriter(f)
	blobs := map[string]bool{}
	addBlob := func(b []byte) (string, error) {
		sum := sha256.Sum256(b)
		h := hex.EncodeToString(sum[:])
		if !blobs[h] {
			blobs[h] = true
			if err := tarFile(w, "blobs/sha256/"+h, b, 0o644); err != nil {
				return "", err
			}
		}
		return "sha256:" + h, nil
	}
	if err := tarDir(w, "blobs"); err != nil {
		return err
	}
	if err := tarDir(w, "blobs/sha256"); err != nil {
		return err
	}
	var manifests []any
	for _, img := range imgs {
		layer, err := layerTar(img.Files)
		if err != nil {
			return fmt.Errorf("image %s: %w", img.Ref, err)
		}
		layerDigest, err := addBlob(layer)
		if err != nil {
			return err
		}
		config, _ := json.Marshal(map[string]any{
			"architecture": "amd64", "os": "linux",
			"config": map[string]any{
				"Entrypoint": img.Entrypoint, "Cmd": img.Cmd,
				"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			},
			"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
		})
		configDigest, err := addBlob(config)
		if err != nil {
			return err
		}
		manifest, _ := json.Marshal(map[string]any{
			"schemaVersion": 2,
			"mediaType":     "application/vnd.oci.image.manifest.v1+json",
			"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": len(config)},
			"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": len(layer)}},
		})
		manifestDigest, err := addBlob(manifest)
		if err != nil {
			return err
		}
		tag := img.Ref[strings.LastIndex(img.Ref, ":")+1:]
		manifests = append(manifests, map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifestDigest, "size": len(manifest),
			"annotations": map[string]string{"io.containerd.image.name": img.Ref, "org.opencontainers.image.ref.name": tag},
			"platform":    map[string]string{"architecture": "amd64", "os": "linux"},
		})
	}
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests,
	})
	if err := tarFile(w, "index.json", index, 0o644); err != nil {
		return err
	}
	if err := tarFile(w, "oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return f.Close()
}

// layerTar makes the uncompressed layer holding files (parent directories added).
func layerTar(files []File) ([]byte, error) {
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	var all []string
	for _, f := range files {
		for d := path.Dir(f.Path); d != "/" && d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for d := range dirs {
		all = append(all, d)
	}
	sort.Strings(all)
	for _, d := range all {
		if err := tarDir(w, strings.TrimPrefix(d, "/")); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		name := strings.TrimPrefix(f.Path, "/")
		switch {
		case f.Symlink != "":
			if err := w.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: f.Symlink, Mode: 0o777, ModTime: epoch}); err != nil {
				return nil, err
			}
		case f.Source != "":
			b, err := os.ReadFile(f.Source)
			if err != nil {
				return nil, err
			}
			mode := f.Mode
			if mode == 0 {
				mode = 0o755
			}
			if err := tarFile(w, name, b, mode); err != nil {
				return nil, err
			}
		default:
			mode := f.Mode
			if mode == 0 {
				mode = 0o644
			}
			if err := tarFile(w, name, f.Data, mode); err != nil {
				return nil, err
			}
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var epoch = time.Unix(0, 0)

func tarDir(w *tar.Writer, name string) error {
	return w.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: epoch})
}

func tarFile(w *tar.Writer, name string, b []byte, mode int64) error {
	if err := w.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(b)), Mode: mode, ModTime: epoch}); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

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
