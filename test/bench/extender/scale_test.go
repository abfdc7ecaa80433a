package extender

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/go-logr/logr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	"github.com/plexus-project/plexus/test/controlplane"
)

// The scale issue 12 sets: 5,000 nodes, 10 networks, 20,000 pods (4 bound per node).
var scaleSteps = []int{1000, 2500, 5000}

const (
	scaleNetworks    = 10
	scalePodsPerNode = 4
)

// BenchmarkScale grows one API server to 1,000, 2,500 and 5,000 plain Node objects with 4 bound
// one-VF pods each over 10 networks, and at each size starts a fresh extender, waits for its
// caches, and prints its heap (bytes per node, pods included) and the filter latency over every
// node (open loop, 500 calls at 50/s; goal p99 <= 20 ms at 5,000). It takes minutes: run it
// with make bench-scale (PLEXUS_BENCH_SCALE=1).
func BenchmarkScale(b *testing.B) {
	if os.Getenv("PLEXUS_BENCH_SCALE") != "1" {
		b.Skip("the scale benchmark takes minutes: run it with make bench-scale (PLEXUS_BENCH_SCALE=1)")
	}
	ctrllog.SetLogger(logr.Discard())
	scheme := controlplane.DefaultScheme()
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	cp := controlplane.Start(b, controlplane.Options{Scheme: scheme, APIServerArgs: map[string]string{"max-requests-inflight": "2000", "max-mutating-requests-inflight": "1000"}})
	ctx := context.Background()
	for i := range scaleNetworks {
		if err := cp.Client.Create(ctx, benchNAD(fmt.Sprintf("net-%d", i), string(vf), "net/scale=true")); err != nil {
			b.Fatal(err)
		}
	}
	fmt.Fprintf(os.Stdout, "extender scale: %d networks, %d bound one-VF pods per node\n", scaleNetworks, scalePodsPerNode)
	have := 0
	for _, n := range scaleSteps {
		createNodes(ctx, b, cp, "scale", have, n, 8, map[string]string{"net/scale": "true"})
		parallel(b, have*scalePodsPerNode, n*scalePodsPerNode, 32, func(i int) error {
			node := fmt.Sprintf("scale-%d", i/scalePodsPerNode)
			return cp.Client.Create(ctx, vfPod("default", fmt.Sprintf("s-%05d", i), fmt.Sprintf("net-%d", i%scaleNetworks), "none", node))
		})
		have = n

		before := heap()
		ext := startExtender(b, cp)
		after := heap()
		nodes := make([]string, n)
		for i := range nodes {
			nodes[i] = fmt.Sprintf("scale-%d", i)
		}
		lat := openLoop(b, ext.url, vfPod("default", "probe", "net-3", "none", ""), nodes, 500, 50)
		gotNodes, gotPods, _, _ := ext.cluster.Size()
		served := ext.filterDurations()
		ext.stop()
		perNode := float64(after-before) / float64(n)
		fmt.Fprintf(os.Stdout, "  %5d nodes (%5d pods seen): extender heap %6.1f MiB = %6.0f bytes/node; filter over all nodes, from when due: p50 %s, p99 %s, max %s; handled in: p50 %s, p99 %s\n",
			gotNodes, gotPods, float64(after-before)/(1<<20), perNode, ms(percentile(lat, 0.5)), ms(percentile(lat, 0.99)), ms(percentile(lat, 1)),
			ms(percentile(served, 0.5)), ms(percentile(served, 0.99)))
		b.ReportMetric(perNode, fmt.Sprintf("bytes/node@%d", n))
		b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, fmt.Sprintf("filter-p99-ms@%d", n))
	}
}

// heap is the live heap after a full collection.
func heap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
