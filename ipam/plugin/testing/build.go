package testing

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/plexus-project/plexus/ipam/agent"
)

// Build compiles (statically) the plexus-ipam and plexus-daemon commands of the module at
// repoRoot into dir and returns plexus-ipam's path; plexus-daemon is beside it.
func Build(repoRoot, dir string) (string, error) {
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/plexus-ipam", "./cmd/plexus-daemon")
	cmd.Dir = repoRoot
	// A static binary starts faster: no dynamic loader, which matters for a process per call.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building plexus-ipam and plexus-daemon: %w\n%s", err, out)
	}
	return filepath.Join(dir, "plexus-ipam"), nil
}

// Agent is a plexus-daemon process serving the IPAM agent of one node.
type Agent struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // of the process, once exited is closed
}

// StartAgent starts the plexus-daemon beside pluginBin for node, with its socket in dir (the
// plugin's lock_dir), and waits until it answers. Its log goes to dir/agent.log.
func StartAgent(pluginBin, kubeconfig, dir, node string) (*Agent, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(filepath.Dir(pluginBin), "plexus-daemon"),
		"--node-name", node, "--ipam-dir", dir, "--kubeconfig", kubeconfig,
		"--health-probe-bind-address", "0") // several agents share the host's network here
	if v := os.Getenv("PLEXUS_AGENT_V"); v != "" {
		cmd.Args = append(cmd.Args, "-v", v) // PLEXUS_AGENT_V=2 logs every round
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting plexus-daemon: %w", err)
	}
	a := &Agent{cmd: cmd, exited: make(chan struct{})}
	go func() { a.err = cmd.Wait(); close(a.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := agent.Dial(ctx, dir, node)
		cancel()
		if err == nil {
			c.Close()
			return a, nil
		}
		select {
		case <-a.exited:
			return nil, fmt.Errorf("plexus-daemon exited: %v (see %s)", a.err, logf.Name())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			a.Kill()
			return nil, fmt.Errorf("plexus-daemon did not answer within 10s (see %s)", logf.Name())
		}
	}
}

// Stop ends the agent with SIGTERM and waits for it.
func (a *Agent) Stop() error {
	a.cmd.Process.Signal(os.Interrupt)
	<-a.exited
	return a.err
}

// Kill ends the agent with SIGKILL (a crash) and waits for it.
func (a *Agent) Kill() {
	a.cmd.Process.Kill()
	<-a.exited
}
