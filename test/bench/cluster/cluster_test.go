package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/plexus-project/plexus/test/cluster"
)

// BenchmarkClusterUpDown brings up 3 nodes with emulated SR-IOV, runs a busybox pod on each,
// and tears down, reporting each phase (seconds).
func BenchmarkClusterUpDown(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the local cluster needs root")
	}
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		start := time.Now()
		c, err := upFree(ctx, cluster.Options{Nodes: 3, SRIOV: &cluster.SRIOVOptions{}})
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		up := time.Since(start)
		podStart := time.Now()
		err = runPods(ctx, c)
		pods := time.Since(podStart)
		downStart := time.Now()
		if derr := c.Down(ctx); derr != nil {
			err = errors.Join(err, derr)
		}
		down := time.Since(downStart)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		_ = os.RemoveAll(c.Dir()) // the logs
		b.ReportMetric(c.Timings.ControlPlane.Seconds(), "controlplane-s")
		b.ReportMetric(c.Timings.NodesReady.Seconds(), "3-nodes-Ready-s")
		b.ReportMetric(up.Seconds(), "up-s")
		b.ReportMetric(pods.Seconds(), "3-pods-Running-s")
		b.ReportMetric(down.Seconds(), "down-s")
		fmt.Printf("cluster: 3 nodes with 8 emulated VFs each: control plane ready %.1f s, 3 nodes Ready %.1f s, up (schedulable) %.1f s; a pod on each node Running %.1f s; down %.1f s\n",
			c.Timings.ControlPlane.Seconds(), c.Timings.NodesReady.Seconds(), up.Seconds(), pods.Seconds(), down.Seconds())
	}
}

func upFree(ctx context.Context, opts cluster.Options) (*cluster.Cluster, error) {
	for _, id := range []int{12, 13, 14} {
		opts.Name = fmt.Sprintf("bn%d", id)
		opts.Dir = filepath.Join(os.TempDir(), "plexus-"+opts.Name)
		opts.NetworkID = id
		c, err := cluster.Up(ctx, opts)
		if !errors.Is(err, cluster.ErrInUse) {
			return c, err
		}
	}
	return nil, fmt.Errorf("network IDs 12-14 are all %w", cluster.ErrInUse)
}

func runPods(ctx context.Context, c *cluster.Cluster) error {
	for _, n := range c.Nodes {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "bench-" + n.Name, Namespace: "default"},
			Spec: corev1.PodSpec{
				NodeSelector: map[string]string{corev1.LabelHostname: n.Name},
				Containers:   []corev1.Container{{Name: "main", Image: cluster.BusyboxImage, ImagePullPolicy: corev1.PullNever, Command: []string{"sleep", "3600"}}},
			},
		}
		if _, err := c.Clientset.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, n := range c.Nodes {
			p, err := c.Clientset.CoreV1().Pods("default").Get(ctx, "bench-"+n.Name, metav1.GetOptions{})
			if err != nil || p.Status.Phase != corev1.PodRunning {
				return false, nil
			}
		}
		return true, nil
	})
}
