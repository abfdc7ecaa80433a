package sriov

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	"github.com/plexus-project/plexus/cni/sriov/pf"
	"github.com/plexus-project/plexus/cni/sriov/sriovtest"
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	"github.com/plexus-project/plexus/ipam/config"
	"github.com/plexus-project/plexus/test/controlplane"
)

// env is the control plane plexus-ipam allocates from.
type env struct {
	// ipamEnv points plexus-ipam at its node settings: node name, kubeconfig, lock directory.
	ipamEnv []string
}

func startEnv(t *testing.T) *env {
	t.Helper()
	s := controlplane.DefaultScheme()
	utilruntime.Must(v1alpha1.AddToScheme(s))
	cp := controlplane.Start(t, controlplane.Options{Scheme: s})
	node, err := json.Marshal(map[string]string{"node_name": "node-1", "kubeconfig": cp.Kubeconfig(t, "plexus-ipam"), "lock_dir": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ipam.json")
	if err := os.WriteFile(path, node, 0o600); err != nil {
		t.Fatal(err)
	}
	return &env{ipamEnv: []string{config.NodeConfigEnv + "=" + path}}
}

// attachment is one pod interface on a VF.
type attachment struct {
	e   *env
	n   *sriovtest.Node
	cid string
	// netns is the pod's netns path (it may be gone).
	netns string
	conf  map[string]any
}

// newAttachment describes container cid's net1 on the VF pci with the sriov fields of extra and
// plexus-ipam allocating from cidr (the network's name).
func (e *env) newAttachment(n *sriovtest.Node, cid string, pod ns.NetNS, pci, cniVersion, cidr string, extra map[string]any) *attachment {
	name := "n-" + strings.NewReplacer("/", "-", ".", "-").Replace(cidr)
	conf := map[string]any{
		"cniVersion": cniVersion, "name": name, "type": "plexus-sriov",
		"ipam": map[string]any{"type": "plexus-ipam", "range": cidr, "network_name": name},
	}
	if pci != "" {
		conf["deviceID"] = pci
	}
	for k, v := range extra {
		conf[k] = v
	}
	return &attachment{e: e, n: n, cid: cid, netns: pod.Path(), conf: conf}
}

func (a *attachment) bytes(t testing.TB, prev *current.Result) []byte {
	t.Helper()
	c := map[string]any{}
	for k, v := range a.conf {
		c[k] = v
	}
	if prev != nil {
		// As libcni hands it over: in the configuration's version.
		r, err := prev.GetAsVersion(a.conf["cniVersion"].(string))
		if err != nil {
			t.Fatal(err)
		}
		c["prevResult"] = r
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (a *attachment) call(ctx context.Context, t testing.TB, cmd string, prev *current.Result) ([]byte, error) {
	t.Helper()
	out, err := a.n.Call(ctx, sriovtest.Call{Binary: sriovBin, ExtraPath: []string{filepath.Dir(ipamBin)}, Command: cmd,
		ContainerID: a.cid, Netns: a.netns, IfName: "net1", Conf: a.bytes(t, prev), Env: a.e.ipamEnv})
	if err != nil {
		var e types.Error
		if jerr := json.Unmarshal(out, &e); jerr == nil && e.Code != 0 {
			return out, &e
		}
	}
	return out, err
}

// add runs ADD and returns its result as the current spec version.
func (a *attachment) add(ctx context.Context, t testing.TB) (*current.Result, error) {
	t.Helper()
	out, err := a.call(ctx, t, "ADD", nil)
	if err != nil {
		return nil, err
	}
	r, err := version.NewResult(a.conf["cniVersion"].(string), out)
	if err != nil {
		return nil, fmt.Errorf("parsing the ADD result %s: %w", out, err)
	}
	return current.NewResultFromResult(r)
}

func (a *attachment) mustAdd(ctx context.Context, t testing.TB) *current.Result {
	t.Helper()
	r, err := a.add(ctx, t)
	if err != nil {
		t.Fatalf("ADD %s: %v", a.cid, err)
	}
	return r
}

func (a *attachment) del(ctx context.Context, t testing.TB) error {
	t.Helper()
	_, err := a.call(ctx, t, "DEL", nil)
	return err
}

func (a *attachment) mustDel(ctx context.Context, t testing.TB) {
	t.Helper()
	if err := a.del(ctx, t); err != nil {
		t.Fatalf("DEL %s: %v", a.cid, err)
	}
}

func (a *attachment) check(ctx context.Context, t testing.TB, prev *current.Result) error {
	t.Helper()
	_, err := a.call(ctx, t, "CHECK", prev)
	return err
}

// hostVFUnchanged fails t unless vf's netdev is in the node netns as it was created.
func hostVFUnchanged(t testing.TB, n *sriovtest.Node, vf sriovtest.VF) {
	t.Helper()
	st, err := n.Link(nil, vf.Netdev)
	if err != nil {
		t.Fatalf("VF %s: netdev %s is not back in the node's netns: %v", vf.PCI, vf.Netdev, err)
	}
	if !strings.EqualFold(st.MAC, vf.MAC) || st.MTU != vf.MTU || !st.Up {
		t.Fatalf("VF %s: netdev %s is %+v, want MAC %s, MTU %d, up", vf.PCI, vf.Netdev, st, vf.MAC, vf.MTU)
	}
}

// pfFresh fails t unless the PF holds the settings of a VF nobody changed.
func pfFresh(t testing.TB, n *sriovtest.Node, vf sriovtest.VF) {
	t.Helper()
	got, err := n.Recorder().Get(context.Background(), n.PF, vf.Index)
	if err != nil {
		t.Fatal(err)
	}
	if d := pf.Diff(pf.Fresh(), got); d != nil {
		t.Fatalf("VF %s: PF settings not restored: %v", vf.PCI, d)
	}
}

// noRecord fails t if plexus-sriov still has an ownership record of vf.
func noRecord(t testing.TB, n *sriovtest.Node, vf sriovtest.VF) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(n.Settings.StateDir, "vf", vf.PCI+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("VF %s: an ownership record is left (%v)", vf.PCI, err)
	}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
