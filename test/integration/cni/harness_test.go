package cni

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	"github.com/plexus-project/plexus/ipam/config"
	"github.com/plexus-project/plexus/test/controlplane"
)

const node = "node-cni"

// daemonUser is plexus-daemon's identity in these tests, bound only to daemonRole (the
// chart's rules), not a cluster admin: a request its role does not allow fails a test.
const (
	daemonUser = "plexus-daemon"
	daemonRole = "testdata/clusterrole.yaml"
)

// clusterGateway is the default route the cluster network gives every pod.
const clusterGateway = "10.99.0.1"

// env is one control plane, a CNI conf dir with a cluster network, and the directories of one
// node's plexus-daemon.
type env struct {
	t          *testing.T
	cp         *controlplane.ControlPlane
	kubeconfig string
	dir        string
	confDir    string
	// suffix makes the host-side link names of this test unique.
	suffix string
	// hostLocal is the data dir of the host-local IPAM of the cluster network and bridge-conf.
	hostLocal string
	// pluginDirs are the delegates' bin dirs: the reference plugins, then binDir.
	pluginDirs []string
}

func scheme() *runtime.Scheme {
	s := controlplane.DefaultScheme()
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// referencePlugins is where `make cni-plugins` puts the containernetworking plugins.
func referencePlugins(t *testing.T) string {
	cache := os.Getenv("PLEXUS_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "plexus")
	}
	dir := filepath.Join(cache, "cni", "bin")
	for _, p := range []string{"bridge", "macvlan", "host-local", "static"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Fatalf("the CNI reference plugin %s is missing from %s: run `make cni-plugins`", p, dir)
		}
	}
	return dir
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, controlplane.Options{})
}

// newEnvWith is newEnv with the control plane's options (its scheme is always the env's).
func newEnvWith(t *testing.T, opts controlplane.Options) *env {
	t.Helper()
	ref := referencePlugins(t)
	opts.Scheme = scheme()
	cp := controlplane.Start(t, opts)
	dir := t.TempDir()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	e := &env{t: t, cp: cp, kubeconfig: cp.NewIdentity(t, daemonUser, daemonRole).Kubeconfig, dir: dir, confDir: filepath.Join(dir, "net.d"),
		suffix: hex.EncodeToString(b), hostLocal: filepath.Join(dir, "host-local"), pluginDirs: []string{ref, binDir}}
	if err := os.MkdirAll(e.confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.writeClusterNetwork("cluster", "10.99.0.0/24")
	return e
}

// writeClusterNetwork writes the cluster network's conflist (a bridge with host-local), as a
// node's network plugin would.
func (e *env) writeClusterNetwork(name, subnet string) {
	br := "pxc" + e.suffix
	e.cleanupLink(br)
	conf := fmt.Sprintf(`{"cniVersion":"1.1.0","name":%q,"plugins":[{"type":"bridge","bridge":%q,
		"ipam":{"type":"host-local","ranges":[[{"subnet":%q}]],"dataDir":%q,"routes":[{"dst":"0.0.0.0/0","gw":%q}]}}]}`,
		name, br, subnet, e.hostLocal, clusterGateway)
	if err := os.WriteFile(filepath.Join(e.confDir, "10-"+name+".conflist"), []byte(conf), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) cleanupLink(name string) {
	e.t.Cleanup(func() {
		if l, err := netlink.LinkByName(name); err == nil {
			_ = netlink.LinkDel(l)
		}
	})
}

// master creates a veth pair in the host namespace and returns the end macvlan networks use
// as their master.
func (e *env) master() string {
	e.t.Helper()
	name := "pxm" + e.suffix
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "pxp" + e.suffix}
	if err := netlink.LinkAdd(veth); err != nil {
		e.t.Fatalf("creating the veth master %s: %v", name, err)
	}
	e.cleanupLink(name)
	for _, n := range []string{name, "pxp" + e.suffix} {
		l, err := netlink.LinkByName(n)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			e.t.Fatal(err)
		}
	}
	return name
}

// createNAD creates a NetworkAttachmentDefinition in namespace default.
func (e *env) createNAD(ctx context.Context, name, config string, annotations map[string]string) {
	e.t.Helper()
	nad := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: annotations},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: config}}
	if err := e.cp.Client.Create(ctx, nad); err != nil {
		e.t.Fatalf("creating NAD %s: %v", name, err)
	}
}

// ipamConf is a plexus-ipam section allocating from cidr. The node's settings (its name, the
// IPAM agent's directory) come from the node configuration the daemon writes
// (--ipam-node-config), found through PLEXUS_IPAM_NODE_CONFIG in the daemon's environment,
// which the delegates inherit, as on a node.
func (e *env) ipamConf(cidr string) string {
	return fmt.Sprintf(`{"type":"plexus-ipam","range":%q}`, cidr)
}

// hostLocalConf is a host-local section in the env's data dir.
func (e *env) hostLocalConf(subnet string) string {
	return fmt.Sprintf(`{"type":"host-local","ranges":[[{"subnet":%q}]],"dataDir":%q}`, subnet, e.hostLocal)
}

// daemon is a running plexus-daemon process.
type daemon struct {
	cmd       *exec.Cmd
	log       string
	probes    string
	socketDir string
	exited    chan struct{}
}

// startDaemon runs plexus-daemon with its CNI server for node, its state under the env's
// directory, and waits until /readyz answers.
func (e *env) startDaemon(extra ...string) *daemon {
	e.t.Helper()
	probes := freeAddr(e.t)
	d := &daemon{log: filepath.Join(e.dir, fmt.Sprintf("daemon-%d.log", time.Now().UnixNano())), probes: probes,
		socketDir: filepath.Join(e.dir, "sock"), exited: make(chan struct{})}
	args := append([]string{"--node-name", node, "--kubeconfig", e.kubeconfig,
		"--ipam-dir", filepath.Join(e.dir, "ipam"), "--ipam-node-config", filepath.Join(e.dir, "ipam.json"), "--health-probe-bind-address", probes, "--metrics-bind-address", "0",
		"--cni-server", "--cni-socket-dir", d.socketDir, "--cni-conf-dir", e.confDir,
		"--cni-bin-dir", strings.Join(e.pluginDirs, ","), "--cni-state-dir", filepath.Join(e.dir, "state"),
		"--pod-resources-socket", filepath.Join(e.dir, "no-kubelet.sock"), "--devinfo-dir", filepath.Join(e.dir, "devinfo"), "-v", "1"}, extra...)
	logf, err := os.Create(d.log)
	if err != nil {
		e.t.Fatal(err)
	}
	d.cmd = exec.Command(filepath.Join(binDir, "plexus-daemon"), args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.Env = append(os.Environ(), "NODE_NAME="+node, config.NodeConfigEnv+"="+filepath.Join(e.dir, "ipam.json"))
	if err := d.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); logf.Close(); close(d.exited) }()
	e.t.Cleanup(func() {
		d.stop(e.t)
		if e.t.Failed() {
			b, _ := os.ReadFile(d.log)
			e.t.Logf("plexus-daemon log:\n%s", b)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + probes + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		select {
		case <-d.exited:
			b, _ := os.ReadFile(d.log)
			e.t.Fatalf("plexus-daemon exited:\n%s", b)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(d.log)
			e.t.Fatalf("plexus-daemon not ready within 60s:\n%s", b)
		}
	}
}

// stop ends the daemon with SIGTERM and waits.
func (d *daemon) stop(t *testing.T) {
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("plexus-daemon did not stop within 30s of SIGTERM")
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runtime plays the container runtime: it runs the plexus shim from binDir with the conflist
// the daemon wrote, over the CNI exec protocol (libcni).
type cniRuntime struct {
	cni  *libcni.CNIConfig
	list *libcni.NetworkConfigList
}

func (e *env) runtime() *cniRuntime {
	e.t.Helper()
	list, err := libcni.ConfListFromFile(filepath.Join(e.confDir, "00-plexus.conflist"))
	if err != nil {
		e.t.Fatalf("the daemon's conflist: %v", err)
	}
	return &cniRuntime{cni: libcni.NewCNIConfigWithCacheDir([]string{binDir}, filepath.Join(e.dir, "runtime-cache"), nil), list: list}
}

// sandbox is a pod with its network namespace, as the runtime creates it.
type sandbox struct {
	pod *corev1.Pod
	ns  ns.NetNS
	id  string
}

// newSandbox creates the pod on the node (annotated with networks) and its netns; edit, when
// given, changes the pod before it is created.
func (e *env) newSandbox(ctx context.Context, name, networks string, edit ...func(*corev1.Pod)) *sandbox {
	e.t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if networks != "" {
		pod.Annotations = map[string]string{network.NetworksAnnotation: networks}
	}
	for _, f := range edit {
		f(pod)
	}
	if err := e.cp.Client.Create(ctx, pod); err != nil {
		e.t.Fatalf("creating pod %s: %v", name, err)
	}
	netns, err := testutils.NewNS()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		netns.Close()
		_ = testutils.UnmountNS(netns)
	})
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &sandbox{pod: pod, ns: netns, id: "c" + hex.EncodeToString(b)}
}

func (r *cniRuntime) rt(sb *sandbox) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: sb.id, NetNS: sb.ns.Path(), IfName: "eth0", Args: [][2]string{
		{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", sb.pod.Namespace}, {"K8S_POD_NAME", sb.pod.Name},
		{"K8S_POD_INFRA_CONTAINER_ID", sb.id}, {"K8S_POD_UID", string(sb.pod.UID)}}}
}

func (r *cniRuntime) add(ctx context.Context, sb *sandbox) (types.Result, error) {
	return r.cni.AddNetworkList(ctx, r.list, r.rt(sb))
}

func (r *cniRuntime) del(ctx context.Context, sb *sandbox) error {
	return r.cni.DelNetworkList(ctx, r.list, r.rt(sb))
}

func (r *cniRuntime) check(ctx context.Context, sb *sandbox) error {
	return r.cni.CheckNetworkList(ctx, r.list, r.rt(sb))
}

// ifaceAddrs returns the addresses of ifName inside the sandbox, read with netlink there; nil
// when the interface does not exist.
func ifaceAddrs(t *testing.T, sb *sandbox, ifName string) (mac string, addrs []string, ok bool) {
	t.Helper()
	err := sb.ns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(ifName)
		if err != nil {
			return err
		}
		mac = l.Attrs().HardwareAddr.String()
		list, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range list {
			addrs = append(addrs, a.IPNet.String())
		}
		return nil
	})
	if _, notFound := err.(netlink.LinkNotFoundError); notFound {
		return "", nil, false
	}
	if err != nil {
		t.Fatalf("reading %s in the pod: %v", ifName, err)
	}
	return mac, addrs, true
}

// defaultRoutes lists "gw dev" of the IPv4 default routes inside the sandbox.
func defaultRoutes(t *testing.T, sb *sandbox) []string {
	t.Helper()
	var out []string
	err := sb.ns.Do(func(ns.NetNS) error {
		routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Dst == nil || (r.Dst.IP.IsUnspecified() && r.Dst.Mask != nil && func() bool { o, _ := r.Dst.Mask.Size(); return o == 0 }()) {
				l, err := netlink.LinkByIndex(r.LinkIndex)
				if err != nil {
					return err
				}
				out = append(out, fmt.Sprintf("%s dev %s", r.Gw, l.Attrs().Name))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// networkStatus reads the pod's network-status from the API.
func (e *env) networkStatus(ctx context.Context, sb *sandbox) []network.Status {
	e.t.Helper()
	var pod corev1.Pod
	if err := e.cp.Client.Get(ctx, keyOf(sb.pod), &pod); err != nil {
		e.t.Fatal(err)
	}
	st, err := network.ReadStatus(&pod)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// events waits up to 10s for a Warning event on the pod whose message contains all of want,
// and returns the messages it saw.
func (e *env) waitEvent(ctx context.Context, sb *sandbox, want ...string) (string, bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var seen []string
	for time.Now().Before(deadline) {
		var list corev1.EventList
		if err := e.cp.Client.List(ctx, &list); err != nil {
			e.t.Fatal(err)
		}
		seen = seen[:0]
		for _, ev := range list.Items {
			if ev.InvolvedObject.Name != sb.pod.Name || ev.Type != corev1.EventTypeWarning {
				continue
			}
			seen = append(seen, ev.Reason+": "+ev.Message)
			all := true
			for _, w := range want {
				all = all && strings.Contains(ev.Message, w)
			}
			if all {
				return ev.Reason + ": " + ev.Message, true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return strings.Join(seen, "\n"), false
}

// allocatedTo lists the plexus-ipam addresses allocated to a container once they number want,
// or what they are after writeBehindSettle: the daemon's IPAM agent journals allocations and
// releases on the node and writes them to their IPBlocks within --ipam-flush-after (3 s).
func (e *env) allocatedTo(ctx context.Context, containerID string, want int) []string {
	e.t.Helper()
	deadline := time.Now().Add(writeBehindSettle)
	for {
		var list v1alpha1.IPBlockList
		if err := e.cp.Client.List(ctx, &list); err != nil {
			e.t.Fatal(err)
		}
		var out []string
		for _, b := range list.Items {
			for addr, a := range b.Spec.Allocations {
				if a.ContainerID == containerID {
					out = append(out, addr+"@"+a.IfName)
				}
			}
		}
		if len(out) == want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeBehindSettle bounds how long the IPAM agent's journaled changes take to reach the blocks
// (--ipam-flush-after, 3 s, with room for a busy machine).
const writeBehindSettle = 15 * time.Second

// hostLocalFiles lists the host-local reservations held by a container.
func (e *env) hostLocalFiles(containerID string) []string {
	e.t.Helper()
	var out []string
	_ = filepath.Walk(e.hostLocal, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(path)
		if strings.HasPrefix(string(b), containerID) {
			out = append(out, filepath.Base(path))
		}
		return nil
	})
	return out
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func keyOf(pod *corev1.Pod) k8stypes.NamespacedName {
	return k8stypes.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
}
