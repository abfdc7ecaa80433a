package extender

import (
	"context"
	"fmt"
	"os"
	"strings"
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
	nodeVFs    = 8 // every side's pods fit at once: 3 x 1,000 pods on 4,000 VFs
	// rounds split each side's pods into bursts that alternate with the other sides', so that
	// a change of the machine's load during the run falls on all sides alike.
	rounds = 4
)

// BenchmarkScheduling runs the real kube-scheduler against one API server and the same 500
// Nodes with three profiles: plexus-extender (nodeCacheCapable, the stanza it prints), a no-op
// extender with the same stanza (the floor: what the scheduler's extender calls cost by
// themselves), and none. Each schedules 1,000 one-VF pods, in four bursts of 250 created at
// once, the sides' bursts alternating (a paired run: a change of load falls on all alike). It
// prints pods/s of each, the ratio with/without (goal >= 0.8), the floor's ratio, the filter
// latency the scheduler saw (goal p99 <= 10 ms), and an open-loop filter run over the 500
// nodes.
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
	floor := stanza
	floor.URLPrefix = startNoop(b, cp)
	cp.StartScheduler(b, schedulerConfig("noop-extender", floor))
	cp.StartScheduler(b, schedulerConfig("plain"))
	with, noop, plain := newSide(ctx, b, cp, "with-extender"), newSide(ctx, b, cp, "noop-extender"), newSide(ctx, b, cp, "plain")
	per := benchPods / rounds
	for r := range rounds {
		// The extender's burst goes first in each round: the API server has the most objects
		// to hold then, not in its favour.
		with.round(ctx, b, cp, r*per, (r+1)*per)
		noop.round(ctx, b, cp, r*per, (r+1)*per)
		plain.round(ctx, b, cp, r*per, (r+1)*per)
	}
	filters := ext.filterDurations()
	prioritizes, binds := ext.callDurations("/prioritize"), ext.callDurations("/bind")

	nodes := make([]string, benchNodes)
	for i := range nodes {
		nodes[i] = fmt.Sprintf("node-%d", i)
	}
	conns := ext.conns.Load()
	open := openLoop(b, ext.url, vfPod("default", "probe", "bench-net", "with-extender", ""), nodes, 1000, 100)

	withRate, noopRate, plainRate := with.rate(), noop.rate(), plain.rate()
	ratio := withRate / plainRate
	fmt.Fprintf(os.Stdout, "extender scheduling: %d one-VF pods onto %d nodes (real kube-scheduler v1.33), %d alternating bursts of %d per side\n", benchPods, benchNodes, rounds, per)
	fmt.Fprintf(os.Stdout, "  with plexus-extender:    %7.1f pods/s (%.2f s; bursts %s)\n", withRate, with.total.Seconds(), with.bursts())
	fmt.Fprintf(os.Stdout, "  without extender:        %7.1f pods/s (%.2f s; bursts %s)\n", plainRate, plain.total.Seconds(), plain.bursts())
	fmt.Fprintf(os.Stdout, "  ratio with/without:      %7.2f (goal >= 0.8)\n", ratio)
	fmt.Fprintf(os.Stdout, "  floor: an extender that decides nothing, same verbs (filter, prioritize, bind): %.1f pods/s (%.2f s; bursts %s), ratio %.2f to without; plexus-extender reaches %.2f of it\n",
		noopRate, noop.total.Seconds(), noop.bursts(), noopRate/plainRate, withRate/noopRate)
	fmt.Fprintf(os.Stdout, "  filter calls from the scheduler: %d (pods turned away and retried: %d), server-side p50 %s, p99 %s, max %s (goal p99 <= 10 ms)\n",
		len(filters), len(filters)-benchPods, ms(percentile(filters, 0.5)), ms(percentile(filters, 0.99)), ms(percentile(filters, 1)))
	fmt.Fprintf(os.Stdout, "  prioritize calls: %d, p50 %s, p99 %s; bind calls: %d, p50 %s, p99 %s (the API server's binding included); connections the scheduler opened: %d\n",
		len(prioritizes), ms(percentile(prioritizes, 0.5)), ms(percentile(prioritizes, 0.99)), len(binds), ms(percentile(binds, 0.5)), ms(percentile(binds, 0.99)), conns)
	fmt.Fprintf(os.Stdout, "  open-loop filter, %d nodes, 1,000 calls at 100/s, from when due: p50 %s, p99 %s, max %s\n",
		benchNodes, ms(percentile(open, 0.5)), ms(percentile(open, 0.99)), ms(percentile(open, 1)))
	b.ReportMetric(withRate, "pods/s-with")
	b.ReportMetric(plainRate, "pods/s-without")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(noopRate/plainRate, "floor-ratio")
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

// side is one scheduler's share of the run: its namespace, an informer counting its pods as
// they are bound, and the time its bursts took.
type side struct {
	scheduler string
	ns        string
	mu        sync.Mutex
	seen      map[string]bool
	want      int64
	bound     atomic.Int64
	done      chan time.Time
	total     time.Duration
	each      []time.Duration
}

// newSide creates the namespace of schedulerName's pods and starts an informer over it (an
// informer, not a bare watch: it re-lists and re-watches when the API server drops the stream
// under load).
func newSide(ctx context.Context, b *testing.B, cp *controlplane.ControlPlane, schedulerName string) *side {
	b.Helper()
	s := &side{scheduler: schedulerName, ns: "bench-" + schedulerName, seen: map[string]bool{}, done: make(chan time.Time, 1)}
	createNamespace(ctx, b, cp.Client, s.ns)
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		b.Fatal(err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(s.ns))
	count := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Spec.NodeName == "" {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.seen[p.Name] {
			return
		}
		s.seen[p.Name] = true
		if s.bound.Add(1) == s.want {
			s.done <- time.Now()
		}
	}
	if _, err := factory.Core().V1().Pods().Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: count, UpdateFunc: func(_, o any) { count(o) },
	}); err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	b.Cleanup(func() { close(stop) })
	factory.Start(stop)
	factory.WaitForCacheSync(stop)
	return s
}

// round creates one-VF pods [from, to) for the side's scheduler (32 creators at once) and
// waits until all are bound; it adds the time from the first creation to the last binding.
func (s *side) round(ctx context.Context, b *testing.B, cp *controlplane.ControlPlane, from, to int) {
	b.Helper()
	s.mu.Lock()
	s.want = int64(to)
	s.mu.Unlock()
	start := time.Now()
	parallel(b, from, to, 32, func(i int) error {
		return cp.Client.Create(ctx, vfPod(s.ns, fmt.Sprintf("p-%04d", i), "default/bench-net", s.scheduler, ""))
	})
	select {
	case end := <-s.done:
		s.each = append(s.each, end.Sub(start))
		s.total += end.Sub(start)
	case <-time.After(10 * time.Minute):
		var p corev1.Pod
		_ = cp.Client.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: fmt.Sprintf("p-%04d", from)}, &p)
		b.Fatalf("%s: only %d of %d pods bound after 10 minutes; p-%04d: %+v", s.scheduler, s.bound.Load(), to, from, p.Status.Conditions)
	}
}

// rate is pods/s over the side's bursts.
func (s *side) rate() float64 { return float64(s.bound.Load()) / s.total.Seconds() }

func (s *side) bursts() string {
	out := make([]string, len(s.each))
	for i, d := range s.each {
		out[i] = fmt.Sprintf("%.2f", d.Seconds())
	}
	return strings.Join(out, "/") + " s"
}
