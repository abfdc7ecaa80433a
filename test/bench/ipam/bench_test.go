package ipam

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	plugintesting "github.com/plexus-project/plexus/ipam/plugin/testing"
	"github.com/plexus-project/plexus/test/controlplane"
	"github.com/plexus-project/plexus/test/repo"
)

const (
	adds     = 1000
	nodes    = 10
	inFlight = 50
	cidr     = "10.20.0.0/22"
)

// whereabouts returns the Whereabouts binary and its CRD directory, building them if needed.
func whereabouts(b *testing.B, root string) (string, string) {
	cache := os.Getenv("PLEXUS_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "plexus")
	}
	bin, crds := filepath.Join(cache, "bin", "whereabouts"), filepath.Join(cache, "whereabouts", "crds")
	if _, err := os.Stat(crds); err != nil {
		cmd := exec.Command(filepath.Join(root, "hack", "whereabouts.sh"))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("building Whereabouts with hack/whereabouts.sh: %v\n%s", err, out)
		}
	}
	return bin, crds
}

type run struct {
	name    string
	outs    []plugintesting.Outcome
	wall    time.Duration
	errors  int
	leaked  int
	delWall time.Duration
}

func (r run) print(b *testing.B) {
	fmt.Printf("%-12s %d ADDs (%d node names, %d in flight, one %s): wall %8.2fs  p50 %7.3fs  p99 %7.3fs  max %7.3fs  errors %d\n",
		r.name, len(r.outs), nodes, inFlight, cidr, r.wall.Seconds(), plugintesting.Percentile(r.outs, 50).Seconds(),
		plugintesting.Percentile(r.outs, 99).Seconds(), plugintesting.Percentile(r.outs, 100).Seconds(), r.errors)
	if r.delWall > 0 {
		fmt.Printf("%-12s %d DELs: wall %8.2fs, addresses still allocated after DEL of all (leaked): %d\n", r.name, len(r.outs), r.delWall.Seconds(), r.leaked)
	}
}

func BenchmarkThousandADDsVersusWhereabouts(b *testing.B) {
	root, err := repo.Root()
	if err != nil {
		b.Fatal(err)
	}
	wbBin, wbCRDs := whereabouts(b, root)
	plexusBin, err := plugintesting.Build(root, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	scheme := controlplane.DefaultScheme()
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	cp := controlplane.Start(b, controlplane.Options{Scheme: scheme, ExtraCRDDirs: []string{wbCRDs}})
	kubeconfig := cp.Kubeconfig(b, "ipam-bench")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	pods := createPods(ctx, b, cp)

	for i := 0; i < b.N; i++ {
		plexus := runPlexus(ctx, b, cp, plexusBin, kubeconfig, pods)
		wb := runWhereabouts(ctx, b, cp, wbBin, kubeconfig, pods)
		fmt.Println()
		plexus.print(b)
		wb.print(b)
		ratio := wb.wall.Seconds() / plexus.wall.Seconds()
		fmt.Printf("ratio        Whereabouts wall / plexus-ipam wall = %.1fx (goal >= 20x); p99 %.3fs vs %.3fs\n\n",
			ratio, plugintesting.Percentile(plexus.outs, 99).Seconds(), plugintesting.Percentile(wb.outs, 99).Seconds())
		b.ReportMetric(plexus.wall.Seconds(), "plexus-wall-s")
		b.ReportMetric(plugintesting.Percentile(plexus.outs, 99).Seconds(), "plexus-p99-s")
		b.ReportMetric(wb.wall.Seconds(), "whereabouts-wall-s")
		b.ReportMetric(plugintesting.Percentile(wb.outs, 99).Seconds(), "whereabouts-p99-s")
		b.ReportMetric(ratio, "speedup-x")
		if plexus.errors > 0 || plexus.leaked > 0 {
			b.Errorf("plexus-ipam: %d errors, %d leaked", plexus.errors, plexus.leaked)
		}
	}
}

type pod struct{ name, uid string }

// createPods creates the pods the ADDs are for, so both plugins see real pods.
func createPods(ctx context.Context, b *testing.B, cp *controlplane.ControlPlane) []pod {
	out := make([]pod, adds)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 20)
	for i := range out {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("bench-%d", i)},
				Spec: corev1.PodSpec{NodeName: fmt.Sprintf("node-%d", i%nodes), Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
			if err := cp.Client.Create(ctx, p); err != nil {
				b.Errorf("creating pod %s: %v", p.Name, err)
				return
			}
			out[i] = pod{p.Name, string(p.UID)}
		}(i)
	}
	wg.Wait()
	return out
}

func runPlexus(ctx context.Context, b *testing.B, cp *controlplane.ControlPlane, bin, kubeconfig string, pods []pod) run {
	lockDir := b.TempDir()
	confs := make([][]byte, nodes)
	for n := range confs {
		confs[n] = mustJSON(map[string]any{"cniVersion": "1.0.0", "name": "bench-plexus", "type": "macvlan", "ipam": map[string]any{
			"type": "plexus-ipam", "range": cidr, "node_name": fmt.Sprintf("node-%d", n), "lock_dir": lockDir,
			"kubernetes": map[string]any{"kubeconfig": kubeconfig}}})
	}
	mk := func(cmd string) func(i int) plugintesting.Call {
		return func(i int) plugintesting.Call {
			return plugintesting.Call{Binary: bin, Command: cmd, ContainerID: "plexus-" + pods[i].name,
				Args: plugintesting.PodArgs("default", pods[i].name, pods[i].uid), Conf: confs[i%nodes]}
		}
	}
	r := run{name: "plexus-ipam"}
	r.outs, r.wall = plugintesting.RunMany(ctx, adds, inFlight, mk("ADD"))
	seen := map[netip.Addr]bool{}
	for _, o := range r.outs {
		if o.Err != nil {
			r.errors++
			b.Logf("plexus-ipam ADD %d: %v", o.Index, o.Err)
			continue
		}
		if seen[o.Addr] {
			b.Errorf("plexus-ipam handed out %s twice", o.Addr)
		}
		seen[o.Addr] = true
	}
	dels, delWall := plugintesting.RunMany(ctx, adds, inFlight, mk("DEL"))
	r.delWall = delWall
	for _, o := range dels {
		if o.Err != nil {
			b.Errorf("plexus-ipam DEL %d: %v", o.Index, o.Err)
		}
	}
	var list v1alpha1.IPBlockList
	cp.Client.List(ctx, &list)
	for _, blk := range list.Items {
		r.leaked += len(blk.Spec.Allocations)
	}
	return r
}

func runWhereabouts(ctx context.Context, b *testing.B, cp *controlplane.ControlPlane, bin, kubeconfig string, pods []pod) run {
	dir := b.TempDir()
	flat := filepath.Join(dir, "whereabouts.conf")
	if err := os.WriteFile(flat, mustJSON(map[string]any{"datastore": "kubernetes", "kubernetes": map[string]any{"kubeconfig": kubeconfig},
		"log_file": filepath.Join(dir, "whereabouts.log"), "log_level": "error"}), 0o600); err != nil {
		b.Fatal(err)
	}
	conf := mustJSON(map[string]any{"cniVersion": "0.3.1", "name": "bench-whereabouts", "type": "macvlan", "ipam": map[string]any{
		"type": "whereabouts", "range": cidr, "configuration_path": flat}})
	mk := func(cmd string) func(i int) plugintesting.Call {
		return func(i int) plugintesting.Call {
			return plugintesting.Call{Binary: bin, Command: cmd, ContainerID: "wb-" + pods[i].name,
				Args: plugintesting.PodArgs("default", pods[i].name, pods[i].uid), Conf: conf,
				Env: []string{"NODENAME=" + fmt.Sprintf("node-%d", i%nodes), "HOSTNAME=" + fmt.Sprintf("node-%d", i%nodes)}}
		}
	}
	r := run{name: "whereabouts"}
	r.outs, r.wall = plugintesting.RunMany(ctx, adds, inFlight, mk("ADD"))
	for _, o := range r.outs {
		if o.Err != nil {
			r.errors++
			if r.errors <= 3 {
				b.Logf("whereabouts ADD %d: %v", o.Index, o.Err)
			}
		}
	}
	if os.Getenv("PLEXUS_BENCH_WHEREABOUTS_DEL") != "" {
		_, r.delWall = plugintesting.RunMany(ctx, adds, inFlight, mk("DEL"))
		var pools unstructured.UnstructuredList
		pools.SetAPIVersion("whereabouts.cni.cncf.io/v1alpha1")
		pools.SetKind("IPPoolList")
		if err := cp.Client.List(ctx, &pools); err == nil {
			for _, p := range pools.Items {
				allocs, _, _ := unstructured.NestedMap(p.Object, "spec", "allocations")
				r.leaked += len(allocs)
			}
		}
	}
	return r
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
