package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/plexus-project/plexus/deviceplugin/capacity"
	"github.com/plexus-project/plexus/test/cluster"
	"github.com/plexus-project/plexus/test/cluster/demo"
	"github.com/plexus-project/plexus/test/repo"
)

// cniBinaries are the CNI plugins plexus-daemon's install-cni puts on every node.
var cniBinaries = []string{"plexus", "plexus-sriov", "plexus-ipam"}

// TestChart installs the whole suite with `helm install` of charts/plexus (the sandbox's values
// and images) on the suite's real kubelets:
//   - every component becomes Ready, each pod under its chart ServiceAccount, and each works
//     with no more than its chart RBAC: the device plugin advertises the VFs, the daemon serves
//     CNI (and its install-cni put the CNI binaries, which the test removed first, on the
//     nodes), the controller holds its lease and wrote the certificates and the webhook
//     configurations' CA bundle, the webhook injects, the second scheduler holds its lease;
//   - the example pods get their resources from the webhook, are placed by the second
//     scheduler through the extender, and get every network (network-status);
//   - `helm upgrade` with a second device-plugin resource (PF ens1f0's VFs) reaches every
//     node's allocatable and capacity annotation;
//   - `helm uninstall` removes every object of the release and the Secrets the controller
//     made; the CRDs stay.
func TestChart(t *testing.T) {
	s := requireSuite(t)
	c := s.Cluster
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	chart := filepath.Join(root, "charts", "plexus")
	examples := filepath.Join(root, "docs", "examples")
	removeCNIBinaries(t, s)
	t.Cleanup(func() { cleanupChart(t, c, examples) })

	args := append([]string{"install", demo.ReleaseName, chart, "--namespace", demo.PlexusNamespace, "--create-namespace"}, demo.ChartValues(root)...)
	start := time.Now()
	if _, err := c.Helm(ctx, args...); err != nil {
		t.Fatal(err)
	}
	for _, bin := range demo.Components() {
		if err := demo.WaitReady(ctx, c, bin); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("helm install: every component ready in %.1f s", time.Since(start).Seconds())

	t.Run("identities", func(t *testing.T) { checkChartPods(ctx, t, c) })
	t.Run("certificates", func(t *testing.T) { checkChartCerts(ctx, t, c) })
	t.Run("cni binaries", func(t *testing.T) {
		for _, n := range c.Nodes {
			for _, bin := range cniBinaries {
				if err := n.Command(ctx, "test", "-x", "/opt/cni/bin/"+bin).Run(); err != nil {
					t.Errorf("node %s has no /opt/cni/bin/%s: install-cni did not put it there", n.Name, bin)
				}
			}
		}
	})
	t.Run("examples", func(t *testing.T) { checkChartExamples(ctx, t, c, examples) })
	t.Run("upgrade resourceList", func(t *testing.T) { checkChartUpgrade(ctx, t, c, chart, root) })
	t.Run("uninstall", func(t *testing.T) { checkChartUninstall(ctx, t, c) })
}

// removeCNIBinaries removes the Plexus CNI binaries the sandbox put on every node, so that only
// the chart can bring them back; when t ends, any still missing is put back for the later
// tests of the suite.
func removeCNIBinaries(t *testing.T, s *suiteCluster) {
	t.Helper()
	for _, bin := range cniBinaries {
		s.requireBinary(t, bin)
		for _, n := range s.Nodes {
			if err := os.Remove(n.HostPath("/opt/cni/bin/" + bin)); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		for _, bin := range cniBinaries {
			for _, n := range s.Nodes {
				if _, err := os.Stat(n.HostPath("/opt/cni/bin/" + bin)); err == nil {
					continue
				}
				if err := n.InstallFile(s.build.Binaries[bin], "/opt/cni/bin/"+bin, 0o755); err != nil {
					t.Errorf("putting %s back on %s: %v", bin, n.Name, err)
				}
			}
		}
	})
}

// cleanupChart leaves the suite's cluster as TestChart found it, whatever failed: no example,
// no release, no conflist of the daemon on the nodes.
func cleanupChart(t *testing.T, c *cluster.Cluster, examples string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if t.Failed() {
		out, _ := kubectl(ctx, c, "-n", demo.PlexusNamespace, "get", "pods,events", "-o", "wide")
		t.Logf("%s:\n%s", demo.PlexusNamespace, out)
	}
	if err := deleteExamples(ctx, c, examples); err != nil {
		t.Error(err)
	}
	if out, _ := c.Helm(ctx, "list", "--namespace", demo.PlexusNamespace, "--short"); strings.TrimSpace(out) != "" {
		if _, err := c.Helm(ctx, "uninstall", demo.ReleaseName, "--namespace", demo.PlexusNamespace, "--wait"); err != nil {
			t.Error(err)
		}
	}
	for _, n := range c.Nodes {
		if err := os.Remove(n.HostPath(demo.CNIConflist)); err != nil && !os.IsNotExist(err) {
			t.Error(err)
		}
	}
	// The release's pods went through the plexus shim: with the daemon gone, their sandboxes
	// are torn down once the conflist is.
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := c.Clientset.CoreV1().Pods(demo.PlexusNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + demo.ReleaseName})
		return err == nil && len(pods.Items) == 0, nil
	})
	if err != nil {
		t.Errorf("pods of the release still in %s: %v", demo.PlexusNamespace, err)
	}
}

// deleteExamples deletes what docs/examples creates, the pods first: the webhook refuses to
// delete a NAD that running pods use.
func deleteExamples(ctx context.Context, c *cluster.Cluster, examples string) error {
	out, err := kubectl(ctx, c, "get", "-f", examples, "-o", "name", "--ignore-not-found")
	if err != nil {
		return fmt.Errorf("listing the examples: %w", err)
	}
	var pods, others []string
	for _, n := range objectNames(out) {
		if strings.HasPrefix(n, "pod/") {
			pods = append(pods, n)
		} else {
			others = append(others, n)
		}
	}
	for _, names := range [][]string{pods, others} {
		if len(names) == 0 {
			continue
		}
		if out, err := kubectl(ctx, c, append([]string{"delete", "--namespace", "default", "--ignore-not-found", "--wait=true"}, names...)...); err != nil {
			return fmt.Errorf("deleting the examples %v: %w %s", names, err, out)
		}
	}
	return nil
}

// checkChartPods: every workload of the chart has its pods (one per node for a DaemonSet) Ready
// under its own ServiceAccount.
func checkChartPods(ctx context.Context, t *testing.T, c *cluster.Cluster) {
	for _, w := range demo.Workloads() {
		sel := "app.kubernetes.io/instance=" + demo.ReleaseName + ",app.kubernetes.io/component=" + w.Component
		pods, err := c.Clientset.CoreV1().Pods(demo.PlexusNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 0 || (w.Kind == "DaemonSet" && len(pods.Items) != len(c.Nodes)) {
			t.Errorf("%s %s has %d pods", w.Kind, w.Name, len(pods.Items))
		}
		for _, p := range pods.Items {
			if p.Spec.ServiceAccountName != w.ServiceAccount {
				t.Errorf("pod %s of %s runs as ServiceAccount %q, want %s", p.Name, w.Name, p.Spec.ServiceAccountName, w.ServiceAccount)
			}
			if !podReady(&p) {
				t.Errorf("pod %s of %s is not Ready: %+v", p.Name, w.Name, p.Status.Conditions)
			}
		}
		t.Logf("%s %s: %d pods Ready as ServiceAccount %s/%s", w.Kind, w.Name, len(pods.Items), demo.PlexusNamespace, w.ServiceAccount)
	}
}

func podReady(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// checkChartCerts: plexus-controller (self-managed certificates) wrote the webhook's serving
// certificate and injected its CA into both webhook configurations.
func checkChartCerts(ctx context.Context, t *testing.T, c *cluster.Cluster) {
	sec, err := c.Clientset.CoreV1().Secrets(demo.PlexusNamespace).Get(ctx, "plexus-webhook-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the webhook's certificate: %v", err)
	}
	ca := sec.Data["ca.crt"]
	if len(sec.Data["tls.crt"]) == 0 || len(sec.Data["tls.key"]) == 0 || len(ca) == 0 {
		t.Fatalf("Secret plexus-webhook-tls holds %d keys, want tls.crt, tls.key and ca.crt", len(sec.Data))
	}
	adm := c.Clientset.AdmissionregistrationV1()
	m, err := adm.MutatingWebhookConfigurations().Get(ctx, "plexus-webhook", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := adm.ValidatingWebhookConfigurations().Get(ctx, "plexus-webhook", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bundles := map[string][]byte{}
	for _, w := range m.Webhooks {
		bundles["mutating "+w.Name] = w.ClientConfig.CABundle
	}
	for _, w := range v.Webhooks {
		bundles["validating "+w.Name] = w.ClientConfig.CABundle
	}
	for name, b := range bundles {
		if string(b) != string(ca) {
			t.Errorf("webhook %s trusts a CA bundle of %d bytes, not the ca.crt (%d bytes) of the webhook's certificate", name, len(b), len(ca))
		}
	}
}

// checkChartExamples applies docs/examples with the chart's webhook at work and checks what
// each UPF pod got from the chart: its VFs injected, the second scheduler, every network.
func checkChartExamples(ctx context.Context, t *testing.T, c *cluster.Cluster, examples string) {
	pods, err := demo.ApplyExamples(ctx, c, examples, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 2 {
		t.Fatalf("want the two UPF pods, got %d", len(pods))
	}
	for _, p := range pods {
		q := p.Spec.Containers[0].Resources.Limits[demo.SRIOVResource]
		if q.Value() != 2 {
			t.Errorf("pod %s limits %s %s, want 2 (the webhook injects one per SR-IOV network)", p.Name, demo.SRIOVResource, q.String())
		}
		if p.Spec.SchedulerName != demo.SchedulerName || p.Spec.NodeName == "" {
			t.Errorf("pod %s: scheduler %q, node %q; want plexus-scheduler (set by the webhook) to have placed it", p.Name, p.Spec.SchedulerName, p.Spec.NodeName)
		}
		podNetworks(ctx, t, c, p.Name, upfNetworks)
	}
	t.Logf("the example pods got their VFs, their node from plexus-scheduler and their networks: %s on %s, %s on %s",
		pods[0].Name, pods[0].Spec.NodeName, pods[1].Name, pods[1].Spec.NodeName)
	if err := deleteExamples(ctx, c, examples); err != nil {
		t.Fatal(err)
	}
}

// upgradeResource is the device-plugin resource `helm upgrade` adds: the VFs of the first PF.
const upgradeResource = "intel.com/sriov_n3"

// checkChartUpgrade upgrades the release with a resourceList whose first entry takes PF
// ens1f0's VFs as upgradeResource (the first matching entry wins) and leaves the rest to
// intel.com/sriov_netdevice, and waits for every node to show both.
func checkChartUpgrade(ctx context.Context, t *testing.T, c *cluster.Cluster, chart, root string) {
	values := filepath.Join(t.TempDir(), "upgrade.yaml")
	y := fmt.Sprintf(`devicePlugin:
  resourceList:
    - resourceName: %s
      resourcePrefix: intel.com
      selectors: {pfNames: [%q]}
    - resourceName: sriov_netdevice
      resourcePrefix: intel.com
      selectors: {vendors: ["8086"], devices: ["154c"], drivers: [iavf]}
`, strings.TrimPrefix(upgradeResource, "intel.com/"), cluster.PFName(0))
	if err := os.WriteFile(values, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"upgrade", demo.ReleaseName, chart, "--namespace", demo.PlexusNamespace}, demo.ChartValues(root)...)
	start := time.Now()
	if _, err := c.Helm(ctx, append(args, "-f", values)...); err != nil {
		t.Fatal(err)
	}
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, n := range c.Nodes {
			first := 0
			for _, vf := range n.VFs {
				if vf.PFName == cluster.PFName(0) {
					first++
				}
			}
			node, err := c.Clientset.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			a, b := node.Status.Allocatable[upgradeResource], node.Status.Allocatable[demo.SRIOVResource]
			nc, _, _ := capacity.FromNode(node)
			if a.Value() != int64(first) || b.Value() != int64(len(n.VFs)-first) || nc.Pools[upgradeResource].Healthy != first {
				last = fmt.Sprintf("node %s: allocatable %s=%s %s=%s, capacity annotation %+v; want %d and %d",
					n.Name, upgradeResource, a.String(), demo.SRIOVResource, b.String(), nc.Pools, first, len(n.VFs)-first)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("after helm upgrade: %s: %v", last, err)
	}
	t.Logf("helm upgrade: every node shows %s (PF %s's VFs) and the rest as %s, %.1f s after the upgrade", upgradeResource, cluster.PFName(0), demo.SRIOVResource, time.Since(start).Seconds())
}

// checkChartUninstall lists the release's objects, uninstalls it and waits until they and the
// Secrets plexus-controller made are gone; the CRDs stay.
func checkChartUninstall(ctx context.Context, t *testing.T, c *cluster.Cluster) {
	manifest, err := c.Helm(ctx, "get", "manifest", demo.ReleaseName, "--namespace", demo.PlexusNamespace)
	if err != nil {
		t.Fatal(err)
	}
	before, err := kubectlStdin(ctx, c, manifest, "get", "-f", "-", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	objs := objectNames(before)
	docs := strings.Count("\n"+manifest, "\n---")
	if len(objs) == 0 || len(objs) != docs {
		t.Fatalf("the release has %d objects in its manifest, %d of them found: %v", docs, len(objs), objs)
	}
	secrets := []string{"plexus-ca", "plexus-webhook-tls"}
	for _, s := range secrets {
		if _, err := c.Clientset.CoreV1().Secrets(demo.PlexusNamespace).Get(ctx, s, metav1.GetOptions{}); err != nil {
			t.Fatalf("Secret %s of plexus-controller: %v", s, err)
		}
	}
	if _, err := c.Helm(ctx, "uninstall", demo.ReleaseName, "--namespace", demo.PlexusNamespace, "--wait"); err != nil {
		t.Fatal(err)
	}
	var left []string
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		out, err := kubectlStdin(ctx, c, manifest, "get", "-f", "-", "-o", "name", "--ignore-not-found")
		if err != nil {
			return false, nil
		}
		left = objectNames(out)
		for _, s := range secrets {
			if _, err := c.Clientset.CoreV1().Secrets(demo.PlexusNamespace).Get(ctx, s, metav1.GetOptions{}); err == nil {
				left = append(left, "secret/"+s)
			}
		}
		return len(left) == 0, nil
	})
	if err != nil {
		t.Errorf("helm uninstall left %v: %v", left, err)
	}
	out, err := kubectl(ctx, c, "get", "crd", "-o", "name")
	for _, crd := range []string{"ipblocks.ipam.plexus.io", "ippools.ipam.plexus.io", "network-attachment-definitions.k8s.cni.cncf.io"} {
		if err != nil || !strings.Contains(out, crd) {
			t.Errorf("CRD %s is gone after helm uninstall: %v %s", crd, err, out)
		}
	}
	t.Logf("helm uninstall removed the release's %d objects and plexus-controller's Secrets; the CRDs stay", len(objs))
}

// objectNames are the lines of `kubectl get -o name` output that name an object (not a warning).
func objectNames(out string) []string {
	var names []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); strings.Contains(l, "/") && !strings.Contains(l, " ") {
			names = append(names, l)
		}
	}
	return names
}
