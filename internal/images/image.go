package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image is a container image of one layer.
type Image struct {
	// Ref is the image reference it is named by, e.g. "localhost/plexus/plexus-webhook:dev".
	Ref string
	// Files make the root filesystem.
	Files []File
	// Entrypoint and Cmd are the image's defaults.
	Entrypoint, Cmd []string
	// User runs the entrypoint ("65532:65532"; "" is root).
	User string
	// Labels are the image configuration's labels.
	Labels map[string]string
	// Env is set besides PATH.
	Env []string
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

// epoch is every file's time, so the same inputs make the same layer digest.
var epoch = time.Unix(0, 0)

// NonRoot is the user of components that need no root: distroless's "nonroot".
const NonRoot = "65532:65532"

// Build makes the OCI image of img for linux/amd64.
func Build(img Image) (v1.Image, error) {
	layerTar, err := layerOf(img.Files)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Ref, err)
	}
	// Uncompressed: the archive is imported on this machine, and gzip would cost more time
	// than the bytes it saves.
	layer := static.NewLayer(layerTar, types.OCIUncompressedLayer)
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	out, err := mutate.Append(base, mutate.Addendum{Layer: layer, MediaType: types.OCIUncompressedLayer})
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Ref, err)
	}
	cfg, err := out.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = "amd64", "linux"
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Entrypoint, cfg.Config.Cmd = img.Entrypoint, img.Cmd
	cfg.Config.User = img.User
	cfg.Config.Labels = img.Labels
	cfg.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, img.Env...)
	return mutate.ConfigFile(out, cfg)
}

// WriteArchive writes imgs as one OCI image layout tar archive at dst, each named by its Ref
// (annotations io.containerd.image.name and org.opencontainers.image.ref.name).
func WriteArchive(dst string, imgs []Image) error {
	dir, err := os.MkdirTemp(filepath.Dir(dst), ".oci-layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	for _, img := range imgs {
		built, err := Build(img)
		if err != nil {
			return err
		}
		tag := img.Ref[strings.LastIndex(img.Ref, ":")+1:]
		if err := p.AppendImage(built,
			layout.WithAnnotations(map[string]string{"io.containerd.image.name": img.Ref, "org.opencontainers.image.ref.name": tag}),
			layout.WithPlatform(v1.Platform{Architecture: "amd64", OS: "linux"})); err != nil {
			return fmt.Errorf("image %s: writing the layout: %w", img.Ref, err)
		}
	}
	return tarDir(dir, dst)
}

// tarDir archives the tree at dir into dst (written beside it and renamed).
func tarDir(dir, dst string) error {
	tmp := dst + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	w := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name, hdr.ModTime = filepath.ToSlash(rel), epoch
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := w.WriteHeader(hdr); err != nil || !fi.Mode().IsRegular() {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(w, src)
		return err
	})
	if err == nil {
		err = w.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing the image archive %s: %w", dst, err)
	}
	return os.Rename(tmp, dst)
}

// layerOf is the uncompressed layer holding files, parent directories added.
func layerOf(files []File) ([]byte, error) {
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f.Path); d != "/" && d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	all := make([]string, 0, len(dirs))
	for d := range dirs {
		all = append(all, d)
	}
	sort.Strings(all)
	for _, d := range all {
		if err := w.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		if err := addFile(w, f); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func addFile(w *tar.Writer, f File) error {
	name := strings.TrimPrefix(f.Path, "/")
	if f.Symlink != "" {
		return w.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: f.Symlink, Mode: 0o777, ModTime: epoch})
	}
	data, mode := f.Data, f.Mode
	if f.Source != "" {
		b, err := os.ReadFile(f.Source)
		if err != nil {
			return fmt.Errorf("reading %s for %s: %w", f.Source, f.Path, err)
		}
		data = b
		if mode == 0 {
			mode = 0o755
		}
	}
	if mode == 0 {
		mode = 0o644
	}
	if err := w.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: mode, ModTime: epoch}); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}
