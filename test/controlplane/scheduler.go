package controlplane

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SchedulerName is the scheduler profile StartScheduler's default configuration serves.
const SchedulerName = "default-scheduler"

// StartScheduler runs the real kube-scheduler binary against the control plane with the given
// KubeSchedulerConfiguration (YAML). The configuration's clientConnection.kubeconfig is filled
// in; pass "" for the defaults (one profile, default-scheduler, no leader election). The
// scheduler is stopped when the test ends; its log is in the test's temp dir and printed when the
// test fails.
func (cp *ControlPlane) StartScheduler(t testing.TB, config string) {
	t.Helper()
	dir := t.TempDir()
	kubeconfig := cp.Kubeconfig(t, "kube-scheduler")
	if config == "" {
		config = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
	}
	if strings.Contains(config, "clientConnection:") {
		t.Fatal("StartScheduler: leave clientConnection out of the configuration; the harness sets it")
	}
	config = strings.TrimRight(config, "\n") + fmt.Sprintf(
		"\nclientConnection:\n  kubeconfig: %q\nleaderElection:\n  leaderElect: false\n", kubeconfig)
	cfgPath := filepath.Join(dir, "scheduler.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
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
				t.Logf("kube-scheduler log (last 4 KiB):\n%s", tail(b, 4096))
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
