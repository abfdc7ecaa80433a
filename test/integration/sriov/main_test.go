package sriov

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/plexus-project/plexus/test/repo"
)

// sriovBin and ipamBin are built by TestMain; a build failure fails the package.
var sriovBin, ipamBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "plexus-sriov-bin")
	if err != nil {
		panic(err)
	}
	root, err := repo.Root()
	if err != nil {
		panic(err)
	}
	// Static binaries, as installed on nodes: they start faster, once per CNI call.
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/plexus-sriov", "./cmd/plexus-ipam")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building plexus-sriov and plexus-ipam: %v\n%s", err, out)
		os.Exit(1)
	}
	sriovBin, ipamBin = filepath.Join(dir, "plexus-sriov"), filepath.Join(dir, "plexus-ipam")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
