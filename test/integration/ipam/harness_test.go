package ipam

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	"github.com/plexus-project/plexus/ipam/config"
	plugintesting "github.com/plexus-project/plexus/ipam/plugin/testing"
	"github.com/plexus-project/plexus/test/controlplane"
	"github.com/plexus-project/plexus/test/repo"
)

// pluginBin and controllerBin are the binaries built by TestMain.
var pluginBin, controllerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "plexus-ipam-bin")
	if err != nil {
		panic(err)
	}
	root, err := repo.Root()
	if err != nil {
		panic(err)
	}
	if pluginBin, err = plugintesting.Build(root, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	controllerBin = filepath.Join(dir, "plexus-controller")
	build := exec.Command("go", "build", "-o", controllerBin, "./cmd/plexus-controller")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building plexus-controller: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func scheme() *runtime.Scheme {
	s := controlplane.DefaultScheme()
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// env is one control plane and what the plugin needs to reach it.
type env struct {
	cp         *controlplane.ControlPlane
	kubeconfig string
	lockDir    string
	// confDir holds the node configuration files (see netconf).
	confDir string
	// agents, when started, are the node agents (plexus-daemon) of node-0..node-9, each with its
	// own directory under lockDir, as on separate nodes.
	agents map[string]*plugintesting.Agent
}

// mode is how the plugin runs: on its own (direct) or through node agents.
type mode string

// writeBehindSettle bounds how long an agent's journaled changes and unused holds take to reach
// the blocks: --ipam-flush-after (3 s) and --ipam-hold-idle (2 s), with room for a busy machine.
const writeBehindSettle = 15 * time.Second

const (
	direct    mode = "direct"
	withAgent mode = "agent"
)

var modes = []mode{direct, withAgent}

// startIn starts an env for m: in agent mode, with an agent per node name.
func startIn(t *testing.T, m mode) *env {
	e := start(t)
	if m == withAgent {
		e.agents = map[string]*plugintesting.Agent{}
		for i := range nodeNames {
			e.startAgent(t, fmt.Sprintf("node-%d", i))
		}
	}
	return e
}

// startAgent starts (or restarts) the agent of node.
func (e *env) startAgent(t *testing.T, node string) {
	t.Helper()
	a, err := plugintesting.StartAgent(pluginBin, e.kubeconfig, e.nodeDir(node), node)
	if err != nil {
		t.Fatal(err)
	}
	e.agents[node] = a
	t.Cleanup(func() {
		if e.agents[node] == a {
			if err := a.Stop(); err != nil {
				t.Errorf("agent of %s: %v", node, err)
			}
		}
	})
}

// nodeDir is the plugin's lock_dir on node.
func (e *env) nodeDir(node string) string {
	if e.agents == nil {
		return e.lockDir
	}
	return filepath.Join(e.lockDir, node)
}

func start(t *testing.T) *env {
	t.Helper()
	cp := controlplane.Start(t, controlplane.Options{Scheme: scheme()})
	e := &env{cp: cp, lockDir: t.TempDir(), confDir: t.TempDir()}
	// The plugin and the agents run as plexus-ipam with its role, not as system:masters.
	e.kubeconfig = e.kubeconfigAs(t, "plexus-ipam", "plexus-ipam")
	return e
}

// netconf is a network configuration whose ipam section is ipam. What a node decides (its name,
// the plugin's kubeconfig, its lock_dir) goes into a node configuration file, as on a real node:
// a network configuration may not name them outside the node's Plexus directories. ipam's
// "node_name" names the node (it stays in the network configuration too, as Whereabouts users
// write it); a "lock_dir" key is taken out and becomes the node's. The file's path travels with
// the configuration under nodeConfigKey, and call passes it in the plugin's environment.
func (e *env) netconf(t testing.TB, ipam map[string]any, extra map[string]any) []byte {
	t.Helper()
	ipam["type"] = "plexus-ipam"
	node, _ := ipam["node_name"].(string)
	lockDir, ok := ipam["lock_dir"].(string)
	if !ok {
		lockDir = e.nodeDir(node)
	}
	delete(ipam, "lock_dir")
	conf := map[string]any{"cniVersion": "1.0.0", "name": "testnet", "type": "macvlan", "ipam": ipam,
		nodeConfigKey: e.nodeConfig(t, config.NodeConfig{NodeName: node, Kubeconfig: e.kubeconfig, LockDir: lockDir})}
	for k, v := range extra {
		conf[k] = v
	}
	b, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nodeConfigKey carries the path of a test configuration's node configuration file.
const nodeConfigKey = "x-test-node-config"

// nodeConfig writes nc as a node configuration file and returns its path.
func (e *env) nodeConfig(t testing.TB, nc config.NodeConfig) string {
	t.Helper()
	b, err := json.Marshal(nc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.confDir, fmt.Sprintf("node-%x.json", sha256.Sum256(b)))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// call is one plugin invocation of the binary under test.
type call struct {
	Command     string
	ContainerID string
	IfName      string
	Args        string // CNI_ARGS
	Conf        []byte
}

func (c call) cni() plugintesting.Call {
	var conf map[string]any
	_ = json.Unmarshal(c.Conf, &conf)
	var env []string
	if path, ok := conf[nodeConfigKey].(string); ok {
		env = append(env, config.NodeConfigEnv+"="+path)
	}
	return plugintesting.Call{Binary: pluginBin, Command: c.Command, ContainerID: c.ContainerID, IfName: c.IfName, Args: c.Args, Conf: c.Conf, Env: env}
}

func (c call) run(ctx context.Context) (*current.Result, error) { return c.cni().Run(ctx) }

func podArgs(ns, name, uid string) string { return plugintesting.PodArgs(ns, name, uid) }

func addrOf(t testing.TB, r *current.Result) netip.Addr {
	t.Helper()
	a, ok := plugintesting.Addr(r)
	if !ok {
		t.Fatalf("result without IPs: %+v", r)
	}
	return a
}

func isCNIError(err error, code uint) bool { return plugintesting.IsCode(err, code) }

// allocations lists every allocated address of every block, failing on a duplicate.
func allocations(ctx context.Context, t testing.TB, c client.Client) map[netip.Addr]v1alpha1.Allocation {
	t.Helper()
	var list v1alpha1.IPBlockList
	if err := c.List(ctx, &list); err != nil {
		t.Fatal(err)
	}
	out := map[netip.Addr]v1alpha1.Allocation{}
	for _, b := range list.Items {
		for a, al := range b.Spec.Allocations {
			addr := netip.MustParseAddr(a)
			if _, dup := out[addr]; dup {
				t.Fatalf("address %s recorded twice", addr)
			}
			out[addr] = al
		}
	}
	return out
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func (e *env) blocks(ctx context.Context) ([]v1alpha1.IPBlock, error) {
	var list v1alpha1.IPBlockList
	err := e.cp.Client.List(ctx, &list)
	return list.Items, err
}

func blocks2(ctx context.Context, t testing.TB, e *env) []v1alpha1.IPBlock {
	t.Helper()
	b, err := e.blocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startController runs the plexus-controller binary (leader election on) against the control
// plane until the test ends, restarting it when it exits (as the kubelet restarts a container,
// e.g. after it lost its lease while the API server was down), and returns its log file.
func (e *env) startController(t *testing.T, args ...string) string {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "plexus-controller.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	argv := append([]string{"--kubeconfig", e.kubeconfigAs(t, "plexus-controller", "plexus-controller"),
		"--leader-election-namespace", "default", "--metrics-bind-address", "0", "--health-probe-bind-address", "0"}, args...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cmd := exec.CommandContext(ctx, controllerBin, argv...)
			cmd.Stdout, cmd.Stderr = logf, logf
			if err := cmd.Run(); ctx.Err() == nil {
				fmt.Fprintf(logf, "--- plexus-controller exited (%v), restarting\n", err)
				time.Sleep(time.Second)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("plexus-controller log:\n%s", b)
		}
	})
	return logPath
}
