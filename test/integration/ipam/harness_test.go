package ipam

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	"github.com/plexus-project/plexus/test/controlplane"
)

// pluginBin is the plexus-ipam binary built by TestMain.
var pluginBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "plexus-ipam-bin")
	if err != nil {
		panic(err)
	}
	pluginBin = filepath.Join(dir, "plexus-ipam")
	root, err := controlplane.RepoRoot()
	if err != nil {
		panic(err)
	}
	build := exec.Command("go", "build", "-o", pluginBin, "./cmd/plexus-ipam")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building plexus-ipam: %v\n%s", err, out)
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
}

func start(t *testing.T) *env {
	t.Helper()
	cp := controlplane.Start(t, controlplane.Options{Scheme: scheme()})
	return &env{cp: cp, kubeconfig: cp.Kubeconfig(t, "plexus-ipam"), lockDir: t.TempDir()}
}

// netconf is a network configuration whose ipam section is ipam plus the harness's kubeconfig
// and lock directory.
func (e *env) netconf(t testing.TB, ipam map[string]any, extra map[string]any) []byte {
	t.Helper()
	ipam["type"] = "plexus-ipam"
	ipam["kubernetes"] = map[string]any{"kubeconfig": e.kubeconfig}
	ipam["lock_dir"] = e.lockDir
	conf := map[string]any{"cniVersion": "1.0.0", "name": "testnet", "type": "macvlan", "ipam": ipam}
	for k, v := range extra {
		conf[k] = v
	}
	b, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// call is one plugin invocation.
type call struct {
	Command     string
	ContainerID string
	IfName      string
	Args        string // CNI_ARGS
	Conf        []byte
}

func podArgs(ns, name, uid string) string {
	return fmt.Sprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_UID=%s", ns, name, uid)
}

func (c call) cmd(ctx context.Context) *exec.Cmd {
	cmd := exec.CommandContext(ctx, pluginBin)
	ifname := c.IfName
	if ifname == "" {
		ifname = "net1"
	}
	cmd.Env = []string{
		"CNI_COMMAND=" + c.Command, "CNI_CONTAINERID=" + c.ContainerID, "CNI_NETNS=/var/run/netns/" + c.ContainerID,
		"CNI_IFNAME=" + ifname, "CNI_PATH=" + filepath.Dir(pluginBin), "CNI_ARGS=" + c.Args, "PATH=/usr/bin:/bin",
	}
	cmd.Stdin = bytes.NewReader(c.Conf)
	return cmd
}

// cniError is the error a plugin printed.
type cniError struct{ E types.Error }

func (e *cniError) Error() string { return e.E.Error() }

// run executes the call and returns its result, or a *cniError for an error the plugin reported.
func (c call) run(ctx context.Context) (*current.Result, error) {
	cmd := c.cmd(ctx)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		var e types.Error
		if jerr := json.Unmarshal(stdout.Bytes(), &e); jerr == nil && e.Code != 0 {
			return nil, &cniError{e}
		}
		return nil, fmt.Errorf("%s %s: %w (stdout %q, stderr %q)", c.Command, c.ContainerID, err, stdout.String(), stderr.String())
	}
	if c.Command != "ADD" {
		return nil, nil
	}
	var r current.Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("ADD %s printed %q: %w", c.ContainerID, stdout.String(), err)
	}
	return &r, nil
}

func addrOf(t testing.TB, r *current.Result) netip.Addr {
	t.Helper()
	if r == nil || len(r.IPs) == 0 {
		t.Fatalf("result without IPs: %+v", r)
	}
	a, _ := netip.AddrFromSlice(r.IPs[0].Address.IP)
	return a.Unmap()
}

func isCNIError(err error, code uint) bool {
	var ce *cniError
	return errors.As(err, &ce) && ce.E.Code == code
}

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

var _ = strings.Contains
