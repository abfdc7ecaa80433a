package deviceplugin_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/plexus-project/plexus/deviceplugin"
	"github.com/plexus-project/plexus/deviceplugin/capacity"
	"github.com/plexus-project/plexus/deviceplugin/sysfs/sysfstest"
	"github.com/plexus-project/plexus/test/controlplane"
)

// pluginIdentity is the user plexus-deviceplugin runs as in these tests: bound only to the
// ClusterRole in testdata (the chart's rules), so a missing rule fails a test.
func pluginIdentity(t *testing.T, cp *controlplane.ControlPlane) *controlplane.Identity {
	t.Helper()
	return cp.NewIdentity(t, "plexus-deviceplugin", filepath.Join("testdata", "clusterrole.yaml"))
}

// switchProxy forwards TCP connections to target, or, while blackholed, accepts them and never
// answers (an API server behind a dead network path, the worst case for a client without
// timeouts).
type switchProxy struct {
	ln        net.Listener
	target    string
	blackhole atomic.Bool
	mu        sync.Mutex
	conns     []net.Conn
}

func startProxy(t *testing.T, target string) *switchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{ln: ln, target: target}
	p.blackhole.Store(true)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

func (p *switchProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		if p.blackhole.Load() {
			continue // held open, never read, never answered
		}
		go func() {
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				return
			}
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			_, _ = io.Copy(c, up)
			c.Close()
		}()
	}
}

// kubeconfigFor writes a kubeconfig reaching host with cfg's credentials.
func kubeconfigFor(t *testing.T, cfg *rest.Config, host string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "c"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAPIServerUnreachable: with the API server blackholed the plugin still registers every
// pool and answers Allocate; each capacity write gives up after --api-timeout and is retried in
// the background, so the annotation appears once the API server is back.
func TestAPIServerUnreachable(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{})
	ctx := context.Background()
	cp.CreateNode(ctx, t, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cut-off"}}, corev1.ResourceList{})
	id := pluginIdentity(t, cp)
	apiURL, err := url.Parse(cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, apiURL.Host)
	kubeconfig := kubeconfigFor(t, id.Config, "https://"+proxy.ln.Addr().String())

	e := startPluginWith(t, func(o *deviceplugin.Options) {
		o.NodeName, o.Kubeconfig, o.APITimeout = "cut-off", kubeconfig, time.Second
	})
	for name, want := range wantPools {
		p := e.kubelet.WaitPlugin(t, name, 1, 10*time.Second)
		p.WaitDevices(t, 5*time.Second, func(d []*pluginapi.Device) bool { return len(d) == len(want) })
	}
	p := e.kubelet.Plugin("intel.com/pf_range")
	if _, err := p.Client.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIDs: []string{"0000:3b:02.0"}}}}); err != nil {
		t.Fatalf("Allocate with the API server unreachable: %v", err)
	}
	time.Sleep(2500 * time.Millisecond) // at least one capacity write timed out meanwhile
	if !e.logs.contains("publishing capacity") {
		t.Error("no failed capacity write logged while the API server was unreachable")
	}

	proxy.blackhole.Store(false)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var node corev1.Node
		if err := cp.Client.Get(ctx, clientKey("cut-off"), &node); err != nil {
			t.Fatal(err)
		}
		nc, ok, err := capacity.FromNode(&node)
		if err != nil {
			t.Fatal(err)
		}
		if ok && len(nc.Pools) == len(wantPools) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no capacity annotation 30s after the API server came back (a write without a timeout hangs forever): %+v", node.Annotations)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestOneBadPFAndAnUnreadableDevInfoDir: a PF that cannot be read leaves the other PF's pools
// served, and a device-info directory that cannot be listed is reported at start, not ignored.
func TestOneBadPFAndAnUnreadableDevInfoDir(t *testing.T) {
	var blocker string
	e := startPluginWith(t, func(o *deviceplugin.Options) {
		must(t, os.Remove(filepath.Join(o.SysfsRoot, "bus", "pci", "devices", sysfstest.IntelPF, "vendor")))
		blocker = filepath.Join(t.TempDir(), "not-a-dir")
		must(t, os.WriteFile(blocker, nil, 0o600))
		o.DevInfoDir = blocker
	})
	ib := e.kubelet.WaitPlugin(t, "mellanox.com/ib", 1, 10*time.Second)
	ib.WaitDevices(t, 5*time.Second, func(d []*pluginapi.Device) bool { return len(d) == len(wantPools["mellanox.com/ib"]) })
	for _, want := range []string{
		"discovery skipped devices; every other device is served", sysfstest.IntelPF + ": the PCI vendor ID",
		"adopting the device-info files of a previous run", "listing the device-info files of intel.com/pf_range in " + blocker,
	} {
		if !e.logs.contains(want) {
			t.Errorf("no log line containing %q", want)
		}
	}
}

// TestProbesAndMetrics: probes answer on the configured loopback address; /metrics is HTTPS and
// answers only scrapers the API server authenticates and authorizes (the plugin runs with only
// its chart role, which must allow the reviews).
func TestProbesAndMetrics(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{})
	id := pluginIdentity(t, cp)
	reader, nobody := cp.MetricsReaderToken(t)
	probeAddr, metricsAddr := freeAddr(t), freeAddr(t)
	e := startPluginWith(t, func(o *deviceplugin.Options) {
		o.Kubeconfig, o.HealthProbeBindAddress, o.MetricsBindAddress = id.Kubeconfig, probeAddr, metricsAddr
	})
	for name := range wantPools {
		e.kubelet.WaitPlugin(t, name, 1, 10*time.Second)
	}
	get := func(url, token string) (int, string) { t.Helper(); return controlplane.Scrape(t, url, token) }
	if code, _ := get("http://"+probeAddr+"/healthz", ""); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for code, _ := get("http://"+probeAddr+"/readyz", ""); code != 200; code, _ = get("http://"+probeAddr+"/readyz", "") {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d with every pool registered", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := get("http://"+metricsAddr+"/metrics", reader); code == 200 {
		t.Error("/metrics answered over plain HTTP: the scraper's token would cross the network in clear")
	}
	for _, tc := range []struct {
		who, token string
		want       int
	}{{"no token", "", 401}, {"no RBAC", nobody, 403}, {"metrics reader", reader, 200}} {
		code, body := get("https://"+metricsAddr+"/metrics", tc.token)
		if code != tc.want {
			t.Errorf("/metrics as %s: %d, want %d: %s", tc.who, code, tc.want, body)
		}
		if tc.want == 200 && !strings.Contains(body, `plexus_deviceplugin_vfs{resource="mellanox.com/ib",state="healthy"} 7`) {
			t.Errorf("/metrics lacks the healthy VFs of mellanox.com/ib:\n%s", body)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
