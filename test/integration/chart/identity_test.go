package chart

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	schedv1 "k8s.io/kube-scheduler/config/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/plexus-project/plexus/test/controlplane"
	"github.com/plexus-project/plexus/test/repo"
)

// TestChartIdentities runs plexus-controller (self-managed certificates), plexus-webhook and
// plexus-extender from the working tree against a real API server, each with the arguments the
// chart gives it and as the chart's ServiceAccount with the chart's RBAC, nothing more: a rule
// missing from the chart fails here.
func TestChartIdentities(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	cmds := []string{"plexus-controller", "plexus-webhook", "plexus-extender"}
	build := exec.Command("go", append([]string{"build", "-o", bin + "/"}, prefixed("./cmd/", cmds)...)...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %v: %v\n%s", cmds, err, out)
	}

	cp := controlplane.Start(t, controlplane.Options{})
	ctx := context.Background()
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}
	objs := objects(t, render(t, "--set", "scheduler.mode=secondary", "--set", "certs.mode=self-managed"))
	applyKinds(t, cp, objs, "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding",
		"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")

	// plexus-controller: issues the Secrets, injects the bundle, holds its Lease.
	controller := start(t, filepath.Join(bin, "plexus-controller"), saKubeconfig(t, cp, "plexus-controller"),
		chartArgs(t, objs, "plexus-controller", "controller"), "--health-probe-bind-address=127.0.0.1:0", "--metrics-bind-address=0")
	var bundle []byte
	tlsDir := t.TempDir()
	eventually(t, controller, 60*time.Second, "the controller issuing Secrets and injecting the CA bundle", func() error {
		var s corev1.Secret
		if err := cp.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: "plexus-webhook-tls"}, &s); err != nil {
			return err
		}
		var m admissionregistrationv1.MutatingWebhookConfiguration
		if err := cp.Client.Get(ctx, types.NamespacedName{Name: "plexus-webhook"}, &m); err != nil {
			return err
		}
		var v admissionregistrationv1.ValidatingWebhookConfiguration
		if err := cp.Client.Get(ctx, types.NamespacedName{Name: "plexus-webhook"}, &v); err != nil {
			return err
		}
		if len(m.Webhooks[0].ClientConfig.CABundle) == 0 || !bytes.Equal(v.Webhooks[1].ClientConfig.CABundle, s.Data["ca.crt"]) {
			return fmt.Errorf("caBundle not injected")
		}
		var lease coordinationv1.Lease
		if err := cp.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: "plexus-controller"}, &lease); err != nil {
			return fmt.Errorf("no leader election Lease: %w", err)
		}
		for _, k := range []string{"tls.crt", "tls.key"} {
			if err := os.WriteFile(filepath.Join(tlsDir, k), s.Data[k], 0o600); err != nil {
				return err
			}
		}
		bundle = s.Data["ca.crt"]
		return nil
	})

	// plexus-webhook: serving the controller's certificate, ready once its caches synced.
	port := freePort(t)
	webhook := start(t, filepath.Join(bin, "plexus-webhook"), saKubeconfig(t, cp, "plexus-webhook"),
		chartArgs(t, objs, "plexus-webhook", "webhook"), fmt.Sprintf("--port=%d", port), "--bind-address=127.0.0.1",
		"--tls-cert-file="+filepath.Join(tlsDir, "tls.crt"), "--tls-key-file="+filepath.Join(tlsDir, "tls.key"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bundle)
	https := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "plexus-webhook." + namespace + ".svc"}}}
	eventually(t, webhook, 60*time.Second, "the webhook ready under its chart identity", func() error {
		return get200(https, fmt.Sprintf("https://127.0.0.1:%d/readyz", port))
	})

	// plexus-extender, the scheduler's sidecar: runs as the scheduler's ServiceAccount.
	port, metricsPort := freePort(t), freePort(t)
	extender := start(t, filepath.Join(bin, "plexus-extender"), saKubeconfig(t, cp, "plexus-scheduler"),
		chartArgs(t, objs, "plexus-scheduler", "extender"), fmt.Sprintf("--port=%d", port), fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metricsPort))
	eventually(t, extender, 60*time.Second, "the extender ready under its chart identity", func() error {
		return get200(http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
	})

	// The second kube-scheduler with the chart's configuration, as the chart's ServiceAccount:
	// it takes its Lease and binds a pod that names it, calling the extender on the way.
	scheduler := startScheduler(t, cp, objs, port)
	eventually(t, scheduler, 60*time.Second, "the second scheduler holding its Lease", func() error {
		return cp.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: "plexus-scheduler"}, &coordinationv1.Lease{})
	})
	cp.CreateNode(ctx, t, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "scheduled-by-plexus"},
		Spec: corev1.PodSpec{SchedulerName: "plexus-scheduler", Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}
	if err := cp.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	eventually(t, scheduler, 60*time.Second, "plexus-scheduler binding the pod", func() error {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			return err
		}
		if pod.Spec.NodeName != "node-1" {
			return fmt.Errorf("pod not bound (nodeName %q)", pod.Spec.NodeName)
		}
		return nil
	})
	// /metrics is HTTPS for scrapers the API server authorizes: the extender's reviews of the
	// reader's token run under its chart identity too.
	reader, _ := cp.MetricsReaderToken(t)
	code, metrics := controlplane.Scrape(t, fmt.Sprintf("https://127.0.0.1:%d/metrics", metricsPort), reader)
	if code != http.StatusOK {
		t.Errorf("/metrics with a reader's token: %d %s", code, metrics)
	}
	if !regexp.MustCompile(`plexus_extender_request_duration_seconds_count\{verb="filter"\} [1-9]`).MatchString(metrics) {
		t.Errorf("the scheduler bound the pod without calling the extender's filter:\n%s", metrics)
	}

	for _, p := range []*proc{controller, webhook, extender, scheduler} {
		if strings.Contains(strings.ToLower(p.output()), "forbidden") {
			t.Errorf("%s was refused something under its chart identity:\n%s", p.name, p.output())
		}
	}
}

// startScheduler runs the cached kube-scheduler with the chart's KubeSchedulerConfiguration (its
// extender on extenderPort) as the plexus-scheduler ServiceAccount.
func startScheduler(t *testing.T, cp *controlplane.ControlPlane, objs []*unstructured.Unstructured, extenderPort int) *proc {
	t.Helper()
	raw, _, _ := unstructured.NestedString(find(objs, "ConfigMap", "plexus-scheduler").Object, "data", "config.yaml")
	var cfg schedv1.KubeSchedulerConfiguration
	if err := sigsyaml.UnmarshalStrict([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.ClientConnection.Kubeconfig = saKubeconfig(t, cp, "plexus-scheduler")
	cfg.Extenders[0].URLPrefix = fmt.Sprintf("http://127.0.0.1:%d/", extenderPort)
	b, err := sigsyaml.Marshal(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "scheduler.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return start(t, filepath.Join(cp.BinDir, "kube-scheduler"), "", []string{"--config=" + path, "--secure-port=0", "-v=2"})
}

// applyKinds creates the objects of the given kinds, as the cluster admin installing the chart.
func applyKinds(t *testing.T, cp *controlplane.ControlPlane, objs []*unstructured.Unstructured, kinds ...string) {
	t.Helper()
	for _, o := range objs {
		if slices.Contains(kinds, o.GetKind()) {
			if err := cp.Client.Create(context.Background(), o.DeepCopy()); err != nil {
				t.Fatalf("creating %s %s: %v", o.GetKind(), o.GetName(), err)
			}
		}
	}
}

// chartArgs are the args the chart gives container name of workload.
func chartArgs(t *testing.T, objs []*unstructured.Unstructured, workload, name string) []string {
	t.Helper()
	w := find(objs, "Deployment", workload)
	if w == nil {
		w = find(objs, "DaemonSet", workload)
	}
	raw, _, _ := unstructured.NestedSlice(container(t, w, name), "args")
	var args []string
	for _, a := range raw {
		args = append(args, a.(string))
	}
	return args
}

// saKubeconfig writes a kubeconfig authenticating as ServiceAccount name of the release
// namespace with a bound token.
func saKubeconfig(t *testing.T, cp *controlplane.ControlPlane, name string) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(context.Background(), name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token for ServiceAccount %s/%s: %v", namespace, name, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: cp.Config.Host, CertificateAuthorityData: cp.Config.CAData}
	cfg.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "sa", Namespace: namespace}
	cfg.CurrentContext = "c"
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// proc is a component running for the test, its output kept for failures.
type proc struct {
	name string
	mu   sync.Mutex
	out  bytes.Buffer
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs binary with the chart's args then overrides (later flags win), stopped at cleanup.
func start(t *testing.T, binary, kubeconfig string, args []string, overrides ...string) *proc {
	t.Helper()
	p := &proc{name: filepath.Base(binary)}
	all := append(append([]string{}, args...), overrides...)
	if kubeconfig != "" {
		all = append(all, "--kubeconfig="+kubeconfig)
	}
	cmd := exec.Command(binary, all...)
	cmd.Env = append(os.Environ(), "POD_NAMESPACE="+namespace, "NODE_NAME=node-1")
	cmd.Stdout, cmd.Stderr = p, p
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return p
}

func eventually(t *testing.T, p *proc, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v\n%s output:\n%s", what, err, p.name, p.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func get200(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
