package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/plexus-project/plexus/test/cluster"
)

// suite is the cluster shared by the tests of the e2e suite (PLEXUS_E2E=1); nil otherwise.
var suite *suiteCluster

type suiteCluster struct {
	*cluster.Cluster
	build *cluster.Build
}

// e2eEnabled says whether the whole suite runs (`make e2e`), not only TestSmoke.
func e2eEnabled() bool { return os.Getenv("PLEXUS_E2E") == "1" }

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if !e2eEnabled() || !isRoot() {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	repo, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	buildDir, err := os.MkdirTemp("", "plexus-e2e-build-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(buildDir)
	build, err := cluster.BuildPlexus(ctx, repo, buildDir, "plexus-sandbox")
	if err != nil {
		fmt.Fprintln(os.Stderr, "building the Plexus commands:", err)
		return 1
	}
	for bin, why := range build.Failed {
		fmt.Fprintf(os.Stderr, "e2e: cmd/%s does not build; its tests skip: %s\n", bin, why)
	}
	dir := filepath.Join(os.TempDir(), "plexus-e2e")
	start := time.Now()
	c, err := cluster.Up(ctx, cluster.Options{
		Name: "e2e", Dir: dir, Nodes: 2, NetworkID: 3,
		SRIOV:  &cluster.SRIOVOptions{},
		Images: build.Images(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bringing the e2e cluster up:", err)
		return 1
	}
	fmt.Printf("e2e: cluster up with %d nodes in %.1f s (kubeconfig %s)\n", len(c.Nodes), time.Since(start).Seconds(), c.Kubeconfig)
	suite = &suiteCluster{Cluster: c, build: build}
	code := m.Run()

	pids, hostDirs := c.PIDs(), c.HostDirs()
	start = time.Now()
	if err := c.Down(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "tearing the e2e cluster down:", err)
		return 1
	}
	fmt.Printf("e2e: down in %.1f s\n", time.Since(start).Seconds())
	if left := cluster.Leftovers("e2e", dir, hostDirs, pids); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: after down the host still has: %v\n", left)
		return 1
	}
	return code
}

// requireSuite skips t outside `make e2e` and returns the shared cluster.
func requireSuite(t *testing.T) *suiteCluster {
	t.Helper()
	requireRoot(t)
	if suite == nil {
		t.Skip("part of the e2e suite: run `make e2e` (PLEXUS_E2E=1)")
	}
	return suite
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}
