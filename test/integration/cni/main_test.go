package cni

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	plugintesting "github.com/plexus-project/plexus/ipam/plugin/testing"
	"github.com/plexus-project/plexus/test/repo"
)

// binDir holds the binaries built by TestMain: plexus, plexus-ipam, plexus-daemon.
var binDir string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("SKIP: the CNI integration tests need root (network namespaces, veth, macvlan, bridge)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "plexus-cni-bin")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		root, err := repo.Root()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// A build failure fails the tests, never skips them.
		if _, err := plugintesting.Build(root, dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		build := exec.Command("go", "build", "-o", filepath.Join(dir, "plexus"), "./cmd/plexus")
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building plexus: %v\n%s", err, out)
			return 1
		}
		binDir = dir
		return m.Run()
	}()
	os.Exit(code)
}
