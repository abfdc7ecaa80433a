package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/plexus-project/plexus/test/cluster"
	"github.com/plexus-project/plexus/test/cluster/demo"
	"github.com/plexus-project/plexus/test/repo"
)

// suite is the cluster shared by the tests of the e2e suite (PLEXUS_E2E=1), brought up by the
// first test that needs it (so `-run` of one test with its own cluster starts no other) and
// torn down after the tests.
var suite struct {
	once sync.Once
	c    *suiteCluster
	err  error
}

type suiteCluster struct {
	*cluster.Cluster
	build *cluster.Build
	opts  cluster.Options
}

// secondScheduler is a second profile of the suite's kube-scheduler (TestSchedulerConfig).
const secondScheduler = "e2e-second-scheduler"

// suiteSchedulerConfig is the suite's KubeSchedulerConfiguration.
const suiteSchedulerConfig = `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: ` + secondScheduler + `
`

// e2eEnabled says whether the whole suite runs (`make e2e`), not only TestSmoke.
func e2eEnabled() bool { return os.Getenv("PLEXUS_E2E") == "1" }

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	code := m.Run()
	if suite.c == nil {
		return code
	}
	c := suite.c
	pids, hostDirs := c.PIDs(), c.HostDirs()
	start := time.Now()
	if err := c.Down(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "tearing the e2e cluster down:", err)
		return 1
	}
	fmt.Printf("e2e: down in %.1f s\n", time.Since(start).Seconds())
	if left := cluster.Leftovers(c.opts.Name, c.opts.Dir, hostDirs, pids); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: after down the host still has: %v\n", left)
		return 1
	}
	if code == 0 {
		_ = os.RemoveAll(c.opts.Dir) // the logs, kept for a failure
	}
	return code
}

// requireE2E skips t outside `make e2e`.
func requireE2E(t *testing.T) {
	t.Helper()
	requireRoot(t)
	if !e2eEnabled() {
		t.Skip("part of the e2e suite: run `make e2e` (PLEXUS_E2E=1)")
	}
}

// requireSuite skips t outside `make e2e` and returns the shared cluster, bringing it up on
// first use: 2 nodes with emulated SR-IOV, an image per Plexus command, the CNI binaries and
// plexus-ipam's kubeconfig on every node (demo.WithPlexus).
func requireSuite(t *testing.T) *suiteCluster {
	t.Helper()
	requireE2E(t)
	suite.once.Do(func() { suite.c, suite.err = upSuite() })
	if suite.err != nil {
		t.Fatalf("the e2e cluster: %v", suite.err)
	}
	return suite.c
}

// requireBinary fails t when the suite has no build of cmd/<bin>: the suite builds every
// command and fails when one does not build, so a missing one was removed or renamed.
func (s *suiteCluster) requireBinary(t *testing.T, bin string) {
	t.Helper()
	if s.build.Binaries[bin] == "" {
		t.Fatalf("cmd/%s was not built (built: %v)", bin, slices.Sorted(maps.Keys(s.build.Binaries)))
	}
}

func upSuite() (*suiteCluster, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root, err := repo.Root()
	if err != nil {
		return nil, err
	}
	buildDir, err := os.MkdirTemp("", "plexus-e2e-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(buildDir)
	build, err := cluster.BuildPlexus(ctx, root, buildDir, "plexus-sandbox")
	if err != nil {
		return nil, fmt.Errorf("building the Plexus commands: %w", err)
	}
	start := time.Now()
	opts := cluster.Options{Nodes: 2, SRIOV: &cluster.SRIOVOptions{}, SchedulerConfig: suiteSchedulerConfig}
	demo.WithPlexus(&opts, build)
	c, opts, err := upFree(ctx, "e2e", []int{3, 8, 9}, opts)
	if err != nil {
		return nil, err
	}
	fmt.Printf("e2e: cluster up with %d nodes in %.1f s (kubeconfig %s)\n", len(c.Nodes), time.Since(start).Seconds(), c.Kubeconfig)
	return &suiteCluster{Cluster: c, build: build, opts: opts}, nil
}
