package controlplane

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	schedulerconfigv1 "k8s.io/kube-scheduler/config/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// StartScheduler runs the real kube-scheduler binary against the control plane with the given
// configuration (nil: the defaults, one default-scheduler profile). The harness sets
// clientConnection.kubeconfig to a cluster-admin user of its own and turns leader election off.
// The scheduler is stopped when the test ends; its log is in the test's temp dir and printed
// when the test fails.
func (cp *ControlPlane) StartScheduler(t testing.TB, config *schedulerconfigv1.KubeSchedulerConfiguration) {
	t.Helper()
	dir := t.TempDir()
	cfg := &schedulerconfigv1.KubeSchedulerConfiguration{}
	if config != nil {
		cfg = config.DeepCopy()
	}
	cfg.APIVersion, cfg.Kind = schedulerconfigv1.SchemeGroupVersion.String(), "KubeSchedulerConfiguration"
	cfg.ClientConnection.Kubeconfig = cp.Kubeconfig(t, "kube-scheduler")
	cfg.LeaderElection.LeaderElect = ptr.To(false)
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatalf("encoding the scheduler configuration: %v", err)
	}
	cfgPath := filepath.Join(dir, "scheduler.yaml")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "kube-scheduler.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, filepath.Join(cp.BinDir, "kube-scheduler"),
		"--config", cfgPath, "--secure-port=0", "-v=2")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting kube-scheduler: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		_ = logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("kube-scheduler configuration:\n%s\nkube-scheduler log (last 4 KiB):\n%s", data, tail(b, 4096))
			}
		}
	})
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
