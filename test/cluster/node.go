package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-project/plexus/internal/images"
)

// Node is a worker node: a containerd and a kubelet in their own network and mount namespaces.
type Node struct {
	// Name is the Kubernetes node name, also the name of its network namespace and cgroup.
	Name string
	// Index counts nodes from 1.
	Index int
	// IP is the node's address on the node network (its eth0).
	IP string
	// PodCIDR is the node's pod network.
	PodCIDR string
	// Dir is the node's state directory; Root below it holds what the node sees at
	// /var/lib/kubelet, /run/containerd, /etc/cni/net.d, /opt/cni/bin and the other bind mounts.
	Dir string
	// HolderPID is the process that holds the node's mount namespace; `nsenter -t HolderPID
	// -m -n` runs a command on the node.
	HolderPID int
	// VFs are the node's emulated SR-IOV virtual functions (none without Options.SRIOV).
	VFs []VF
}

// Root is the host directory bind-mounted at / paths inside the node (Root/var/lib/kubelet is
// the node's /var/lib/kubelet).
func (n *Node) Root() string { return filepath.Join(n.Dir, "root") }

// HostPath is where the host sees the node's path p (one of the bind-mounted directories).
func (n *Node) HostPath(p string) string { return filepath.Join(n.Root(), p) }

// InstallFile copies the host file src to path on the node, with mode.
func (n *Node) InstallFile(src, path string, mode os.FileMode) error {
	return copyFile(src, n.HostPath(path), mode)
}

// containerdSocket is the node's containerd socket as the node sees it.
const containerdSocket = "/run/containerd/containerd.sock"

// nodeBinds are the directories each node has to itself, bind-mounted from Node.Root.
var nodeBinds = []string{
	"/var/lib/kubelet", "/run/containerd", "/etc/cni/net.d", "/opt/cni/bin", "/var/lib/cni",
	"/run/k8s.cni.cncf.io", "/var/log/pods", "/var/log/containers", "/opt/containerd",
	"/var/lib/plexus", "/run/plexus", "/etc/plexus", "/run/plexus-ipam", "/run/netns",
}

// sharedBinds are the node directories whose later mounts reach the node's pods (a hostPath
// with mountPropagation HostToContainer needs a shared source): /run/netns, where containerd
// pins pod network namespaces for the CNI.
var sharedBinds = []string{"/run/netns"}

func (c *Cluster) nodeNames() []string {
	names := make([]string, c.opts.Nodes)
	for i := range names {
		names[i] = fmt.Sprintf("%s-node%d", c.opts.Name, i+1)
	}
	return names
}

// startNodes builds the images and prepares every node up to its kubelet.
func (c *Cluster) startNodes(ctx context.Context) error {
	imgs, err := baseImages()
	if err != nil {
		return err
	}
	imgs = append(imgs, c.opts.Images...)
	if ref := c.opts.SecondSchedulerImage; ref != "" {
		imgs = append(imgs, images.KubeSchedulerImage(ref, c.bin("kube-scheduler")))
	}
	archive := filepath.Join(c.dir, "images.tar")
	if err := writeImages(archive, imgs); err != nil {
		return fmt.Errorf("writing the images: %w", err)
	}
	for i, name := range c.nodeNames() {
		c.Nodes = append(c.Nodes, &Node{
			Name: name, Index: i + 1,
			IP:      c.addr.NodeIP(i + 1).String(),
			PodCIDR: c.addr.PodPrefix(i + 1).String(),
			Dir:     filepath.Join(c.dir, "nodes", name),
		})
	}
	if err := c.saveSysctls(); err != nil {
		return err
	}
	// Mount points on the host are created once, before the nodes race for them, and no other
	// cluster's Down may remove them until the nodes have mounted over them.
	unlock, err := lockHostDirs()
	if err != nil {
		return err
	}
	defer unlock()
	for _, p := range nodeBinds {
		if err := c.mkdirHost(p); err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, n := range c.Nodes {
		g.Go(func() error {
			if err := c.startNode(gctx, n, archive); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// startNode wires node n's network, cgroups and mounts, then starts its containerd and
// imports the images; startKubelet follows once the API server is ready.
func (c *Cluster) startNode(ctx context.Context, n *Node, archive string) error {
	for _, p := range nodeBinds {
		if err := os.MkdirAll(n.HostPath(p), 0o755); err != nil {
			return err
		}
	}
	if err := c.createNodeNetwork(ctx, n); err != nil {
		return err
	}
	if cgroupExists(n.Name) {
		return fmt.Errorf("cgroup %s exists: %w named %s", n.Name, ErrInUse, c.opts.Name)
	}
	if err := c.state.record(func(s *state) { s.Cgroups = append(s.Cgroups, n.Name) }); err != nil {
		return err
	}
	if err := createCgroup(n.Name); err != nil {
		return err
	}
	if err := c.writeNodeConfig(n); err != nil {
		return err
	}
	if c.opts.SRIOV != nil {
		if err := c.createVFs(ctx, n); err != nil {
			return fmt.Errorf("emulating SR-IOV: %w", err)
		}
	}
	if err := c.startHolder(ctx, n); err != nil {
		return err
	}
	// CNI plugins inherit containerd's environment: they learn the node's name from it.
	nodeEnv := []string{"NODE_NAME=" + n.Name, "KUBERNETES_NODE_NAME=" + n.Name}
	if _, err := c.start(n.Name+"-containerd", append(n.enter(), "containerd", "--config", filepath.Join(n.Dir, "containerd.toml")), nodeEnv); err != nil {
		return err
	}
	sock := n.HostPath(containerdSocket)
	if err := waitSocket(ctx, sock, 30*time.Second); err != nil {
		return fmt.Errorf("containerd did not start (see %s): %w", c.logPath(n.Name+"-containerd"), err)
	}
	return importImages(ctx, sock, archive)
}

// startKubelets starts the kubelet of every node.
func (c *Cluster) startKubelets() error {
	for _, n := range c.Nodes {
		if err := c.startKubelet(n); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) startKubelet(n *Node) error {
	if _, err := c.start(n.Name+"-kubelet", append(n.enter(), c.bin("kubelet"),
		"--config="+filepath.Join(n.Dir, "kubelet.yaml"),
		"--kubeconfig="+filepath.Join(n.Dir, "kubeconfig"),
		"--hostname-override="+n.Name, "--node-ip="+n.IP, "--v=1",
	), nil); err != nil {
		return err
	}
	return nil
}

// startHolder starts the process that owns the node's mount namespace: in the node's network
// namespace, a UTS namespace whose host name is the node's, a private mount namespace with
// the node's directories bind-mounted, a sysfs that shows the node's interfaces, and the
// host's cgroup hierarchies mounted back on top. It is nsenter --net + unshare --mount, not
// `ip netns exec`, which mounts a fresh sysfs and so loses /sys/fs/cgroup.
func (c *Cluster) startHolder(ctx context.Context, n *Node) error {
	hold := filepath.Join(n.Dir, "cgroup-hold")
	ready := filepath.Join(n.Dir, "holder-ready")
	if err := os.MkdirAll(hold, 0o755); err != nil {
		return err
	}
	var sh strings.Builder
	sh.WriteString("set -e\n")
	fmt.Fprintf(&sh, "hostname %q\n", n.Name)
	for _, p := range sharedBinds {
		// The host's own mount there (iproute2 bind-mounts /run/netns onto itself), copied
		// private into this namespace, would sit under the node's: containerd checks the
		// first mount it finds at the path, so the node's must be the only one.
		fmt.Fprintf(&sh, "while mountpoint -q %q; do umount -l %q; done\n", p, p)
	}
	for _, p := range nodeBinds {
		fmt.Fprintf(&sh, "mount --bind %q %q\n", n.HostPath(p), p)
	}
	for _, p := range sharedBinds {
		fmt.Fprintf(&sh, "mount --make-shared %q\n", p)
	}
	fmt.Fprintf(&sh, "mount --rbind /sys/fs/cgroup %q\n", hold)
	sh.WriteString("mount -t sysfs sysfs /sys\n")
	fmt.Fprintf(&sh, "mount --rbind %q /sys/fs/cgroup\n", hold)
	fmt.Fprintf(&sh, "umount -l %q\n", hold)
	fmt.Fprintf(&sh, "touch %q\n", ready)
	sh.WriteString("exec sleep infinity\n")
	p, err := c.start(n.Name+"-holder", []string{"nsenter", "--net=/run/netns/" + n.Name, "--",
		"unshare", "--mount", "--uts", "--propagation", "private", "--", "/bin/sh", "-c", sh.String()}, nil)
	if err != nil {
		return err
	}
	n.HolderPID = p.Pid
	if err := waitFile(ctx, ready, 10*time.Second); err != nil {
		return fmt.Errorf("the node's mount namespace was not set up (see %s): %w", c.logPath(n.Name+"-holder"), err)
	}
	ino, err := nsInode(p.Pid, "mnt")
	if err != nil {
		return err
	}
	return c.state.record(func(s *state) { s.MountNS = append(s.MountNS, ino) })
}

// waitNodesReady waits until every node reports Ready and has lost the not-ready taint (which
// kube-controller-manager removes), and the default service account exists (pods are refused
// before). It sets Timings.NodesReady, counting from begin, when every node reports Ready.
func (c *Cluster) waitNodesReady(ctx context.Context, begin time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	last := ""
	for {
		pending, err := c.pendingNodes(ctx)
		if err == nil && c.Timings.NodesReady == 0 && !slices.ContainsFunc(pending, func(p string) bool { return !strings.HasSuffix(p, "(taint)") }) {
			c.Timings.NodesReady = time.Since(begin)
		}
		if now := fmt.Sprint(pending); now != last {
			logr.FromContextOrDiscard(ctx).V(1).Info("waiting for nodes", "pending", pending)
			last = now
		}
		if err == nil && len(pending) == 0 {
			_, err = c.Clientset.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			if err == nil {
				return nil
			}
			pending = []string{"the default service account"}
		}
		for _, n := range c.Nodes {
			if !c.running(n.Name + "-kubelet") {
				return fmt.Errorf("the kubelet of %s exited; see %s", n.Name, c.logPath(n.Name+"-kubelet"))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %v (last error: %v); see the logs in %s", pending, err, filepath.Join(c.dir, "logs"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) pendingNodes(ctx context.Context) ([]string, error) {
	list, err := c.Clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	why := map[string]string{}
	for _, node := range list.Items {
		why[node.Name] = nodeNotReady(&node)
	}
	var pending []string
	for _, n := range c.Nodes {
		w, ok := why[n.Name]
		if !ok {
			w = "not registered"
		}
		if w != "" {
			pending = append(pending, n.Name+" ("+w+")")
		}
	}
	return pending, nil
}

// nodeNotReady says why n cannot take pods yet, "" when it can.
func nodeNotReady(n *corev1.Node) string {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady && cond.Status != corev1.ConditionTrue {
			return "NotReady: " + cond.Message
		}
	}
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady {
			return "taint"
		}
	}
	return ""
}

func waitFile(ctx context.Context, p string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if _, err := os.Stat(p); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", p, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitSocket waits until the unix socket p accepts a connection.
func waitSocket(ctx context.Context, p string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "unix", p)
		if err == nil {
			return conn.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to accept connections: %w (last: %v)", p, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
