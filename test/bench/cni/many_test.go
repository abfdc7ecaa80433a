package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/plexus-project/plexus/test/cluster"
	"github.com/plexus-project/plexus/test/repo"
)

const (
	manyPods     = 32
	manyNetworks = 16
	// whereaboutsUser is Whereabouts' identity on the nodes (cluster-admin: it is only the
	// benchmark's comparison, and its RBAC is not Plexus's to tune).
	whereaboutsUser = "whereabouts"
	whereaboutsDir  = "/etc/cni/net.d/whereabouts.d"
)

// BenchmarkManyNetworks is the Whereabouts #313 shape: 32 pods with 16 macvlan networks each,
// every network its own range, created at once; the plexus daemon runs the delegates, with
// plexus-ipam as IPAM, then with Whereabouts v0.9.4 on NADs that differ only in their ipam.
//
// PLEXUS_BENCH_SKIP_WHEREABOUTS=1 runs the plexus-ipam side alone (no Whereabouts build, no
// ratio), as in test/bench/ipam.
func BenchmarkManyNetworks(b *testing.B) {
	withWhereabouts := os.Getenv("PLEXUS_BENCH_SKIP_WHEREABOUTS") == ""
	var edit func(*cluster.Options)
	if withWhereabouts {
		bin, crds := whereabouts(b)
		root, err := repo.Root()
		if err != nil {
			b.Fatal(err)
		}
		edit = func(o *cluster.Options) {
			o.CNIPlugins = append(o.CNIPlugins, bin)
			o.CRDDirs = []string{filepath.Join(root, "charts", "plexus", "crds"), crds}
			o.Users = append(o.Users, cluster.User{Name: whereaboutsUser})
			o.NodeKubeconfigs[whereaboutsDir+"/whereabouts.kubeconfig"] = whereaboutsUser
		}
	}
	s := upSandbox(b, edit)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	if withWhereabouts {
		if err := setUpWhereabouts(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	for range b.N {
		runManyNetworks(ctx, b, s, withWhereabouts)
	}
}

func runManyNetworks(ctx context.Context, b *testing.B, s *sandbox, withWhereabouts bool) {
	sides := []struct {
		name, prefix string
		ipam         func(i int) string
		timeout      time.Duration
	}{
		{"plexus-ipam", "pl", func(i int) string {
			return fmt.Sprintf(`{"type": "plexus-ipam", "range": "198.18.%d.0/24"}`, 32+i)
		}, 5 * time.Minute},
		{"whereabouts", "wa", func(i int) string {
			return fmt.Sprintf(`{"type": "whereabouts", "range": "198.18.%d.0/24", "configuration_path": %q}`, 48+i, whereaboutsDir+"/whereabouts.conf")
		}, 20 * time.Minute},
	}
	if !withWhereabouts {
		sides = sides[:1]
	}
	results := map[string]burst{}
	var failed []string
	for _, side := range sides {
		var nets []string
		for i := range manyNetworks {
			name := fmt.Sprintf("%s-%d", side.prefix, i)
			if err := s.createNAD(ctx, name, macvlanNAD(name, side.ipam(i))); err != nil {
				b.Fatal(err)
			}
			nets = append(nets, name)
		}
		res, err := s.runBurst(ctx, side.prefix, s.burstPods(side.prefix, manyPods, nets), side.timeout)
		if err != nil && side.name == "plexus-ipam" {
			b.Fatal(err)
		}
		if err != nil {
			// Whereabouts may not finish at all: say so and keep the other side's figures.
			failed = append(failed, fmt.Sprintf("%s: %v", side.name, err))
			res.wall = side.timeout
		}
		results[side.name] = res
		if err := s.deleteBurst(ctx, side.prefix); err != nil {
			b.Fatal(err)
		}
	}
	pl, wa := results["plexus-ipam"], results["whereabouts"]
	if pl.retried > 0 {
		b.Errorf("kubelet retried %d pod sandboxes with plexus-ipam (goal: none)", pl.retried)
	}
	fmt.Printf("\n%d pods x %d macvlan networks (each its own range) created at once on 2 sandbox nodes, delegates run by plexus-daemon:\n", manyPods, manyNetworks)
	for _, side := range sides {
		r := results[side.name]
		fmt.Printf("  %-12s all Running %7.2f s  p50 %6.2f s  p90 %6.2f s  sandboxes retried %d\n", side.name, r.wall.Seconds(),
			r.percentile(50).Seconds(), r.percentile(90).Seconds(), r.retried)
		b.ReportMetric(r.wall.Seconds(), side.name+"-all-Running-s")
		b.ReportMetric(float64(r.retried), side.name+"-retried")
	}
	if !withWhereabouts {
		fmt.Println("  Whereabouts skipped (PLEXUS_BENCH_SKIP_WHEREABOUTS): no ratio")
		return
	}
	ratio := wa.wall.Seconds() / pl.wall.Seconds()
	fmt.Printf("  ratio Whereabouts / plexus-ipam = %.1fx (goal >= 10x, no sandbox retried)\n", ratio)
	b.ReportMetric(ratio, "ratio-x")
	for _, f := range failed {
		fmt.Printf("  did not finish: %s (counted as its timeout: the ratio is a lower bound)\n", f)
	}
}

// setUpWhereabouts gives Whereabouts' identity cluster-admin and writes its flat
// configuration file on every node (the kubeconfig is Options.NodeKubeconfigs').
func setUpWhereabouts(ctx context.Context, s *sandbox) error {
	rbac := `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bench-whereabouts}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: ` + whereaboutsUser + `}
`
	if err := kubectlApply(ctx, s.Cluster, rbac); err != nil {
		return err
	}
	flat, err := json.Marshal(map[string]any{"datastore": "kubernetes", "log_level": "error",
		"kubernetes": map[string]any{"kubeconfig": whereaboutsDir + "/whereabouts.kubeconfig"}})
	if err != nil {
		return err
	}
	for _, n := range s.Nodes {
		if err := os.WriteFile(filepath.Join(n.HostPath(whereaboutsDir), "whereabouts.conf"), flat, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// whereabouts returns Whereabouts' CNI binary and its CRD directory (make whereabouts builds
// them: hack/whereabouts.sh).
func whereabouts(b *testing.B) (string, string) {
	cache := os.Getenv("PLEXUS_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "plexus")
	}
	bin, crds := filepath.Join(cache, "bin", "whereabouts"), filepath.Join(cache, "whereabouts", "crds")
	for _, p := range []string{bin, crds} {
		if _, err := os.Stat(p); err != nil {
			root, _ := repo.Root()
			b.Fatalf("Whereabouts is not built (%v): run `make whereabouts` (%s)", err, filepath.Join(root, "hack", "whereabouts.sh"))
		}
	}
	return bin, crds
}
