package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/plexus-project/plexus/test/cluster"
)

// busyboxPod is a pod sleeping on node, from the cluster's busybox image.
func busyboxPod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeSelector:                  map[string]string{corev1.LabelHostname: node},
			TerminationGracePeriodSeconds: ptr(int64(1)),
			Containers: []corev1.Container{{
				Name: "main", Image: cluster.BusyboxImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"sleep", "3600"},
			}},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// runPod creates pod in default, deletes it when the test ends, and waits until it is Running.
func runPod(ctx context.Context, t *testing.T, c *cluster.Cluster, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	if _, err := c.Clientset.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Clientset.CoreV1().Pods("default").Delete(context.Background(), pod.Name, metav1.DeleteOptions{})
	})
	got, err := waitRunning(ctx, c, time.Minute, pod.Name)
	if err != nil {
		t.Fatal(err)
	}
	return got[0]
}

// waitRunning waits until every named pod in default is Running with an IP, and returns them.
func waitRunning(ctx context.Context, c *cluster.Cluster, timeout time.Duration, names ...string) ([]*corev1.Pod, error) {
	pods := make([]*corev1.Pod, len(names))
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for i, n := range names {
			p, err := c.Clientset.CoreV1().Pods("default").Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
				return false, nil
			}
			pods[i] = p
		}
		return true, nil
	})
	if err != nil {
		var states []string
		for _, n := range names {
			if p, gerr := c.Clientset.CoreV1().Pods("default").Get(ctx, n, metav1.GetOptions{}); gerr == nil {
				states = append(states, fmt.Sprintf("%s: %s %v", n, p.Status.Phase, p.Status.Conditions))
			}
		}
		return nil, fmt.Errorf("pods %v not Running: %w (%v)", names, err, states)
	}
	return pods, nil
}

// kubectl runs the real kubectl against the cluster.
func kubectl(ctx context.Context, c *cluster.Cluster, args ...string) (string, error) {
	return kubectlStdin(ctx, c, "", args...)
}

// kubectlStdin runs kubectl with stdin.
func kubectlStdin(ctx context.Context, c *cluster.Cluster, stdin string, args ...string) (string, error) {
	cmd := osexec.CommandContext(ctx, filepath.Join(c.BinDir(), "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("kubectl %v: %w: %s", args, err, out.String())
	}
	return out.String(), nil
}

// requireRoot skips t when not root: the cluster creates namespaces, mounts and cgroups.
func requireRoot(t *testing.T) {
	t.Helper()
	if !isRoot() {
		t.Skip("the local cluster needs root (network namespaces, mounts, cgroups)")
	}
}

// checkNoLeftovers fails t when the host still holds anything of the cluster, and removes the
// cluster's logs when the test passed.
func checkNoLeftovers(t *testing.T, name, dir string, hostDirs []string, pids []int) {
	t.Helper()
	if left := cluster.Leftovers(name, dir, hostDirs, pids); len(left) > 0 {
		t.Errorf("after down the host still has: %v", left)
	}
	if !t.Failed() {
		_ = os.RemoveAll(dir) // the logs, kept for a failure
	}
}

// hostRun runs a host command and returns its combined output.
func hostRun(ctx context.Context, name string, args ...string) (string, error) {
	out, err := osexec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// upFree brings up a cluster named <base><id> with state in $TMPDIR/plexus-<base><id>, with
// the first network ID of ids that no other cluster holds: another run of these tests on the
// machine may hold the others.
func upFree(ctx context.Context, base string, ids []int, opts cluster.Options) (*cluster.Cluster, cluster.Options, error) {
	var errs []error
	for _, id := range ids {
		opts.Name = fmt.Sprintf("%s%d", base, id)
		opts.Dir = filepath.Join(os.TempDir(), "plexus-"+opts.Name)
		opts.NetworkID = id
		c, err := cluster.Up(ctx, opts)
		if err == nil {
			return c, opts, nil
		}
		if !errors.Is(err, cluster.ErrInUse) {
			return nil, opts, err
		}
		errs = append(errs, err)
	}
	return nil, opts, fmt.Errorf("every network ID of %v is in use: %w", ids, errors.Join(errs...))
}

// writeBehindSettle bounds how long plexus-daemon's IPAM agent takes to write what it journaled
// (--ipam-flush-after, 3 s) and to give back the addresses it set aside once idle
// (--ipam-hold-idle, 2 s), with room for a busy machine.
const writeBehindSettle = 20 * time.Second

// settle polls cond every 250 ms until it holds or writeBehindSettle has passed; the caller then
// asserts what cond looked at.
func settle(cond func() bool) {
	for deadline := time.Now().Add(writeBehindSettle); !cond() && time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
	}
}
