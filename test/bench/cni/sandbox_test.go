package cni

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/test/cluster"
	"github.com/plexus-project/plexus/test/cluster/demo"
	"github.com/plexus-project/plexus/test/repo"
)

// daemonUser is plexus-daemon's identity: the chart's ServiceAccount.
const daemonUser = demo.DaemonUser

// sandbox is a 2-node cluster with plexus, plexus-daemon and plexus-ipam installed, and the
// API server auditing the daemon's requests.
type sandbox struct {
	*cluster.Cluster
	// fast is a client without client-side rate limits, so a burst is not spread by the client.
	fast kubernetes.Interface
	nads nadclient.Interface
}

// upSandbox builds the Plexus commands and brings the cluster up (edit adjusts its options),
// installs Plexus's CNI, and tears it down when b ends.
func upSandbox(b *testing.B, edit func(*cluster.Options)) *sandbox {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("the local cluster needs root (network namespaces, mounts, cgroups)")
	}
	root, err := repo.Root()
	if err != nil {
		b.Fatal(err)
	}
	// The build has its own bound: on a loaded machine it may take most of ten minutes.
	bctx, bcancel := context.WithTimeout(context.Background(), 20*time.Minute)
	build, err := cluster.BuildPlexus(bctx, root, b.TempDir(), "plexus-sandbox")
	bcancel()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// The emulated SR-IOV tree: the chart's sandbox values mount it into the daemon (for
	// plexus-sriov), so without it the daemon's pod never starts.
	opts := cluster.Options{Nodes: 2, AuditUsers: []string{daemonUser}, SRIOV: &cluster.SRIOVOptions{}}
	demo.WithPlexus(&opts, build)
	if edit != nil {
		edit(&opts)
	}
	var c *cluster.Cluster
	for _, id := range []int{12, 13, 14} {
		opts.Name = fmt.Sprintf("cni%d", id)
		opts.Dir = filepath.Join(os.TempDir(), "plexus-"+opts.Name)
		opts.NetworkID = id
		if c, err = cluster.Up(ctx, opts); !errors.Is(err, cluster.ErrInUse) {
			break
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := c.Down(dctx); err != nil {
			b.Error(err)
		} else if !b.Failed() {
			_ = os.RemoveAll(c.Dir()) // the logs, kept for a failure
		}
	})
	for _, bin := range []string{"plexus-ipam", "plexus-daemon", "plexus"} {
		if err := demo.Install(ctx, c, bin); err != nil {
			b.Fatal(err)
		}
	}
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = -1, 0
	fast, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	nads, err := nadclient.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return &sandbox{Cluster: c, fast: fast, nads: nads}
}

// createNAD creates a NetworkAttachmentDefinition in default.
func (s *sandbox) createNAD(ctx context.Context, name, config string) error {
	nad := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: config}}
	_, err := s.nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions("default").Create(ctx, nad, metav1.CreateOptions{})
	return err
}

// macvlanNAD is a macvlan network on the node's eth0 with ipam as its IPAM section.
func macvlanNAD(name, ipam string) string {
	return fmt.Sprintf(`{"cniVersion": "1.0.0", "name": %q, "type": "macvlan", "master": "eth0", "mode": "bridge", "ipam": %s}`, name, ipam)
}

// burstPods are n busybox pods labelled burst=<name>, alternating between the nodes, each
// selecting nets.
func (s *sandbox) burstPods(name string, n int, nets []string) []*corev1.Pod {
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", name, i), Namespace: "default", Labels: map[string]string{"burst": name}},
			Spec: corev1.PodSpec{
				NodeSelector:                  map[string]string{corev1.LabelHostname: s.Nodes[i%len(s.Nodes)].Name},
				TerminationGracePeriodSeconds: new(int64),
				Containers: []corev1.Container{{Name: "main", Image: cluster.BusyboxImage, ImagePullPolicy: corev1.PullNever,
					Command: []string{"sleep", "3600"}}},
			},
		}
		if len(nets) > 0 {
			p.Annotations = map[string]string{network.NetworksAnnotation: strings.Join(nets, ", ")}
		}
		pods[i] = p
	}
	return pods
}

// burst is what one burst of pods measured.
type burst struct {
	name string
	// wall is from when the burst was due until the last pod was seen Running.
	wall time.Duration
	// latencies are each pod's create-to-Running, from when the burst was due (every create
	// is due at once: a create the client or the API server queued counts its wait).
	latencies []time.Duration
	// retried counts the pods kubelet had to create a sandbox for more than once
	// (a FailedCreatePodSandBox Event).
	retried int
}

func (r burst) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	ls := append([]time.Duration(nil), r.latencies...)
	sort.Slice(ls, func(i, j int) bool { return ls[i] < ls[j] })
	idx := max(0, min(int(p/100*float64(len(ls))+0.5)-1, len(ls)-1))
	return ls[idx]
}

// runBurst creates pods all at once and waits until every one is Running (watched, so the
// time is when the API server said so), then counts the sandboxes kubelet retried.
func (s *sandbox) runBurst(ctx context.Context, name string, pods []*corev1.Pod, timeout time.Duration) (burst, error) {
	res := burst{name: name}
	var mu sync.Mutex
	running := map[string]time.Time{}
	all := make(chan struct{})
	factory := informers.NewSharedInformerFactoryWithOptions(s.fast, 0, informers.WithNamespace("default"),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = "burst=" + name }))
	inf := factory.Core().V1().Pods().Informer()
	see := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Status.Phase != corev1.PodRunning {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if _, seen := running[p.Name]; !seen {
			running[p.Name] = time.Now()
			if len(running) == len(pods) {
				close(all)
			}
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: see, UpdateFunc: func(_, o any) { see(o) }}); err != nil {
		return res, err
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	factory.Start(wctx.Done())
	factory.WaitForCacheSync(wctx.Done())

	start := time.Now()
	errs := make(chan error, len(pods))
	for _, p := range pods {
		go func() {
			_, err := s.fast.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
			errs <- err
		}()
	}
	for range pods {
		if err := <-errs; err != nil {
			return res, fmt.Errorf("creating a pod of burst %s: %w", name, err)
		}
	}
	select {
	case <-all:
	case <-time.After(timeout):
		mu.Lock()
		n := len(running)
		mu.Unlock()
		return res, fmt.Errorf("burst %s: %d of %d pods Running after %s", name, n, len(pods), timeout)
	case <-ctx.Done():
		return res, ctx.Err()
	}
	mu.Lock()
	for _, t := range running {
		d := t.Sub(start)
		res.latencies = append(res.latencies, d)
		res.wall = max(res.wall, d)
	}
	mu.Unlock()
	evs, err := s.fast.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "reason=FailedCreatePodSandBox"})
	if err != nil {
		return res, err
	}
	retried := map[string]bool{}
	for _, e := range evs.Items {
		if strings.HasPrefix(e.InvolvedObject.Name, name+"-") {
			retried[e.InvolvedObject.Name] = true
		}
	}
	res.retried = len(retried)
	return res, nil
}

// deleteBurst deletes the pods of burst name and waits until they are gone (their CNI DELs
// done).
func (s *sandbox) deleteBurst(ctx context.Context, name string) error {
	sel := metav1.ListOptions{LabelSelector: "burst=" + name}
	if err := s.fast.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{}, sel); err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := s.fast.CoreV1().Pods("default").List(ctx, sel)
		return err == nil && len(l.Items) == 0, nil
	})
}

// rssSampler records the peak resident memory of every node's plexus-daemon.
type rssSampler struct {
	stop chan struct{}
	done chan struct{}
	peak int64 // bytes, the largest of any node's daemon
}

// daemonRestarts describes the daemon pods' restarts, with the last lines a restarted one
// logged before it ended, for a failure that met more than one daemon process on a node.
func (s *sandbox) daemonRestarts(ctx context.Context) string {
	pods, err := s.fast.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return "listing the daemon pods: " + err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		if !strings.Contains(p.Name, "daemon") {
			continue
		}
		for _, cs := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, "pod %s/%s container %s: %d restarts", p.Namespace, p.Name, cs.Name, cs.RestartCount)
			if t := cs.LastTerminationState.Terminated; t != nil {
				fmt.Fprintf(&b, ", last ended %s (exit %d, %s) %s", t.FinishedAt.Format(time.RFC3339), t.ExitCode, t.Reason, t.Message)
				tail := int64(40)
				logs, err := s.fast.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: cs.Name, Previous: true, TailLines: &tail}).DoRaw(ctx)
				if err == nil {
					fmt.Fprintf(&b, "\n%s", logs)
				}
			}
			b.WriteByte('\n')
		}
	}
	evs, err := s.fast.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, e := range evs.Items {
			if strings.Contains(e.InvolvedObject.Name, "daemon") && e.Type == corev1.EventTypeWarning {
				fmt.Fprintf(&b, "event %s %s: %s\n", e.InvolvedObject.Name, e.Reason, e.Message)
			}
		}
	}
	return b.String()
}

// sampleRSS starts sampling the daemons' VmRSS every 10 ms until Stop.
func (s *sandbox) sampleRSS() (*rssSampler, error) {
	var pids []int
	for _, n := range s.Nodes {
		p, err := n.ProcessPIDs("plexus-daemon")
		if err != nil {
			return nil, err
		}
		if len(p) != 1 {
			return nil, fmt.Errorf("node %s runs %d plexus-daemon processes, want one", n.Name, len(p))
		}
		pids = append(pids, p...)
	}
	r := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, pid := range pids {
				if v, err := vmRSS(pid); err == nil {
					r.peak = max(r.peak, v)
				}
			}
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return r, nil
}

// Stop ends sampling and returns the peak in bytes.
func (r *rssSampler) Stop() int64 {
	close(r.stop)
	<-r.done
	return r.peak
}

// vmRSS is the resident set size of pid in bytes (/proc/<pid>/status VmRSS).
func vmRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("pid %d: no VmRSS", pid)
}

// auditOffset is where the audit log ends now: requests after it are counted.
func (s *sandbox) auditOffset() (int64, error) {
	st, err := os.Stat(s.AuditLogPath())
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// daemonRequests returns the daemon's requests logged after offset.
func (s *sandbox) daemonRequests(offset int64) ([]cluster.AuditEvent, error) {
	f, err := os.Open(s.AuditLogPath())
	if err != nil {
		return nil, fmt.Errorf("the API server's audit log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, err
	}
	return cluster.ReadAudit(f, daemonUser)
}

// waitAuditQuiet waits until the audit log has not grown for quiet (at most limit): the
// daemon's work for the previous burst (releases after the pods went) is then done and not
// counted in the next.
func (s *sandbox) waitAuditQuiet(ctx context.Context, quiet, limit time.Duration) error {
	last, err := s.auditOffset()
	if err != nil {
		return err
	}
	since := time.Now()
	deadline := time.Now().Add(limit)
	for time.Since(since) < quiet {
		if time.Now().After(deadline) {
			return nil // a daemon that never goes quiet: counted, and the detail shows it
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		now, err := s.auditOffset()
		if err != nil {
			return err
		}
		if now != last {
			last, since = now, time.Now()
		}
	}
	return nil
}

// waitDaemonQuiet waits until the daemon has made no request logged after offset for quiet (at
// most limit): what it writes after the pods run (the IPAM agent's journaled changes, written
// --ipam-flush-after later; its holds given back when idle) is then counted with the burst that
// caused it.
func (s *sandbox) waitDaemonQuiet(ctx context.Context, offset int64, quiet, limit time.Duration) error {
	last, since, deadline := -1, time.Now(), time.Now().Add(limit)
	for time.Since(since) < quiet && time.Now().Before(deadline) {
		reqs, err := s.daemonRequests(offset)
		if err != nil {
			return err
		}
		if len(reqs) != last {
			last, since = len(reqs), time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

// cniRequests are the requests of the daemon's CNI server: everything but the IPAM agent's
// (which shares the daemon's identity and writes ipam.plexus.io blocks).
func cniRequests(events []cluster.AuditEvent) int {
	n := 0
	for _, e := range events {
		if e.ObjectRef == nil || !strings.HasPrefix(e.ObjectRef.Resource, "ip") {
			n++
		}
	}
	return n
}

// byVerb summarises requests as "patch pods/status x30, ...".
func byVerb(events []cluster.AuditEvent) string {
	counts := map[string]int{}
	for _, e := range events {
		counts[e.Verb+" "+e.Resource()]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s x%d", k, counts[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// kubectlApply applies YAML with the cluster's kubectl.
func kubectlApply(ctx context.Context, c *cluster.Cluster, yaml string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir(), "kubectl"), "--kubeconfig", c.Kubeconfig, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(yaml)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl apply: %w: %s", err, out)
	}
	return nil
}
