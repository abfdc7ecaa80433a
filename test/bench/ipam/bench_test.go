package ipam

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/rest"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	"github.com/plexus-project/plexus/ipam/config"
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
	// requests is what the ADDs asked of the API server about IPBlocks, by verb.
	requests requestCounts
}

// succeeded and failed split the outcomes: a failed call's latency (a quick refusal, a timeout)
// says nothing of how long an allocation takes, so the two are reported apart.
func (r run) succeeded() []plugintesting.Outcome { return filter(r.outs, true) }
func (r run) failed() []plugintesting.Outcome    { return filter(r.outs, false) }

func filter(outs []plugintesting.Outcome, ok bool) []plugintesting.Outcome {
	var out []plugintesting.Outcome
	for _, o := range outs {
		if (o.Err == nil) == ok {
			out = append(out, o)
		}
	}
	return out
}

func (r run) print(b *testing.B) {
	ok, failed := r.succeeded(), r.failed()
	fmt.Printf("%-12s %d ADDs (%d node names, %d in flight, one %s): wall %8.2fs  succeeded %d: p50 %7.3fs  p99 %7.3fs  max %7.3fs\n",
		r.name, len(r.outs), nodes, inFlight, cidr, r.wall.Seconds(), len(ok), plugintesting.Percentile(ok, 50).Seconds(),
		plugintesting.Percentile(ok, 99).Seconds(), plugintesting.Percentile(ok, 100).Seconds())
	if len(failed) > 0 {
		fmt.Printf("%-12s failed %d: p50 %7.3fs  p99 %7.3fs  max %7.3fs\n", r.name, len(failed), plugintesting.Percentile(failed, 50).Seconds(),
			plugintesting.Percentile(failed, 99).Seconds(), plugintesting.Percentile(failed, 100).Seconds())
	}
	if r.requests != nil {
		fmt.Printf("%-12s API requests on IPBlocks for the %d ADDs: %s\n", r.name, len(r.outs), r.requests)
	}
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
	wbConf := whereaboutsConf(b, kubeconfig)
	warmUp(ctx, b, plexusBin, wbBin, kubeconfig, wbConf, pods[:20])

	for i := 0; i < b.N; i++ {
		plexus := runPlexus(ctx, b, cp, plexusBin, kubeconfig, pods, true)
		direct := runPlexus(ctx, b, cp, plexusBin, kubeconfig, pods, false)
		fmt.Println()
		plexus.print(b)
		direct.print(b)
		for _, r := range []run{plexus, direct} {
			if r.errors > 0 || r.leaked > 0 {
				b.Errorf("%s: %d errors, %d leaked", r.name, r.errors, r.leaked)
			}
		}
		b.ReportMetric(plexus.wall.Seconds(), "plexus-wall-s")
		b.ReportMetric(plugintesting.Percentile(plexus.succeeded(), 99).Seconds(), "plexus-p99-s")
		b.ReportMetric(direct.wall.Seconds(), "plexus-direct-wall-s")
		if os.Getenv("PLEXUS_BENCH_SKIP_WHEREABOUTS") != "" {
			continue // a quick look at plexus-ipam alone while working on it
		}
		wb := runWhereabouts(ctx, b, cp, wbBin, wbConf(cidr), pods)
		wb.print(b)
		ratio := wb.wall.Seconds() / plexus.wall.Seconds()
		fmt.Printf("ratio        Whereabouts wall / plexus-ipam wall = %.1fx (goal >= 20x); p99 %.3fs vs %.3fs\n",
			ratio, plugintesting.Percentile(plexus.succeeded(), 99).Seconds(), plugintesting.Percentile(wb.succeeded(), 99).Seconds())
		fmt.Printf("             without the node agent (every plugin process on its own): %.1fx\n\n", wb.wall.Seconds()/direct.wall.Seconds())
		b.ReportMetric(wb.wall.Seconds(), "whereabouts-wall-s")
		b.ReportMetric(plugintesting.Percentile(wb.succeeded(), 99).Seconds(), "whereabouts-p99-s")
		b.ReportMetric(ratio, "speedup-x")
	}
}

// warmUp runs a few ADDs and DELs of each plugin, on ranges of their own, before anything is
// timed. Right after it starts, the API server builds a custom resource's storage at its first
// use and is still busy with its CRDs' OpenAPI: that held the first requests of a run for 1-2.5 s
// here, in some runs and not others. Both plugins are measured on a warm API server.
func warmUp(ctx context.Context, b *testing.B, plexusBin, wbBin, kubeconfig string, wbConf func(cidr string) []byte, pods []pod) {
	plexusConf := mustJSON(map[string]any{"cniVersion": "1.0.0", "name": "warm-up", "type": "macvlan", "ipam": map[string]any{
		"type": "plexus-ipam", "range": "10.99.0.0/24", "network_name": "warm-up"}})
	plexusEnv := nodeEnv(b, config.NodeConfig{NodeName: "node-0", Kubeconfig: kubeconfig, LockDir: b.TempDir()})
	for _, p := range []struct {
		bin  string
		conf []byte
		env  []string
	}{{plexusBin, plexusConf, plexusEnv}, {wbBin, wbConf("10.98.0.0/24"), []string{"NODENAME=node-0", "HOSTNAME=node-0"}}} {
		for _, cmd := range []string{"ADD", "DEL"} {
			outs, _ := plugintesting.RunMany(ctx, len(pods), 5, func(i int) plugintesting.Call {
				return plugintesting.Call{Binary: p.bin, Command: cmd, ContainerID: fmt.Sprintf("warm-up-%d", i), Conf: p.conf,
					Args: plugintesting.PodArgs("default", pods[i].name, pods[i].uid), Env: p.env}
			})
			for _, o := range outs {
				if o.Err != nil {
					b.Fatalf("warming up %s: %s %d: %v", filepath.Base(p.bin), cmd, o.Index, o.Err)
				}
			}
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

// runPlexus runs the ADDs and DELs of plexus-ipam: with a node agent (plexus-daemon) per node
// name, as deployed, or with every plugin process on its own (direct mode, no daemon).
func runPlexus(ctx context.Context, b *testing.B, cp *controlplane.ControlPlane, bin, kubeconfig string, pods []pod, withAgents bool) run {
	root := b.TempDir()
	confs := make([][]byte, nodes)
	envs := make([][]string, nodes)
	for n := range confs {
		node, lockDir := fmt.Sprintf("node-%d", n), root
		if withAgents {
			// One node daemon per node name, each with its own directory, as on separate nodes.
			lockDir = filepath.Join(root, node)
			a, err := plugintesting.StartAgent(bin, kubeconfig, lockDir, node)
			if err != nil {
				b.Fatal(err)
			}
			defer a.Stop()
		}
		confs[n] = mustJSON(map[string]any{"cniVersion": "1.0.0", "name": "bench-plexus", "type": "macvlan", "ipam": map[string]any{
			"type": "plexus-ipam", "range": cidr}})
		envs[n] = nodeEnv(b, config.NodeConfig{NodeName: node, Kubeconfig: kubeconfig, LockDir: lockDir})
	}
	mk := func(cmd string) func(i int) plugintesting.Call {
		return func(i int) plugintesting.Call {
			return plugintesting.Call{Binary: bin, Command: cmd, ContainerID: "plexus-" + pods[i].name,
				Args: plugintesting.PodArgs("default", pods[i].name, pods[i].uid), Conf: confs[i%nodes], Env: envs[i%nodes]}
		}
	}
	r := run{name: "plexus-ipam"}
	if !withAgents {
		r.name = "  (direct)"
	}
	before := blockRequests(ctx, b, cp)
	r.outs, r.wall = plugintesting.RunMany(ctx, adds, inFlight, mk("ADD"))
	r.requests = blockRequests(ctx, b, cp).minus(before)
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
	// Node agents journal DELs and write them within --ipam-flush-after (3 s); the addresses
	// they set aside go back when they are idle (--ipam-hold-idle, 2 s).
	settle := time.Now()
	if withAgents {
		settle = settle.Add(15 * time.Second)
	}
	for {
		var list v1alpha1.IPBlockList
		if err := cp.Client.List(ctx, &list); err != nil {
			b.Fatalf("listing the IPBlocks to count what DEL left behind: %v", err) // never "leaked 0" unseen
		}
		r.leaked = 0
		for _, blk := range list.Items {
			r.leaked += len(blk.Spec.Allocations)
		}
		if r.leaked == 0 || time.Now().After(settle) {
			return r
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// whereaboutsConf writes Whereabouts' flat configuration file and returns the network
// configuration of a range using it.
func whereaboutsConf(b *testing.B, kubeconfig string) func(cidr string) []byte {
	dir := b.TempDir()
	flat := filepath.Join(dir, "whereabouts.conf")
	if err := os.WriteFile(flat, mustJSON(map[string]any{"datastore": "kubernetes", "kubernetes": map[string]any{"kubeconfig": kubeconfig},
		"log_file": filepath.Join(dir, "whereabouts.log"), "log_level": "error"}), 0o600); err != nil {
		b.Fatal(err)
	}
	return func(cidr string) []byte {
		return mustJSON(map[string]any{"cniVersion": "0.3.1", "name": "bench-whereabouts", "type": "macvlan", "ipam": map[string]any{
			"type": "whereabouts", "range": cidr, "configuration_path": flat}})
	}
}

func runWhereabouts(ctx context.Context, b *testing.B, cp *controlplane.ControlPlane, bin string, conf []byte, pods []pod) run {
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
		if err := cp.Client.List(ctx, &pools); err != nil {
			b.Fatalf("listing Whereabouts' IPPools to count what DEL left behind: %v", err)
		}
		for _, p := range pools.Items {
			allocs, _, err := unstructured.NestedMap(p.Object, "spec", "allocations")
			if err != nil {
				b.Fatalf("reading the allocations of Whereabouts' IPPool %s: %v", p.GetName(), err)
			}
			r.leaked += len(allocs)
		}
	}
	return r
}

// requestCounts is apiserver_request_total for IPBlocks, by verb.
type requestCounts map[string]float64

func (c requestCounts) minus(o requestCounts) requestCounts {
	out := requestCounts{}
	for k, v := range c {
		if d := v - o[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

func (c requestCounts) String() string {
	verbs := make([]string, 0, len(c))
	for v := range c {
		verbs = append(verbs, v)
	}
	sort.Strings(verbs)
	var parts []string
	for _, v := range verbs {
		parts = append(parts, fmt.Sprintf("%s %.0f", v, c[v]))
	}
	return strings.Join(parts, ", ")
}

// blockRequests reads the API server's request counters for IPBlocks.
func blockRequests(ctx context.Context, b *testing.B, cp *controlplane.ControlPlane) requestCounts {
	hc, err := rest.HTTPClientFor(cp.Config)
	if err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cp.Config.Host, "/")+"/metrics", nil)
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatalf("reading the API server's metrics: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatalf("reading the API server's metrics: %v", err)
	}
	out := requestCounts{}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `resource="ipblocks"`) {
			continue
		}
		i := strings.Index(line, `verb="`)
		verb := line[i+6:]
		verb = verb[:strings.IndexByte(verb, '"')]
		n, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		out[verb] += n
	}
	return out
}

// nodeEnv writes nc as a node configuration file (what a node, not a network configuration,
// decides: its name, the plugin's kubeconfig, its lock_dir) and returns the plugin's environment
// naming it.
func nodeEnv(b *testing.B, nc config.NodeConfig) []string {
	path := filepath.Join(b.TempDir(), "ipam.json")
	if err := os.WriteFile(path, mustJSON(nc), 0o600); err != nil {
		b.Fatal(err)
	}
	return []string{config.NodeConfigEnv + "=" + path}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
