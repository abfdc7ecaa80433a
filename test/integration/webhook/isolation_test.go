package webhook

import (
	"context"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-project/plexus/cni/network"
)

// TestNamespaceIsolation: with isolation on (the chart's default), a pod may select the NADs of
// its own namespace and of the shared ones only, at create and by a later update, and the
// networks of a pod on a node cannot change at all; other updates never reach the webhook.
func TestNamespaceIsolation(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	for _, ns := range []string{"team-a", "team-b"} {
		if err := e.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	private := macvlanNAD("private")
	private.Namespace = "team-b"
	e.createNAD(t, private)
	e.createNAD(t, macvlanNAD("shared-net"))
	e.waitNAD(t, "shared-net")

	inTeamA := func(name, networks string) *corev1.Pod {
		p := pod(name, networks)
		p.Namespace = "team-a"
		return p
	}
	t.Run("another namespace's NAD is refused", func(t *testing.T) {
		err := e.c.Create(ctx, inTeamA("crosses", "team-b/private"))
		want := `admission webhook "pods.mutate.plexus.io" denied the request: network 1 ("team-b/private"): pods of namespace "team-a" may not select NetworkAttachmentDefinitions of namespace "team-b" (namespace isolation; shared namespaces: default, kube-system)`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v\nwant %q", err, want)
		}
	})
	t.Run("a shared namespace's NAD is allowed", func(t *testing.T) {
		if err := e.c.Create(ctx, inTeamA("shared", "default/shared-net"), client.DryRunAll); err != nil {
			t.Errorf("selecting default/shared-net from team-a: %v", err)
		}
	})
	t.Run("an update cannot select what a create could not", func(t *testing.T) {
		p := inTeamA("pending", "default/shared-net")
		if err := e.c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		p.Annotations[network.NetworksAnnotation] = "team-b/private"
		err := e.c.Update(ctx, p)
		want := `admission webhook "pod-updates.validate.plexus.io" denied the request: network 1 ("team-b/private"): pods of namespace "team-a" may not select`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v\nwant %q", err, want)
		}
	})
	t.Run("the networks of a scheduled pod cannot change", func(t *testing.T) {
		p := inTeamA("scheduled", "default/shared-net")
		p.Spec.NodeName = "node-1"
		if err := e.c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		for _, networks := range []string{"default/shared-net, default/shared-net", ""} {
			q := p.DeepCopy()
			if networks == "" {
				delete(q.Annotations, network.NetworksAnnotation)
			} else {
				q.Annotations[network.NetworksAnnotation] = networks
			}
			err := e.c.Update(ctx, q)
			want := `admission webhook "pod-updates.validate.plexus.io" denied the request: pod team-a/scheduled runs on node node-1: the networks of a scheduled pod cannot change`
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("networks %q: error = %v\nwant %q", networks, err, want)
			}
		}
		// Other updates (labels, the CNI's network-status) do not reach the webhook at all.
		before := e.metric(t, `plexus_webhook_admission_decisions_total{allowed="true",reason="Unchanged",webhook="validate"}`) +
			e.metric(t, `plexus_webhook_admission_decisions_total{allowed="false"`)
		if err := e.c.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
			t.Fatal(err)
		}
		p.Labels["touched"] = "yes"
		p.Annotations[network.NetworkStatusAnnotation] = `[{"name":"default/shared-net","interface":"net1"}]`
		if err := e.c.Update(ctx, p); err != nil {
			t.Fatalf("a label and network-status update was refused: %v", err)
		}
		after := e.metric(t, `plexus_webhook_admission_decisions_total{allowed="true",reason="Unchanged",webhook="validate"}`) +
			e.metric(t, `plexus_webhook_admission_decisions_total{allowed="false"`)
		if after != before {
			t.Errorf("an update that leaves the networks alone reached the webhook (%v decisions, was %v): its matchCondition must keep it away", after, before)
		}
	})
}

// TestNADHostPaths: a NAD author cannot make plexus-ipam, root on every node, write or read
// files outside the node's Plexus directories; what kubectl shows names the field and the place.
func TestNADHostPaths(t *testing.T) {
	e := startEnv(t)
	cases := []struct{ name, ipam, want string }{
		{"log-file", `"range":"10.0.0.0/24","log_file":"/etc/cron.d/own"`,
			`admission webhook "nads.validate.plexus.io" denied the request: NetworkAttachmentDefinition default/log-file is invalid: spec.config.ipam.log_file: Invalid value: "/etc/cron.d/own": a network configuration may only log to a file inside /var/log/plexus`},
		{"flat-file", `"configuration_path":"/etc/shadow"`, `spec.config.ipam.configuration_path: Invalid value: "/etc/shadow": a network configuration may only name a flat file inside /etc/plexus`},
		{"lock-dir", `"range":"10.0.0.0/24","lock_dir":"/var/lib/kubelet"`, `spec.config.ipam.lock_dir: Invalid value: "/var/lib/kubelet": a network configuration may only name /run/plexus-ipam`},
		{"node-name", `"range":"10.0.0.0/24","node_name":"../../etc"`, `spec.config.ipam.node_name: Invalid value: "../../etc": not a valid node name`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			manifest := nadManifest(tc.name, `{"cniVersion":"1.0.0","type":"macvlan","master":"eth0","ipam":{"type":"plexus-ipam",`+tc.ipam+`}}`)
			_, err := e.kubectl(t, manifest, "apply", "-f", "-")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("kubectl apply: %v\nwant %q", err, tc.want)
			}
		})
	}
	t.Run("a Whereabouts kubeconfig elsewhere is admitted with a warning", func(t *testing.T) {
		manifest := nadManifest("wb", `{"cniVersion":"1.0.0","type":"macvlan","master":"eth0","ipam":{"type":"whereabouts","range":"10.0.0.0/24","kubernetes":{"kubeconfig":"/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig"}}}`)
		out, err := e.kubectlCombined(t, manifest, "apply", "-f", "-")
		if err != nil {
			t.Fatalf("kubectl apply: %v", err)
		}
		if want := `Warning: spec.config.ipam.kubernetes.kubeconfig "/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig" is ignored`; !strings.Contains(out, want) {
			t.Errorf("kubectl said:\n%s\nwant the warning %q", out, want)
		}
	})
}

// TestMetricsNeedAuthorization: /metrics answers only callers the API server authenticates
// and authorizes for it (a TokenReview and a SubjectAccessReview by the webhook, which runs
// with only its chart role).
func TestMetricsNeedAuthorization(t *testing.T) {
	e := startEnv(t)
	for _, tc := range []struct {
		who   string
		token string
		want  int
	}{
		{"no token", "", http.StatusUnauthorized},
		// A token the API server cannot review: controller-runtime's filter answers 500
		// ("Authentication failed") when the TokenReview errors, 401 when it says no.
		{"a bad token", "not-a-token", 0},
		{"a service account without RBAC for /metrics", e.nobodyToken, http.StatusForbidden},
		{"the metrics reader", e.metricsToken, http.StatusOK},
	} {
		code, body := e.getMetrics(t, tc.token)
		if tc.want == 0 && code != http.StatusOK {
			continue
		}
		if code != tc.want {
			t.Errorf("%s: HTTP %d, want %d: %s", tc.who, code, tc.want, body)
		}
		if code != http.StatusOK && strings.Contains(body, "plexus_webhook") {
			t.Errorf("%s: metrics leaked: %s", tc.who, body)
		}
	}
}

func nadManifest(name, config string) string {
	return `apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: ` + name + `
  namespace: default
spec:
  config: '` + config + `'
`
}
