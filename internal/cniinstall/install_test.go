package cniinstall

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestInstall(t *testing.T) {
	from, to := t.TempDir(), filepath.Join(t.TempDir(), "opt", "cni", "bin")
	for name, body := range map[string]string{"plexus": "new-shim", "plexus-ipam": "new-ipam"} {
		if err := os.WriteFile(filepath.Join(from, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(from, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(to, "plexus"), []byte("old"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(to, "bridge"), []byte("other"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Install(context.Background(), from, to)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"plexus", "plexus-ipam"}) {
		t.Errorf("installed %v", got)
	}
	for name, want := range map[string]string{"plexus": "new-shim", "plexus-ipam": "new-ipam", "bridge": "other"} {
		b, err := os.ReadFile(filepath.Join(to, name))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", name, b, err, want)
		}
		if fi, _ := os.Stat(filepath.Join(to, name)); fi.Mode().Perm() != 0o755 {
			t.Errorf("%s mode %v", name, fi.Mode())
		}
	}
	ents, _ := os.ReadDir(to)
	if len(ents) != 3 {
		t.Errorf("%d files in the bin dir, want 3 (no temporary left)", len(ents))
	}
}

func TestInstallNothing(t *testing.T) {
	if _, err := Install(context.Background(), t.TempDir(), t.TempDir()); err == nil {
		t.Error("an empty source must fail: the image lacks its binaries")
	}
	if _, err := Install(context.Background(), "/nonexistent", t.TempDir()); err == nil {
		t.Error("a missing source must fail")
	}
}
