package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/test/cluster"
	"github.com/plexus-project/plexus/test/cluster/demo"
	"github.com/plexus-project/plexus/test/repo"
)

// TestCNI runs the plexus CNI shim and plexus-daemon's CNI server (with the device plugin,
// plexus-sriov and plexus-ipam as delegates and IPAM) on the suite's real kubelets:
//   - the example pods of docs/examples get all their networks, and two pods on different
//     nodes ping each other over the macvlan one;
//   - a pod selecting macvlan-bad (a master no node has) stays ContainerCreating, with an
//     Event naming the network and the missing master;
//   - fail closed: with the daemon stopped (SIGTERM) and killed (SIGKILL), a new pod that
//     selects networks does not run without them, its Events say the node daemon is down, and
//     once the daemon is back it starts with all its networks; a pod with no networks runs
//     soon after the daemon is back.
func TestCNI(t *testing.T) {
	s, ctx, examples := withCNI(t)
	c := s.Cluster

	t.Run("examples", func(t *testing.T) { testExamplePods(ctx, t, c, examples) })
	t.Run("bad master", func(t *testing.T) { testBadMaster(ctx, t, c) })
	t.Run("daemon down SIGTERM", func(t *testing.T) { testFailClosed(ctx, t, c, syscall.SIGTERM, "term") })
	t.Run("daemon down SIGKILL", func(t *testing.T) { testFailClosed(ctx, t, c, syscall.SIGKILL, "kill") })
}

// installCNI installs plexus-ipam's node rights, the device plugin and plexus-daemon with the
// chart (its CNI server then writes 00-plexus.conflist on every node), and undoes it when t
// ends: the chart's parts go, then the daemon's conflist, which it leaves behind on purpose
// (fail closed) and which would make every later pod of the suite wait for a daemon that is
// gone.
func installCNI(ctx context.Context, t *testing.T, c *cluster.Cluster) {
	t.Helper()
	t.Cleanup(func() { uninstallDaemon(t, c) })
	t.Cleanup(func() {
		if err := demo.Uninstall(context.Background(), c, "plexus-deviceplugin"); err != nil {
			t.Error(err)
		}
	})
	for _, bin := range []string{"plexus-ipam", "plexus-deviceplugin", "plexus-daemon", "plexus"} {
		if err := demo.Install(ctx, c, bin); err != nil {
			t.Fatal(err)
		}
	}
}

// uninstallDaemon removes plexus-daemon from the chart's release, waits for its pods to go,
// and removes the conflist it left on every node.
func uninstallDaemon(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if t.Failed() {
		out, _ := kubectl(ctx, c, "-n", demo.PlexusNamespace, "logs", "-l", "app.kubernetes.io/component=daemon", "--prefix", "--tail=60")
		t.Logf("plexus-daemon logs:\n%s", out)
	}
	if err := demo.Uninstall(ctx, c, "plexus-daemon"); err != nil {
		t.Error(err)
	}
	for _, n := range c.Nodes {
		if err := os.Remove(n.HostPath(demo.CNIConflist)); err != nil && !os.IsNotExist(err) {
			t.Error(err)
		}
	}
}

// testExamplePods applies docs/examples and checks that each UPF pod has its three networks,
// then pings from one pod to the other over the macvlan network (net3, macvlan-n4).
func testExamplePods(ctx context.Context, t *testing.T, c *cluster.Cluster, examples string) {
	pods, err := demo.ApplyExamples(ctx, c, examples, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 2 || pods[0].Spec.NodeName == pods[1].Spec.NodeName {
		t.Fatalf("want the two UPF pods on two nodes, got %d pods", len(pods))
	}
	macvlan := map[string]string{} // pod -> its net3 address
	for _, p := range pods {
		st := podNetworks(ctx, t, c, p.Name, []string{"default/sriov-n3", "default/sriov-n6", "default/macvlan-n4"})
		macvlan[p.Name] = st["net3"].IPs[0]
	}
	for i, from := range pods {
		to := pods[1-i]
		out, err := kubectl(ctx, c, "exec", from.Name, "--", "ping", "-c", "3", "-W", "2", "-I", "net3", macvlan[to.Name])
		if err != nil || !strings.Contains(out, " 0% packet loss") {
			t.Errorf("%s (%s) cannot ping %s over macvlan-n4 (%s): %v\n%s", from.Name, from.Spec.NodeName, to.Name, macvlan[to.Name], err, out)
		}
	}
	t.Logf("upf pods on %s and %s ping each other over macvlan-n4: %v", pods[0].Spec.NodeName, pods[1].Spec.NodeName, macvlan)
	for _, p := range pods {
		if err := c.Clientset.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			t.Error(err)
		}
	}
	if err := waitGone(ctx, c, podNames(pods)...); err != nil {
		t.Error(err)
	}
}

// podNetworks checks that pod's network-status lists the default network on eth0 and want
// (in order, as net1, net2, ...) each with an address the pod's interface holds, and returns
// the entries by interface.
func podNetworks(ctx context.Context, t *testing.T, c *cluster.Cluster, name string, want []string) map[string]network.Status {
	t.Helper()
	p, err := c.Clientset.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := network.ReadStatus(p)
	if err != nil {
		t.Fatal(err)
	}
	byIf := map[string]network.Status{}
	for _, s := range st {
		byIf[s.Interface] = s
	}
	if eth0 := byIf["eth0"]; !eth0.Default || !slices.Contains(eth0.IPs, p.Status.PodIP) {
		t.Errorf("pod %s: no default eth0 with the pod IP %s in network-status %+v", name, p.Status.PodIP, st)
	}
	out, err := kubectl(ctx, c, "exec", name, "--", "ip", "-o", "addr", "show")
	if err != nil {
		t.Fatal(err)
	}
	for i, nad := range want {
		ifName := "net" + strconv.Itoa(i+1)
		s, ok := byIf[ifName]
		if !ok || s.Name != nad || len(s.IPs) == 0 {
			t.Fatalf("pod %s: network-status %s is %+v, want network %s with an address (all: %+v)", name, ifName, s, nad, st)
		}
		if !strings.Contains(out, " "+ifName+" ") || !strings.Contains(out, " "+s.IPs[0]+"/") {
			t.Errorf("pod %s: network-status gives %s %s, the pod has:\n%s", name, ifName, s.IPs[0], out)
		}
	}
	if len(st) != len(want)+1 {
		t.Errorf("pod %s: network-status has %d entries, want eth0 and %v: %+v", name, len(st), want, st)
	}
	return byIf
}

// testBadMaster: a pod selecting macvlan-bad is scheduled and stays ContainerCreating, and an
// Event on it names the network and the missing master.
func testBadMaster(ctx context.Context, t *testing.T, c *cluster.Cluster) {
	n := c.Nodes[0]
	pod := busyboxPod("cni-bad-master", n.Name)
	pod.Annotations = map[string]string{network.NetworksAnnotation: "macvlan-bad"}
	createPod(ctx, t, c, pod)
	ev, err := waitEvent(ctx, c, pod.Name, time.Minute, "macvlan-bad", "nosuch0")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("event on %s: %s: %s", pod.Name, ev.Reason, ev.Message)
	p, err := c.Clientset.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.Phase != corev1.PodPending || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil ||
		p.Status.ContainerStatuses[0].State.Waiting.Reason != "ContainerCreating" {
		t.Errorf("pod %s is %s %+v, want Pending in ContainerCreating", pod.Name, p.Status.Phase, p.Status.ContainerStatuses)
	}
}

// testFailClosed stops node 1's daemon with sig twice in a row (kubelet restarts it at once
// the first time and only after its 10 s back-off the second), creates a pod selecting
// macvlan-n4 and one with no networks while it is down, and checks what they get.
func testFailClosed(ctx context.Context, t *testing.T, c *cluster.Cluster, sig syscall.Signal, suffix string) {
	n := c.Nodes[0]
	with := busyboxPod("cni-down-nets-"+suffix, n.Name)
	with.Annotations = map[string]string{network.NetworksAnnotation: "macvlan-n4"}
	without := busyboxPod("cni-down-plain-"+suffix, n.Name)

	if err := stopDaemon(ctx, c, n, sig); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	t.Logf("plexus-daemon on %s stopped with %v twice; kubelet holds it back", n.Name, sig)
	createPod(ctx, t, c, with)
	createPod(ctx, t, c, without)

	// While the daemon is down, the pod with networks never runs.
	var back time.Time
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := c.Clientset.CoreV1().Pods("default").Get(ctx, with.Name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			return false, fmt.Errorf("pod %s runs while plexus-daemon is down on %s: network-status %q", with.Name, n.Name, p.Annotations[network.NetworkStatusAnnotation])
		}
		if daemonAnswers(n) {
			back = time.Now()
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plexus-daemon answers again on %s after %.1f s", n.Name, back.Sub(down).Seconds())
	ev, err := waitEvent(ctx, c, with.Name, 5*time.Second, "plexus-daemon is not running on node "+n.Name)
	if err != nil {
		t.Errorf("no Event on %s says the node daemon is down: %v", with.Name, err)
	} else {
		t.Logf("event on %s: %s: %s", with.Name, ev.Reason, ev.Message)
	}

	// Once it is back, both run; the one with networks has them.
	if _, err := waitRunning(ctx, c, 90*time.Second, with.Name, without.Name); err != nil {
		t.Fatal(err)
	}
	running := time.Now()
	podNetworks(ctx, t, c, with.Name, []string{"default/macvlan-n4"})
	plain, err := c.Clientset.CoreV1().Pods("default").Get(ctx, without.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	started := podReadyTime(plain)
	t.Logf("after the daemon was back: both pods Running within %.1f s; the pod without networks Running %.1f s after", running.Sub(back).Seconds(), started.Sub(back).Seconds())
	// kubelet retries a failed sandbox after its pod worker back-off (10-15 s).
	if started.Sub(back) > 30*time.Second {
		t.Errorf("the pod without networks ran %.1f s after the daemon was back: blocked longer than the daemon's restart", started.Sub(back).Seconds())
	}
	for _, p := range []string{with.Name, without.Name} {
		_ = c.Clientset.CoreV1().Pods("default").Delete(ctx, p, metav1.DeleteOptions{})
	}
	if err := waitGone(ctx, c, with.Name, without.Name); err != nil {
		t.Error(err)
	}
}

// podReadyTime is when the pod became Ready (its condition's last transition).
func podReadyTime(p *corev1.Pod) time.Time {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
			return cond.LastTransitionTime.Time
		}
	}
	return time.Now()
}

// stopDaemon sends sig to node n's plexus-daemon, waits until kubelet restarted it and it
// answers, then sends sig again: kubelet's crash back-off then keeps it down for 10 s.
func stopDaemon(ctx context.Context, c *cluster.Cluster, n *cluster.Node, sig syscall.Signal) error {
	for i := range 2 {
		pid, err := daemonPID(n)
		if err != nil {
			return err
		}
		if err := syscall.Kill(pid, sig); err != nil {
			return fmt.Errorf("signalling plexus-daemon (pid %d) on %s: %w", pid, n.Name, err)
		}
		err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			return !processAlive(pid) && !daemonAnswers(n), nil
		})
		if err != nil {
			return fmt.Errorf("plexus-daemon (pid %d) on %s still answers after %v: %w", pid, n.Name, sig, err)
		}
		if i == 1 {
			return nil
		}
		err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			return daemonAnswers(n), nil
		})
		if err != nil {
			return fmt.Errorf("kubelet did not restart plexus-daemon on %s after %v: %w", n.Name, sig, err)
		}
	}
	return nil
}

// daemonPID finds node n's plexus-daemon (its pod is on the host network).
func daemonPID(n *cluster.Node) (int, error) {
	pids, err := n.ProcessPIDs("plexus-daemon")
	if err != nil {
		return 0, err
	}
	if len(pids) != 1 {
		return 0, fmt.Errorf("node %s runs %d plexus-daemon processes (%v), want one", n.Name, len(pids), pids)
	}
	return pids[0], nil
}

func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie (Z) has exited.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// daemonAnswers says whether node n's CNI server socket accepts a connection (from the host,
// through the node's directory).
func daemonAnswers(n *cluster.Node) bool {
	conn, err := net.DialTimeout("unix", n.HostPath(demo.CNISocket), time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// createPod creates pod in default and deletes it when the test ends.
func createPod(ctx context.Context, t *testing.T, c *cluster.Cluster, pod *corev1.Pod) {
	t.Helper()
	if _, err := c.Clientset.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Clientset.CoreV1().Pods("default").Delete(context.Background(), pod.Name, metav1.DeleteOptions{})
		_ = waitGone(context.Background(), c, pod.Name)
	})
}

// waitEvent waits for an Event on pod (in default) whose message holds every one of words.
func waitEvent(ctx context.Context, c *cluster.Cluster, pod string, timeout time.Duration, words ...string) (*corev1.Event, error) {
	var found *corev1.Event
	var seen []string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		evs, err := c.Clientset.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod})
		if err != nil {
			return false, nil
		}
		seen = seen[:0]
		for i, e := range evs.Items {
			seen = append(seen, e.Reason+": "+e.Message)
			if !slices.ContainsFunc(words, func(w string) bool { return !strings.Contains(e.Message, w) }) {
				found = &evs.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		b, _ := json.MarshalIndent(seen, "", "  ")
		return nil, fmt.Errorf("no Event on pod %s mentions %q: %w; its events: %s", pod, words, err, b)
	}
	return found, nil
}

// waitGone waits until the named pods of default are deleted.
func waitGone(ctx context.Context, c *cluster.Cluster, names ...string) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, n := range names {
			if _, err := c.Clientset.CoreV1().Pods("default").Get(ctx, n, metav1.GetOptions{}); err == nil {
				return false, nil
			}
		}
		return true, nil
	})
}

func podNames(pods []*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

// withCNI is the set-up of the tests whose pods get their networks: the Plexus binaries built,
// the CNI parts installed with the chart (device plugin, daemon, plugins), and the examples
// under docs/examples deleted when the test ends. The context ends with the test, after 12
// minutes at most.
func withCNI(t *testing.T) (*suiteCluster, context.Context, string) {
	t.Helper()
	s := requireSuite(t)
	for _, bin := range []string{"plexus", "plexus-daemon", "plexus-ipam", "plexus-sriov", "plexus-deviceplugin"} {
		s.requireBinary(t, bin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	t.Cleanup(cancel)
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	examples := filepath.Join(root, "docs", "examples")
	installCNI(ctx, t, s.Cluster)
	t.Cleanup(func() {
		_, _ = kubectl(context.Background(), s.Cluster, "delete", "-f", examples, "--ignore-not-found", "--wait=true")
	})
	return s, ctx, examples
}
