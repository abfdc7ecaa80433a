package e2e

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-project/plexus/test/cluster"
)

// TestSmoke proves the local cluster works: up, 2 nodes Ready, a pod on each, a ping from one
// to the other across nodes, down, nothing left on the host. It prints the figures.
func TestSmoke(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sysctls := cluster.KubeletSysctls()
	start := time.Now()
	c, opts, err := upFree(ctx, "smoke", []int{1, 6, 7}, cluster.Options{Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	dir := opts.Dir
	up := time.Since(start)
	downed := false
	t.Cleanup(func() {
		if !downed {
			_ = c.Down(context.Background())
		}
	})

	podStart := time.Now()
	var names []string
	for _, n := range c.Nodes {
		p := busyboxPod("smoke-"+n.Name, n.Name)
		if _, err := c.Clientset.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		names = append(names, p.Name)
	}
	pods, err := waitRunning(ctx, c, time.Minute, names...)
	if err != nil {
		t.Fatal(err)
	}
	podRunning := time.Since(podStart)
	for i, p := range pods {
		if p.Spec.NodeName != c.Nodes[i].Name {
			t.Errorf("pod %s runs on %s, want %s", p.Name, p.Spec.NodeName, c.Nodes[i].Name)
		}
	}
	if out, err := kubectl(ctx, c, "exec", pods[0].Name, "--", "ping", "-c", "2", "-W", "3", pods[1].Status.PodIP); err != nil {
		t.Errorf("ping from %s (%s) to %s (%s) across nodes: %v", pods[0].Name, pods[0].Status.PodIP, pods[1].Name, pods[1].Status.PodIP, err)
	} else {
		t.Logf("cross-node ping:\n%s", out)
	}

	pids, hostDirs := c.PIDs(), c.HostDirs()
	downStart := time.Now()
	if err := c.Down(ctx); err != nil {
		t.Fatal(err)
	}
	downed = true
	down := time.Since(downStart)
	checkNoLeftovers(t, opts.Name, dir, hostDirs, pids)
	// Another cluster running (another test run) restores them when it goes down.
	if after := cluster.KubeletSysctls(); !cluster.SysctlsHeld() && !maps.Equal(after, sysctls) {
		t.Errorf("kernel settings kubelet changes: before up %v, after down %v", sysctls, after)
	}

	figures := fmt.Sprintf("e2e smoke: cluster up %.1f s (control plane ready %.1f s, 2 nodes Ready %.1f s, schedulable %.1f s after start), pod Running %.1f s, down %.1f s",
		up.Seconds(), c.Timings.ControlPlane.Seconds(), c.Timings.NodesReady.Seconds(), c.Timings.Up.Seconds(), podRunning.Seconds(), down.Seconds())
	fmt.Println(figures)
	t.Log(figures)
}
