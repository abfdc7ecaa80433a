package images

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

func TestWriteArchive(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "plexus-webhook")
	if err := os.WriteFile(bin, []byte("#!binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	webhook := ForComponent(Component{Name: "plexus-webhook", Binaries: []Binary{{Path: "/plexus-webhook", Command: "plexus-webhook"}}}, "localhost/plexus", "dev", dir, Meta{Version: "dev", Revision: "abc"})
	root := Image{Ref: "localhost/plexus/root:v1", Files: []File{{Path: "/etc/x/conf", Data: []byte("c")}, {Path: "/bin/sh", Symlink: "busybox"}}, Cmd: []string{"/bin/sh"}}
	archive := filepath.Join(dir, "images.tar")
	if err := WriteArchive(archive, []Image{webhook, root}); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(dir, "out")
	untar(t, archive, out)
	p, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 2 {
		t.Fatalf("%d manifests, want 2", len(m.Manifests))
	}
	for i, want := range []Image{webhook, root} {
		d := m.Manifests[i]
		if d.Annotations["io.containerd.image.name"] != want.Ref {
			t.Errorf("manifest %d is named %q, want %q", i, d.Annotations["io.containerd.image.name"], want.Ref)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Config.User != want.User || cfg.OS != "linux" || cfg.Architecture != "amd64" {
			t.Errorf("%s: user %q os %s arch %s", want.Ref, cfg.Config.User, cfg.OS, cfg.Architecture)
		}
		layers, _ := img.Layers()
		if len(layers) != 1 {
			t.Fatalf("%s: %d layers, want 1 on an empty base", want.Ref, len(layers))
		}
		files := layerFiles(t, layers[0])
		for _, f := range want.Files {
			got, ok := files[f.Path[1:]]
			switch {
			case !ok:
				t.Errorf("%s: %s missing", want.Ref, f.Path)
			case f.Symlink != "" && got.Linkname != f.Symlink:
				t.Errorf("%s: %s links to %q", want.Ref, f.Path, got.Linkname)
			}
		}
	}
	wimg, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	wcfg, err := wimg.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if wcfg.Config.User != NonRoot || wcfg.Config.Entrypoint[0] != "/plexus-webhook" ||
		wcfg.Config.Labels["org.opencontainers.image.title"] != "plexus-webhook" || wcfg.Config.Labels["org.opencontainers.image.revision"] != "abc" {
		t.Errorf("webhook config: %+v", wcfg.Config)
	}

	// The same inputs make the same image.
	again, _ := Build(webhook)
	first, _ := Build(webhook)
	d1, _ := again.Digest()
	d2, _ := first.Digest()
	if d1 != d2 || d1 != m.Manifests[0].Digest {
		t.Errorf("digests differ: %v %v %v", d1, d2, m.Manifests[0].Digest)
	}
}

func TestSuite(t *testing.T) {
	cmds := map[string]bool{}
	for _, c := range Commands(Suite()) {
		cmds[c] = true
	}
	for _, want := range []string{"plexus-webhook", "plexus-controller", "plexus-extender", "plexus-deviceplugin", "plexus-daemon", "plexus", "plexus-sriov", "plexus-ipam", "plexus-install-cni"} {
		if !cmds[want] {
			t.Errorf("no image holds %s", want)
		}
		if _, err := os.Stat(filepath.Join("..", "..", "cmd", want)); err != nil {
			t.Errorf("the suite names cmd/%s: %v", want, err)
		}
	}
	for _, c := range Suite() {
		img := ForComponent(c, "r", "t", "/bin", Meta{})
		if root := c.Name == "plexus-deviceplugin" || c.Name == "plexus-daemon" || c.Name == "plexus-cni"; (img.User == NonRoot) == root {
			t.Errorf("%s runs as %q", c.Name, img.User)
		}
	}
}

func layerFiles(t *testing.T, l interface{ Uncompressed() (io.ReadCloser, error) }) map[string]*tar.Header {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = h
	}
}

func untar(t *testing.T, archive, dst string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dst, h.Name)
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
