package ipam

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	plugintesting "github.com/plexus-project/plexus/ipam/plugin/testing"
)

// restartAPIServer stops kube-apiserver and starts it again on the same port with the same
// serving certificate and client CA, so every kubeconfig handed out keeps working (etcd keeps
// running, as it would across an API server restart in a cluster). It runs beside the test's
// goroutine, so it returns its failure instead of calling t.Fatal; keep is a directory of the
// test's for the certificates.
func (e *env) restartAPIServer(keep string, down time.Duration) (time.Duration, error) {
	api := e.cp.Env.ControlPlane.APIServer
	entries, err := os.ReadDir(api.CertDir)
	if err != nil {
		return 0, fmt.Errorf("reading the API server's certificates: %w", err)
	}
	for _, en := range entries {
		b, err := os.ReadFile(filepath.Join(api.CertDir, en.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(keep, en.Name()), b, 0o600)
		}
		if err != nil {
			return 0, fmt.Errorf("keeping the API server's certificates: %w", err)
		}
	}
	begin := time.Now()
	if err := api.Stop(); err != nil {
		return 0, fmt.Errorf("stopping kube-apiserver: %w", err)
	}
	time.Sleep(down)
	api.CertDir = keep
	if err := api.Start(); err != nil {
		return time.Since(begin), fmt.Errorf("restarting kube-apiserver: %w", err)
	}
	return time.Since(begin), nil
}

// chaosOutcome is how one ADD ended.
type chaosOutcome struct {
	addr    netip.Addr
	killed  bool
	retries int
}

// addWithChaos runs an ADD, kill -9-ing it after a random delay with probability killRate. A
// failed ADD is retried with the same container ID, as the kubelet does; a killed one is
// abandoned (its pod is deleted later, without DEL).
func addWithChaos(ctx context.Context, c call, killRate float64) (chaosOutcome, error) {
	var out chaosOutcome
	for attempt := 0; ; attempt++ {
		cmd := c.cni().Cmd(ctx)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			return out, err
		}
		if attempt == 0 && rand.Float64() < killRate {
			time.AfterFunc(time.Duration(rand.IntN(800))*time.Millisecond, func() { cmd.Process.Signal(syscall.SIGKILL) })
		}
		err := cmd.Wait()
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) && exitErr.Sys().(syscall.WaitStatus).Signaled() {
			out.killed = true
			return out, nil
		}
		r, err := c.cni().Parse(err, stdout.Bytes(), stderr.Bytes())
		if err == nil {
			out.addr, _ = plugintesting.Addr(r)
			return out, nil
		}
		out.retries++
		if attempt > 60 {
			return out, fmt.Errorf("ADD %s still failing after %d attempts: %w", c.ContainerID, attempt, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestKillAndAPIServerRestart: plugin processes killed mid-ADD, the API server restarted
// mid-run and, with node agents, one node's agent killed (kill -9) and restarted later: no
// duplicate, and the reconciler frees every address the killed ADDs leaked.
func TestKillAndAPIServerRestart(t *testing.T) {
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) { testKillAndAPIServerRestart(t, m) })
	}
}

func testKillAndAPIServerRestart(t *testing.T, m mode) {
	e := startIn(t, m)
	ctx := ctxT(t, 15*time.Minute)
	e.startController(t)
	pods := make([]*corev1.Pod, concurrentADDs)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 20)
	for i := range pods {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("chaos-%d", i)},
				Spec: corev1.PodSpec{NodeName: fmt.Sprintf("node-%d", i%nodeNames), Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
			if err := e.cp.Client.Create(ctx, p); err != nil {
				t.Errorf("creating pod: %v", err)
			}
			pods[i] = p
		}(i)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	confs := make([][]byte, nodeNames)
	for i := range confs {
		confs[i] = slash22(e, t, fmt.Sprintf("node-%d", i))
	}

	inflight := make(chan struct{}, inFlight)
	outs := make([]chaosOutcome, concurrentADDs)
	errs := make([]error, concurrentADDs)
	restarted := make(chan struct{})
	begin := time.Now()
	const crashed = "node-3"
	for i := 0; i < concurrentADDs; i++ {
		switch {
		case m == withAgent && i == concurrentADDs/5:
			// Its plugins fall back to direct mode, or fail with "try again" if the agent
			// died under their request.
			e.agents[crashed].Kill()
			t.Logf("the agent of %s killed (kill -9) at ADD %d", crashed, i)
		case m == withAgent && i == concurrentADDs*3/5:
			e.startAgent(t, crashed)
			t.Logf("the agent of %s restarted at ADD %d", crashed, i)
		}
		if i == concurrentADDs*2/5 {
			keep := t.TempDir()
			go func() {
				defer close(restarted)
				down, err := e.restartAPIServer(keep, 2*time.Second)
				if err != nil {
					t.Errorf("%v", err) // Errorf, not Fatal: this is not the test's goroutine
					return
				}
				t.Logf("kube-apiserver restarted mid-run: down for %s", down.Round(time.Millisecond))
			}()
		}
		wg.Add(1)
		inflight <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-inflight }()
			p := pods[i]
			c := call{Command: "ADD", ContainerID: "sandbox-" + p.Name, Args: podArgs(p.Namespace, p.Name, string(p.UID)), Conf: confs[i%nodeNames]}
			outs[i], errs[i] = addWithChaos(ctx, c, 0.1)
		}(i)
	}
	wg.Wait()
	<-restarted
	killed, retried := 0, 0
	success := map[string]netip.Addr{}
	byAddr := map[netip.Addr]string{}
	for i, o := range outs {
		if errs[i] != nil {
			t.Fatalf("ADD %d: %v", i, errs[i])
		}
		retried += min(o.retries, 1)
		if o.killed {
			killed++
			continue
		}
		id := "sandbox-" + pods[i].Name
		if prev, dup := byAddr[o.addr]; dup {
			t.Fatalf("duplicate: %s handed to %s and %s", o.addr, prev, id)
		}
		byAddr[o.addr], success[id] = id, o.addr
	}
	t.Logf("1,000 ADDs with kill -9 and an API server restart: %s; %d killed, %d succeeded (%d of them retried by the test after an error), no duplicate",
		time.Since(begin).Round(time.Millisecond), killed, len(success), retried)

	// Every recorded allocation belongs to a successful ADD (same address) or a killed one.
	leaked := 0
	for addr, al := range allocations(ctx, t, e.cp.Client) {
		if want, ok := success[al.ContainerID]; ok {
			if want != addr {
				t.Fatalf("container %s holds %s but its ADD returned %s", al.ContainerID, addr, want)
			}
			continue
		}
		leaked++
	}
	t.Logf("%d addresses leaked by killed ADDs", leaked)

	// The runtime gives up on the killed sandboxes: their pods are deleted, with no DEL.
	gone := time.Now()
	for i, o := range outs {
		if o.killed {
			if err := e.cp.Client.Delete(ctx, pods[i], client.GracePeriodSeconds(0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for {
		left := 0
		for _, al := range allocations(ctx, t, e.cp.Client) {
			if _, ok := success[al.ContainerID]; !ok {
				left++
			}
		}
		if left == 0 {
			t.Logf("the reconciler freed every leaked address %s after the pods were deleted", time.Since(gone).Round(time.Millisecond))
			break
		}
		if time.Since(gone) > reclaimBound {
			t.Fatalf("%d leaked addresses still allocated %s after their pods were deleted", left, reclaimBound)
		}
		time.Sleep(time.Second)
	}
	if got := len(allocations(ctx, t, e.cp.Client)); got != len(success) {
		t.Fatalf("%d allocations, want exactly the %d successful ADDs", got, len(success))
	}
}
