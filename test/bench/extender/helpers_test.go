package extender

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/deviceplugin/capacity"
	"github.com/plexus-project/plexus/extender"
	"github.com/plexus-project/plexus/extender/app"
	"github.com/plexus-project/plexus/extender/server"
	"github.com/plexus-project/plexus/extender/watch"
	"github.com/plexus-project/plexus/test/controlplane"
)

const vf = corev1.ResourceName("intel.com/sriov_netdevice")

// running is an extender (the watch-fed Cluster and the binder behind the server's handler, as
// app.Run wires them) served on loopback, whose filter calls are timed where they are handled.
type running struct {
	url     string
	cluster *extender.Cluster
	stop    func()

	// conns counts the TCP connections the scheduler opened to the extender.
	conns atomic.Int64

	mu      sync.Mutex
	filters []time.Duration
	calls   map[string][]time.Duration // every verb, by path
}

func startExtender(tb testing.TB, cp *controlplane.ControlPlane) *running {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cluster := extender.NewCluster(extender.Options{})
	w, err := watch.New(ctx, cp.Config, cluster)
	if err != nil {
		tb.Fatal(err)
	}
	binder, err := app.NewBinder(cp.Config)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := server.New(server.Options{Decider: cluster, Ready: w.Synced, Binder: binder})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r := &running{url: "http://" + ln.Addr().String() + "/", cluster: cluster, calls: map[string][]time.Duration{}}
	h := srv.Handler()
	timed := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, req)
		d := time.Since(start)
		r.mu.Lock()
		if req.URL.Path == "/filter" {
			r.filters = append(r.filters, d)
		}
		r.calls[req.URL.Path] = append(r.calls[req.URL.Path], d)
		r.mu.Unlock()
	})
	hs := &http.Server{Handler: timed, ReadHeaderTimeout: 5 * time.Second, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			r.conns.Add(1)
		}
	}}
	go func() { _ = w.Run(ctx) }()
	go func() { _ = hs.Serve(ln) }()
	var once sync.Once
	r.stop = func() { once.Do(func() { _ = hs.Close(); cancel() }) }
	tb.Cleanup(r.stop)
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) { return w.Synced(), nil }); err != nil {
		tb.Fatalf("extender caches not synced: %v", err)
	}
	return r
}

// callDurations is how long each verb took to handle.
func (r *running) callDurations(path string) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration{}, r.calls[path]...)
}

func (r *running) filterDurations() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration{}, r.filters...)
}

// createNodes creates n Ready, untainted Nodes named prefix-i with vfs VFs, 16 at a time.
func createNodes(ctx context.Context, tb testing.TB, cp *controlplane.ControlPlane, prefix string, from, to int, vfs int64, labels map[string]string) {
	tb.Helper()
	parallel(tb, from, to, 16, func(i int) error {
		l := map[string]string{"kubernetes.io/hostname": fmt.Sprintf("%s-%d", prefix, i)}
		for k, v := range labels {
			l[k] = v
		}
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i), Labels: l,
			Annotations: map[string]string{capacity.Annotation: publishedCapacity(vfs)}}}
		cp.CreateNode(ctx, tb, node, corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("256Gi"),
			corev1.ResourcePods: resource.MustParse("250"), vf: *resource.NewQuantity(vfs, resource.DecimalSI),
		})
		return nil
	})
}

// publishedCapacity is what plexus-deviceplugin would publish for vfs VFs on two NUMA nodes,
// one PF each, all free.
func publishedCapacity(vfs int64) string {
	half := int(vfs / 2)
	c := capacity.Count{Healthy: half, Free: half}
	pc := capacity.PoolCapacity{Count: capacity.Count{Healthy: 2 * half, Free: 2 * half},
		NUMA: map[string]capacity.Count{"0": c, "1": c},
		PFs: map[string]capacity.PFCount{
			"0000:3b:00.0": {Count: c, Name: "ens1f0", NUMA: 0},
			"0000:af:00.0": {Count: c, Name: "ens2f0", NUMA: 1},
		}}
	b, _ := json.Marshal(capacity.NodeCapacity{Pools: map[string]capacity.PoolCapacity{string(vf): pc}})
	return string(b)
}

// parallel runs f(i) for i in [from, to) on workers goroutines.
func parallel(tb testing.TB, from, to, workers int, f func(i int) error) {
	tb.Helper()
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := from; i < to; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

func benchNAD(name, resourceName, selector string) *nadv1.NetworkAttachmentDefinition {
	nad := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: map[string]string{
		network.ResourceNameAnnotation: resourceName,
	}}}
	if selector != "" {
		nad.Annotations[network.NodeSelectorAnnotation] = selector
	}
	nad.Spec.Config = fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"plexus-sriov"}`, name)
	return nad
}

func vfPod(namespace, name, networks, schedulerName, nodeName string) *corev1.Pod {
	q := corev1.ResourceList{vf: resource.MustParse("1")}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Annotations: map[string]string{network.NetworksAnnotation: networks}},
		Spec: corev1.PodSpec{SchedulerName: schedulerName, NodeName: nodeName, Containers: []corev1.Container{{
			Name: "app", Image: "busybox", Resources: corev1.ResourceRequirements{Requests: q, Limits: q},
		}}},
	}
}

func createNamespace(ctx context.Context, tb testing.TB, c client.Client, name string) {
	tb.Helper()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		tb.Fatal(err)
	}
}

// openLoop sends calls filter requests for pod against nodes at rate per second, each due at
// its slot whether or not earlier ones returned, and returns each call's latency from when it
// was due (no coordinated omission). The calls are retries of one pod, as the scheduler makes
// them: each replaces the pod's assumption, so the cluster's state stays the same.
func openLoop(tb testing.TB, url string, pod *corev1.Pod, nodes []string, calls, rate int) []time.Duration {
	tb.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	lat := make([]time.Duration, calls)
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	var failures sync.Map
	body, err := json.Marshal(extenderv1.ExtenderArgs{Pod: pod, NodeNames: &nodes})
	if err != nil {
		tb.Fatal(err)
	}
	for i := range calls {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := hc.Post(url+"filter", "application/json", bytes.NewReader(body))
			if err != nil {
				failures.Store(i, err)
				return
			}
			// Only the error is read: decoding 5,000 names here would bill the extender's
			// process (this one) with the client's garbage.
			var res struct{ Error string }
			err = json.NewDecoder(resp.Body).Decode(&res)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat[i] = time.Since(due)
			if err != nil || res.Error != "" {
				failures.Store(i, fmt.Errorf("%v %s", err, res.Error))
			}
		}()
	}
	wg.Wait()
	failures.Range(func(k, v any) bool { tb.Fatalf("filter call %v: %v", k, v); return false })
	return lat
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration{}, d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// startNoop serves the verbs of the extender's stanza with no decision behind them: filter
// keeps every node it is given, prioritize prefers none, bind binds. Configured like
// plexus-extender, it is the floor of any extender on this machine: what the scheduler's calls
// themselves cost.
func startNoop(tb testing.TB, cp *controlplane.ControlPlane) string {
	tb.Helper()
	binder, err := app.NewBinder(cp.Config)
	if err != nil {
		tb.Fatal(err)
	}
	answer := func(w http.ResponseWriter, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		_, _ = w.Write(b)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /filter", func(w http.ResponseWriter, r *http.Request) {
		var args extenderv1.ExtenderArgs
		if err := json.NewDecoder(r.Body).Decode(&args); err != nil {
			answer(w, extenderv1.ExtenderFilterResult{Error: err.Error()})
			return
		}
		answer(w, extenderv1.ExtenderFilterResult{NodeNames: args.NodeNames, FailedNodes: extenderv1.FailedNodesMap{}, FailedAndUnresolvableNodes: extenderv1.FailedNodesMap{}})
	})
	mux.HandleFunc("POST /prioritize", func(w http.ResponseWriter, r *http.Request) {
		var args extenderv1.ExtenderArgs
		if err := json.NewDecoder(r.Body).Decode(&args); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		answer(w, extenderv1.HostPriorityList{})
	})
	mux.HandleFunc("POST /bind", func(w http.ResponseWriter, r *http.Request) {
		var args extenderv1.ExtenderBindingArgs
		if err := json.NewDecoder(r.Body).Decode(&args); err != nil {
			answer(w, extenderv1.ExtenderBindingResult{Error: err.Error()})
			return
		}
		err := binder.Bind(r.Context(), &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Namespace: args.PodNamespace, Name: args.PodName, UID: args.PodUID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: args.Node},
		})
		res := extenderv1.ExtenderBindingResult{}
		if err != nil {
			res.Error = err.Error()
		}
		answer(w, res)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	tb.Cleanup(func() { _ = hs.Close() })
	return "http://" + ln.Addr().String() + "/"
}
