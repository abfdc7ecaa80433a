package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plexus-project/plexus/test/cluster"
	"github.com/plexus-project/plexus/test/cluster/demo"
	"github.com/plexus-project/plexus/test/repo"
)

// TestDemo runs what `make demo DEMO_EXIT=1` runs, on its own cluster: build, up with emulated
// SR-IOV, install the components that exist, apply docs/examples, check, down.
func TestDemo(t *testing.T) {
	requireE2E(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	var opts demo.Options
	var err error
	// Another run of these tests may hold a network ID: take the next.
	for _, id := range []int{4, 10, 11} {
		name := fmt.Sprintf("demo%d", id)
		out.Reset()
		opts = demo.Options{Cluster: cluster.Options{Name: name, Dir: filepath.Join(os.TempDir(), "plexus-"+name), NetworkID: id}, Exit: true, Out: &out}
		if err = demo.Run(ctx, opts); !errors.Is(err, cluster.ErrInUse) {
			break
		}
	}
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"POD", "upf-1", "upf-2", "plexus-deviceplugin"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo's report lacks %q", want)
		}
	}
	checkNoLeftovers(t, opts.Cluster.Name, opts.Cluster.Dir, nil, nil)
}

// TestDownAfterCrash kills `plexus-sandbox up` while it brings a node up, then tears the
// cluster down from this process, which never saw it: nothing may be left on the host.
func TestDownAfterCrash(t *testing.T) {
	requireE2E(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "plexus-sandbox")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/plexus-sandbox")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building plexus-sandbox: %v %s", err, out)
	}
	dir := filepath.Join(os.TempDir(), "plexus-e2e-crash")
	up := exec.CommandContext(ctx, bin, "up", "-name", "crash", "-dir", dir, "-nodes", "2", "-network-id", "5", "-images=false")
	var log bytes.Buffer
	up.Stdout, up.Stderr = &log, &log
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	// Crash it once a kubelet runs: containerd, pods-to-be, mounts and cgroups all exist.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "state.json"))
		if bytes.Contains(b, []byte(`"crash-node2-kubelet"`)) {
			break
		}
		if time.Now().After(deadline) {
			_ = up.Process.Kill()
			t.Fatalf("plexus-sandbox up never started a kubelet:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := up.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = up.Wait()
	pids, err := cluster.PIDsIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) == 0 {
		t.Fatal("the crashed cluster has no processes: the test did not crash it while it ran")
	}
	start := time.Now()
	if err := cluster.Down(ctx, dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("down after a crash: %d processes killed, %.1f s", len(pids), time.Since(start).Seconds())
	checkNoLeftovers(t, "crash", dir, nil, pids)
}
