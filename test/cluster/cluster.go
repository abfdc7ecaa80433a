package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Cluster is a running local cluster.
type Cluster struct {
	// Kubeconfig is the path of a cluster-admin kubeconfig (<Dir>/kubeconfig).
	Kubeconfig string
	// Config reaches the API server as cluster admin.
	Config *rest.Config
	// Clientset is a client over Config.
	Clientset kubernetes.Interface
	// Nodes are the worker nodes, in order.
	Nodes []*Node
	// Timings are how long the phases of Up took.
	Timings Timings

	opts  Options
	dir   string
	addr  addressing
	state *state
	pki   *pki
}

// Timings are the durations of the phases of Up.
type Timings struct {
	// ControlPlane is from the start of Up until the API server was ready with the CRDs.
	ControlPlane time.Duration
	// NodesReady is from the start of Up until every node reported Ready.
	NodesReady time.Duration
	// Up is the whole of Up: until the nodes were also untainted by kube-controller-manager
	// and pods could be created.
	Up time.Duration
}

// Dir is the cluster's state directory.
func (c *Cluster) Dir() string { return c.dir }

// Name is the cluster's name.
func (c *Cluster) Name() string { return c.opts.Name }

// BinDir holds the Kubernetes binaries the cluster runs (kubectl among them).
func (c *Cluster) BinDir() string { return c.opts.BinDir }

// Up brings up a cluster as opts describe and returns once every node is Ready. A cluster
// left in opts.Dir by an earlier run is torn down first, unless the process that brought it up
// still runs (a test or demo using it): then Up fails. When Up fails it tears down what it
// started; the logs stay in <Dir>/logs.
func Up(ctx context.Context, opts Options) (_ *Cluster, err error) {
	begin := time.Now()
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	log := logr.FromContextOrDiscard(ctx).WithValues("cluster", opts.Name)
	need := []string{"etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager"}
	if opts.Nodes > 0 {
		need = append(need, "kubelet")
	}
	if err := checkBinaries(opts.BinDir, need...); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	// Two Ups on one directory: the second waits for the first to record itself as the owner,
	// then refuses.
	unlock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if unlock != nil {
			unlock()
		}
	}()
	if err := checkNotInUse(opts.Dir); err != nil {
		return nil, err
	}
	if err := Down(ctx, opts.Dir); err != nil {
		return nil, fmt.Errorf("tearing down the cluster left in %s: %w", opts.Dir, err)
	}
	c := &Cluster{
		Kubeconfig: filepath.Join(opts.Dir, "kubeconfig"),
		opts:       opts,
		dir:        opts.Dir,
		addr:       addressing{id: opts.NetworkID},
		state:      newState(opts.Dir, opts.Name),
	}
	self := os.Getpid()
	st, _ := startTime(self)
	if err := c.state.record(func(s *state) { s.Owner = &process{Name: "owner", PID: self, StartTime: st} }); err != nil {
		return nil, err
	}
	unlock()
	unlock = nil
	defer func() {
		if err != nil {
			log.Info("Up failed; tearing down", "error", err.Error(), "logs", filepath.Join(opts.Dir, "logs"))
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if derr := Down(dctx, opts.Dir); derr != nil {
				err = errors.Join(err, fmt.Errorf("and tearing down: %w", derr))
			}
		}
	}()
	if err := c.createHostNetwork(ctx); err != nil {
		return nil, err
	}
	if err := c.startControlPlane(ctx); err != nil {
		return nil, err
	}
	// The nodes are prepared (namespaces, containerd, images) while the API server starts.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := c.finishControlPlane(gctx); err != nil {
			return err
		}
		c.Timings.ControlPlane = time.Since(begin)
		log.Info("control plane ready", "took", c.Timings.ControlPlane.Round(time.Millisecond), "kubeconfig", c.Kubeconfig)
		return nil
	})
	if opts.Nodes > 0 {
		g.Go(func() error { return c.startNodes(gctx) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if opts.Nodes > 0 {
		// Kubelets started before the API server answers back off for seconds.
		if err := c.startKubelets(); err != nil {
			return nil, err
		}
		if err := c.waitNodesReady(ctx, begin); err != nil {
			return nil, err
		}
		log.Info("nodes ready", "nodes", opts.Nodes, "took", c.Timings.NodesReady.Round(time.Millisecond))
	}
	c.Timings.Up = time.Since(begin)
	return c, nil
}

// Down tears the cluster down; see Down (the function).
func (c *Cluster) Down(ctx context.Context) error { return Down(ctx, c.dir) }

// Down tears down the cluster whose state is in dir: it kills every process of the cluster
// (the recorded ones, every process left in a node's mount namespace, network namespace or
// cgroups), removes the nodes' network namespaces, cgroups and host links and the mount points
// it created on the host, then the state directory except its logs. It works after a crash of
// whatever ran Up, and does nothing when dir holds no cluster.
func Down(ctx context.Context, dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	s, err := loadState(dir)
	if err != nil {
		return err
	}
	if s.Name == "" && len(s.Processes) == 0 && len(s.NetNS) == 0 && len(s.Links) == 0 {
		if _, err := os.Stat(s.path); err == nil {
			return removeState(dir)
		}
		return nil
	}
	if err := killCluster(ctx, s); err != nil {
		return err
	}
	var errs []error
	for _, ns := range s.NetNS {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
			if err := run(ctx, "ip", "netns", "del", ns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, l := range s.Links {
		if _, err := os.Stat(filepath.Join("/sys/class/net", l)); err == nil {
			// Deleting a node's netns also deletes its veth's host end, a moment later.
			if err := run(ctx, "ip", "link", "del", l); err != nil && linkExists(l) {
				errs = append(errs, err)
			}
		}
	}
	for _, cg := range s.Cgroups {
		if err := removeCgroup(ctx, cg); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeHostDirs(s.HostDirs); err != nil {
		errs = append(errs, err)
	}
	if s.Sysctls {
		if err := releaseSysctls(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return removeState(dir)
}

// removeState removes the state directory but its logs.
func removeState(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() == "logs" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("removing the cluster state: %w", err)
		}
	}
	return nil
}

// killCluster kills every process of the cluster and waits for them to be gone.
func killCluster(ctx context.Context, s *state) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Processes keep appearing while containerd and kubelet live (shims, runc), so take
	// several rounds until a round finds nothing.
	for round := 0; ; round++ {
		pids := clusterPIDs(s)
		if len(pids) == 0 {
			return nil
		}
		if err := killAll(ctx, pids); err != nil {
			return fmt.Errorf("killing the cluster's processes %v: %w", pids, err)
		}
		if round > 20 {
			return fmt.Errorf("processes of the cluster keep appearing: %v", pids)
		}
	}
}

// clusterPIDs lists the live processes of the cluster: the recorded ones still matching their
// start times, every process in a recorded mount namespace, and every process in the cgroups.
func clusterPIDs(s *state) []int {
	seen := map[int]bool{}
	for _, p := range s.Processes {
		if st, err := startTime(p.PID); err == nil && st == p.StartTime && alive(p.PID) {
			seen[p.PID] = true
		}
	}
	if len(s.MountNS) > 0 {
		// A namespace's inode number is reused once the namespace is gone: a recorded number
		// names the node's namespace only while a recorded process (holder, containerd, kubelet)
		// lives in it, or for containerd's shims, which nothing else runs.
		recorded := map[uint64]bool{}
		for _, m := range s.MountNS {
			recorded[m] = true
		}
		confirmed := map[uint64]bool{}
		for pid := range seen {
			if ino, err := nsInode(pid, "mnt"); err == nil && recorded[ino] {
				confirmed[ino] = true
			}
		}
		self := os.Getpid()
		for _, pid := range allPIDs() {
			if pid == self || !alive(pid) {
				continue
			}
			ino, err := nsInode(pid, "mnt")
			if err != nil || !recorded[ino] {
				continue
			}
			if confirmed[ino] || isShim(pid) {
				seen[pid] = true
			}
		}
	}
	for _, cg := range s.Cgroups {
		for _, pid := range cgroupPIDs(cg) {
			if alive(pid) {
				seen[pid] = true
			}
		}
	}
	pids := make([]int, 0, len(seen))
	for p := range seen {
		pids = append(pids, p)
	}
	return pids
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// ErrInUse is wrapped by Up's errors that mean another cluster holds what this one needs (its
// directory, name or network ID): another choice may succeed.
var ErrInUse = errors.New("in use by another cluster")

// checkNotInUse fails when dir holds a cluster whose owner (the process that ran Up) still
// runs, so that a second test run or demo never tears down a cluster in use. A cluster left by
// `plexus-sandbox up`, whose owner exits at once, or by a crashed process, is not in use.
func checkNotInUse(dir string) error {
	s, err := loadState(dir)
	if err != nil || s.Owner == nil || s.Owner.PID == os.Getpid() {
		return err
	}
	if st, err := startTime(s.Owner.PID); err == nil && st == s.Owner.StartTime && alive(s.Owner.PID) {
		return fmt.Errorf("the cluster in %s is %w: process %d, which brought it up, still runs; stop it, or choose another directory (and name and network ID)", dir, ErrInUse, s.Owner.PID)
	}
	return nil
}

// isShim says whether pid runs a containerd shim.
func isShim(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && strings.HasPrefix(string(b), "containerd-shim")
}

// lockDir takes an exclusive flock on dir, waiting for it, and returns its release.
func lockDir(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
