package extender

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	schedulerconfigv1 "k8s.io/kube-scheduler/config/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-project/plexus/extender/app"
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	"github.com/plexus-project/plexus/test/controlplane"
)

// The load issue 12 sets.
const (
	benchNodes = 500
	benchPods  = 1000
	nodeVFs    = 8 // both runs' pods fit at once: 2 x 1,000 pods on 4,000 VFs
)

// BenchmarkScheduling runs the real kube-scheduler twice against one API server and the same
// 500 Nodes: a profile with plexus-extender (nodeCacheCapable, the stanza it prints) and one
// without, each scheduling 1,000 one-VF pods created at once; it prints pods/s of both, their
// ratio (goal >= 0.8) and the filter latency the scheduler saw (goal p99 <= 10 ms), and an
// open-loop filter run over the 500 nodes.
func BenchmarkScheduling(b *testing.B) {
	ctrllog.SetLogger(logr.Discard())
	scheme := controlplane.DefaultScheme()
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	cp := controlplane.Start(b, controlplane.Options{Scheme: scheme, APIServerArgs: map[string]string{"max-requests-inflight": "2000", "max-mutating-requests-inflight": "1000"}})
	ctx := context.Background()
	createNodes(ctx, b, cp, "node", 0, benchNodes, nodeVFs, map[string]string{"net/bench": "true"})
	if err := cp.Client.Create(ctx, benchNAD("bench-net", string(vf), "net/bench=true")); err != nil {
		b.Fatal(err)
	}
	ext := startExtender(b, cp)

	stanza := app.Extender(app.StanzaOptions{URLPrefix: ext.url, NodeCacheCapable: true, ManagedResources: []string{string(vf)}})
	cp.StartScheduler(b, schedulerConfig("with-extender", stanza))
	// The extender's run goes first: the API server is coldest then, not in its favour.
	withRate, withDur := scheduleAll(ctx, b, cp, "with-extender")
	filters := ext.filterDurations()
	prioritizes, binds := ext.callDurations("/prioritize"), ext.callDurations("/bind")

	cp.StartScheduler(b, schedulerConfig("plain"))
	plainRate, plainDur := scheduleAll(ctx, b, cp, "plain")

	nodes := make([]string, benchNodes)
	for i := range nodes {
		nodes[i] = fmt.Sprintf("node-%d", i)
	}
	open := openLoop(b, ext.url, vfPod("default", "probe", "bench-net", "with-extender", ""), nodes, 1000, 100)

	ratio := withRate / plainRate
	fmt.Fprintf(os.Stdout, "extender scheduling: %d one-VF pods onto %d nodes (real kube-scheduler v1.33)\n", benchPods, benchNodes)
	fmt.Fprintf(os.Stdout, "  with plexus-extender:    %7.1f pods/s (%.2f s)\n", withRate, withDur.Seconds())
	fmt.Fprintf(os.Stdout, "  without extender:        %7.1f pods/s (%.2f s)\n", plainRate, plainDur.Seconds())
	fmt.Fprintf(os.Stdout, "  ratio with/without:      %7.2f (goal >= 0.8)\n", ratio)
	fmt.Fprintf(os.Stdout, "  filter calls from the scheduler: %d (pods turned away and retried: %d), server-side p50 %s, p99 %s, max %s (goal p99 <= 10 ms)\n",
		len(filters), len(filters)-benchPods, ms(percentile(filters, 0.5)), ms(percentile(filters, 0.99)), ms(percentile(filters, 1)))
	fmt.Fprintf(os.Stdout, "  prioritize calls: %d, p50 %s, p99 %s; bind calls: %d, p50 %s, p99 %s (the API server's binding included)\n",
		len(prioritizes), ms(percentile(prioritizes, 0.5)), ms(percentile(prioritizes, 0.99)), len(binds), ms(percentile(binds, 0.5)), ms(percentile(binds, 0.99)))
	fmt.Fprintf(os.Stdout, "  open-loop filter, %d nodes, 1,000 calls at 100/s, from when due: p50 %s, p99 %s, max %s\n",
		benchNodes, ms(percentile(open, 0.5)), ms(percentile(open, 0.99)), ms(percentile(open, 1)))
	b.ReportMetric(withRate, "pods/s-with")
	b.ReportMetric(plainRate, "pods/s-without")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(float64(percentile(filters, 0.99).Microseconds())/1000, "filter-p99-ms")
}

// schedulerConfig is the same for both runs but the extender: every node judged for every pod
// (percentageOfNodesToScore 100, so each filter call carries all 500 nodes), and a client
// allowed 500 requests/s, so the bindings, not the client's throttle, set the pace.
func schedulerConfig(name string, extenders ...schedulerconfigv1.Extender) *schedulerconfigv1.KubeSchedulerConfiguration {
	cfg := &schedulerconfigv1.KubeSchedulerConfiguration{
		PercentageOfNodesToScore: ptr.To[int32](100),
		Profiles:                 []schedulerconfigv1.KubeSchedulerProfile{{SchedulerName: ptr.To(name)}},
		Extenders:                extenders,
	}
	cfg.ClientConnection.QPS = 500
	cfg.ClientConnection.Burst = 1000
	return cfg
}

// scheduleAll creates benchPods one-VF pods for schedulerName in a namespace of their own (32
// creators at once) and waits until all are bound; it returns pods/s from the first creation
// to the last binding, and that time.
func scheduleAll(ctx context.Context, b *testing.B, cp *controlplane.ControlPlane, schedulerName string) (float64, time.Duration) {
	b.Helper()
	ns := "bench-" + schedulerName
	createNamespace(ctx, b, cp.Client, ns)
	// An informer, not a bare watch: it re-lists and re-watches when the API server drops the
	// stream under load.
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		b.Fatal(err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	var (
		mu     sync.Mutex
		seen   = map[string]bool{}
		boundN atomic.Int64
	)
	allBound := make(chan time.Time, 1)
	count := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Spec.NodeName == "" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[p.Name] {
			return
		}
		seen[p.Name] = true
		if boundN.Add(1) == benchPods {
			allBound <- time.Now()
		}
	}
	if _, err := factory.Core().V1().Pods().Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: count, UpdateFunc: func(_, o any) { count(o) },
	}); err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	factory.WaitForCacheSync(stop)
	start := time.Now()
	parallel(b, 0, benchPods, 32, func(i int) error {
		return cp.Client.Create(ctx, vfPod(ns, fmt.Sprintf("p-%04d", i), "default/bench-net", schedulerName, ""))
	})
	select {
	case end := <-allBound:
		d := end.Sub(start)
		return float64(benchPods) / d.Seconds(), d
	case <-time.After(10 * time.Minute):
		var p corev1.Pod
		_ = cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "p-0000"}, &p)
		b.Fatalf("%s: only %d of %d pods bound after 10 minutes; p-0000: %+v", schedulerName, boundN.Load(), benchPods, p.Status.Conditions)
	}
	return 0, 0
}
