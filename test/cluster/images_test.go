package cluster

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteImages checks the OCI layout containerd imports: an index naming every image, each
// manifest's config and layer present with the digests and sizes the manifest states, and the
// layer holding the files with their parent directories.
func TestWriteImages(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tool")
	if err := os.WriteFile(bin, []byte("#!binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	imgs := []Image{
		{Ref: "localhost/plexus/tool:dev", Files: []File{{Path: "/tool", Source: bin}}, Entrypoint: []string{"/tool"}},
		{Ref: "localhost/plexus/other:v1", Files: []File{
			{Path: "/etc/conf/a.json", Data: []byte("{}")},
			{Path: "/bin/sh", Symlink: "busybox"},
		}, Cmd: []string{"/bin/sh"}},
	}
	archive := filepath.Join(dir, "images.tar")
	if err := writeImages(archive, imgs); err != nil {
		t.Fatal(err)
	}
	files := readTar(t, mustRead(t, archive))
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Size        int               `json:"size"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	mustJSON(t, files["index.json"], &index)
	if len(index.Manifests) != 2 {
		t.Fatalf("index has %d manifests, want 2", len(index.Manifests))
	}
	for i, m := range index.Manifests {
		if got := m.Annotations["io.containerd.image.name"]; got != imgs[i].Ref {
			t.Errorf("manifest %d is named %q, want %q", i, got, imgs[i].Ref)
		}
		manifest := blob(t, files, m.Digest, m.Size)
		var man struct {
			Config struct {
				Digest string `json:"digest"`
				Size   int    `json:"size"`
			} `json:"config"`
			Layers []struct {
				Digest string `json:"digest"`
				Size   int    `json:"size"`
			} `json:"layers"`
		}
		mustJSON(t, manifest, &man)
		var cfg struct {
			RootFS struct {
				DiffIDs []string `json:"diff_ids"`
			} `json:"rootfs"`
		}
		mustJSON(t, blob(t, files, man.Config.Digest, man.Config.Size), &cfg)
		if len(man.Layers) != 1 || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != man.Layers[0].Digest {
			t.Fatalf("image %s: layers %v, diff_ids %v", imgs[i].Ref, man.Layers, cfg.RootFS.DiffIDs)
		}
		layer := readTar(t, blob(t, files, man.Layers[0].Digest, man.Layers[0].Size))
		for _, f := range imgs[i].Files {
			if _, ok := layer[f.Path[1:]]; !ok {
				t.Errorf("image %s: layer lacks %s (has %v)", imgs[i].Ref, f.Path, keys(layer))
			}
		}
	}
	layer := readTar(t, layerOf(t, files, index.Manifests[1].Digest))
	for _, d := range []string{"etc/", "etc/conf/", "bin/"} {
		if _, ok := layer[d]; !ok {
			t.Errorf("layer lacks parent directory %s", d)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
}

// readTar maps entry names to contents (directories and links to nil).
func readTar(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	r := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(r)
		out[h.Name] = data
	}
}

// blob returns the blob of digest, checking its hash and, when size >= 0, its size.
func blob(t *testing.T, files map[string][]byte, digest string, size int) []byte {
	t.Helper()
	b, ok := files["blobs/sha256/"+digest[len("sha256:"):]]
	if !ok {
		t.Fatalf("blob %s missing", digest)
	}
	sum := sha256.Sum256(b)
	if "sha256:"+hex.EncodeToString(sum[:]) != digest || (size >= 0 && len(b) != size) {
		t.Fatalf("blob %s: hash or size (%d) wrong", digest, len(b))
	}
	return b
}

// layerOf returns the single layer of the manifest with the given digest.
func layerOf(t *testing.T, files map[string][]byte, manifestDigest string) []byte {
	t.Helper()
	var man struct {
		Layers []struct {
			Digest string `json:"digest"`
			Size   int    `json:"size"`
		} `json:"layers"`
	}
	mustJSON(t, blob(t, files, manifestDigest, -1), &man)
	return blob(t, files, man.Layers[0].Digest, man.Layers[0].Size)
}

func keys(m map[string][]byte) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}
