package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/test/controlplane"
	"github.com/plexus-project/plexus/webhook/app"
	"github.com/plexus-project/plexus/webhook/config"
	servertesting "github.com/plexus-project/plexus/webhook/server/testing"
)

// env is a control plane whose API server calls a running plexus-webhook.
type env struct {
	cp     *controlplane.ControlPlane
	c      client.Client
	url    string // https://127.0.0.1:port of the webhook
	https  *http.Client
	ca     *servertesting.CA
	kubecf string
	// metricsToken may read /metrics; nobodyToken is authenticated but has no RBAC for it.
	metricsToken, nobodyToken string
}

// webhookIdentity is the user plexus-webhook runs as in these tests: bound only to the
// ClusterRole in testdata (the chart's rules), never a cluster admin, so a missing rule fails.
func webhookIdentity(t *testing.T, cp *controlplane.ControlPlane) *controlplane.Identity {
	t.Helper()
	return cp.NewIdentity(t, "plexus-webhook", filepath.Join("testdata", "clusterrole.yaml"))
}

// startEnv starts the control plane and the webhook in this process (app.Run, the code the
// binary runs) and registers the webhook configurations.
func startEnv(t *testing.T) *env {
	t.Helper()
	ctrllog.SetLogger(logr.Discard()) // controller-runtime's own logs (cache, cert watcher) are not asserted
	cp := controlplane.Start(t, controlplane.Options{})
	ca := servertesting.NewCA(t, "plexus-webhook-test-ca")
	cert, key := ca.WritePair(t, t.TempDir(), 1)
	id := webhookIdentity(t, cp)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{RESTConfig: id.Config, Listener: ln, CertFile: cert, KeyFile: key,
			// Isolation on, as the chart installs it; kube-system is shared so that a test can
			// select a NAD there (an excluded namespace, where one can bypass validation).
			NamespaceIsolation: true, SharedNamespaces: []string{"default", "kube-system"}})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook: %v", err)
		}
	})
	e := &env{cp: cp, c: cp.Client, url: "https://" + ln.Addr().String(), ca: ca,
		https: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}}
	e.kubecf = cp.Kubeconfig(t, "kubectl-user")
	e.metricsToken, e.nobodyToken = cp.MetricsReaderToken(t)
	e.register(t)
	return e
}

// register creates the webhook configurations pointing at e.url and waits until the API server
// uses them.
func (e *env) register(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	e.waitReady(t)
	opts := config.Options{URL: e.url, CABundle: e.ca.Bundle, TimeoutSeconds: 5}
	if err := e.c.Create(ctx, config.Mutating(opts)); err != nil {
		t.Fatalf("creating the MutatingWebhookConfiguration: %v", err)
	}
	if err := e.c.Create(ctx, config.Validating(opts)); err != nil {
		t.Fatalf("creating the ValidatingWebhookConfiguration: %v", err)
	}
	// The API server picks configurations up asynchronously: probe with a dry-run.
	deadline := time.Now().Add(30 * time.Second)
	for {
		probe := pod("probe", "no-such-network-probe")
		err := e.c.Create(ctx, probe, client.DryRunAll)
		if err != nil && strings.Contains(err.Error(), "denied the request") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server does not call the webhook: last answer %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *env) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := e.https.Get(e.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// getMetrics GETs /metrics with a bearer token ("" = none).
func (e *env) getMetrics(t *testing.T, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.https.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the sum of the samples of a metric whose line starts with prefix, read as
// the metrics reader.
func (e *env) metric(t *testing.T, prefix string) float64 {
	t.Helper()
	code, b := e.getMetrics(t, e.metricsToken)
	if code != http.StatusOK {
		t.Fatalf("/metrics as the metrics reader: HTTP %d: %s", code, b)
	}
	var sum float64
	for _, line := range strings.Split(b, "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

// kubectl runs the real kubectl as a user of the control plane.
func (e *env) kubectl(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	bin := filepath.Join(e.cp.BinDir, "kubectl")
	if _, err := os.Stat(bin); err != nil {
		bin = "/usr/bin/kubectl"
	}
	cmd := exec.Command(bin, append([]string{"--kubeconfig", e.kubecf}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

// kubectlCombined is kubectl returning stdout and stderr together (warnings go to stderr).
func (e *env) kubectlCombined(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	bin := filepath.Join(e.cp.BinDir, "kubectl")
	cmd := exec.Command(bin, append([]string{"--kubeconfig", e.kubecf}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (e *env) createNAD(t *testing.T, n *nadv1.NetworkAttachmentDefinition) {
	t.Helper()
	if err := e.c.Create(context.Background(), n); err != nil {
		t.Fatalf("creating NAD %s: %v", n.Name, err)
	}
}

// waitNAD waits until the webhook's cache has the NAD: a dry-run pod selecting it is admitted.
func (e *env) waitNAD(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := e.c.Create(context.Background(), pod("wait-"+name, name), client.DryRunAll)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook does not see NAD %s: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const sriovResource = "intel.com/sriov_netdevice"

func nad(name, config string, annotations ...string) *nadv1.NetworkAttachmentDefinition {
	n := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: map[string]string{}},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: config},
	}
	for i := 0; i+1 < len(annotations); i += 2 {
		n.Annotations[annotations[i]] = annotations[i+1]
	}
	return n
}

func sriovNAD(name string) *nadv1.NetworkAttachmentDefinition {
	return nad(name, `{"cniVersion":"1.0.0","name":"`+name+`","type":"plexus-sriov","ipam":{"type":"plexus-ipam","range":"10.56.217.0/24"}}`,
		network.ResourceNameAnnotation, sriovResource)
}

func macvlanNAD(name string) *nadv1.NetworkAttachmentDefinition {
	return nad(name, `{"cniVersion":"1.0.0","name":"`+name+`","type":"macvlan","master":"eth0","ipam":{"type":"plexus-ipam","range":"10.10.0.0/24"}}`)
}

// pod is a two-container pod in "default" selecting networks ("" = none).
func pod(name, networks string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": "demo"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "sidecar", Image: "busybox", Resources: corev1.ResourceRequirements{
				Limits: corev1.ResourceList{corev1.ResourceCPU: resourceQ("100m")}}},
			{Name: "app", Image: "busybox", Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resourceQ("64Mi")},
				Requests: corev1.ResourceList{corev1.ResourceMemory: resourceQ("32Mi")}}},
		}},
	}
	if networks != "" {
		p.Annotations = map[string]string{network.NetworksAnnotation: networks}
	}
	return p
}
