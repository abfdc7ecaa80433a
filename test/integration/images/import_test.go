package images

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plexus-project/plexus/internal/images"
	"github.com/plexus-project/plexus/test/repo"
)

// TestImportAndRunCNIInstaller imports the plexus-cni image into a real containerd and runs it
// with a host directory mounted where the chart mounts the node's CNI bin directory: the CNI
// binaries must land there, executable, byte for byte the ones built.
func TestImportAndRunCNIInstaller(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs a private containerd and a container")
	}
	for _, b := range []string{"containerd", "ctr", "runc"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s (hack/deps.sh installs it): %v", b, err)
		}
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	var cni images.Component
	for _, c := range images.Suite() {
		if c.Name == "plexus-cni" {
			cni = c
		}
	}
	bin := t.TempDir()
	if err := images.BuildBinaries(ctx, root, bin, images.Commands([]images.Component{cni})); err != nil {
		t.Fatal(err)
	}
	img := images.ForComponent(cni, "localhost/plexus-test", "t1", bin, images.Meta{Version: "t1"})
	archive := filepath.Join(t.TempDir(), "images.tar")
	if err := images.WriteArchive(archive, []images.Image{img}); err != nil {
		t.Fatal(err)
	}

	sock := startContainerd(ctx, t)
	ctr := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", sock, "--namespace", "plexus-test"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ctr("images", "import", archive)
	if list := ctr("images", "ls", "-q"); !strings.Contains(list, img.Ref) {
		t.Fatalf("containerd does not list %s after the import:\n%s", img.Ref, list)
	}

	host := t.TempDir()
	out := ctr("run", "--rm", "--fifo-dir", t.TempDir(), "--mount", "type=bind,src="+host+",dst=/host/cni/bin,options=rbind:rw",
		img.Ref, "plexus-cni-install-test", "/ko-app/plexus-install-cni", "--to=/host/cni/bin")
	for _, c := range []string{"plexus", "plexus-sriov", "plexus-ipam"} {
		got, err := os.ReadFile(filepath.Join(host, c))
		if err != nil {
			t.Fatalf("the installer did not install %s: %v\n%s", c, err, out)
		}
		want, _ := os.ReadFile(filepath.Join(bin, c))
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the binary built", c)
		}
		if fi, _ := os.Stat(filepath.Join(host, c)); fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s is not executable: %v", c, fi.Mode())
		}
	}
}

// startContainerd runs a containerd of its own (no CRI plugin) under a temporary root and
// returns its socket. It runs in a mount namespace of its own with a tmpfs on /run, and its opt
// directory under the temporary root: containerd 1.6 keeps shim sockets and runc state under
// /run/containerd whatever its config says, and the host's /run/containerd and /opt/containerd
// are what the sandbox's leftover check looks at (and what a real node's containerd uses).
func startContainerd(ctx context.Context, t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "plexus-containerd-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "containerd.sock")
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, filepath.Join(dir, "opt"))
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs plexus-test-run /run && exec containerd --config "$0"`, cfgPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = exec.Command("umount", "-R", filepath.Join(dir, "root")).Run()
		os.RemoveAll(dir)
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if exec.CommandContext(ctx, "ctr", "--address", sock, "version").Run() == nil {
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer on %s:\n%s", sock, logs.String())
		}
	}
}
