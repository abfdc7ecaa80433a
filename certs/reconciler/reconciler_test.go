package reconciler

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/plexus-project/plexus/certs"
)

// TestPassesRotate runs passes at chosen instants over a fake client (the integration test
// runs the same against a real API server and webhook).
func TestPassesRotate(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "plexus-webhook", UID: "mwc-uid"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "a.plexus.io"}, {Name: "b.plexus.io"}}}
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(mwc).Build()
	opts := Options{
		Namespace: "plexus-system", CALifetime: 3 * time.Hour, Lifetime: 3 * time.Hour, TrustDelay: time.Minute,
		Serving:               []Serving{{SecretName: "plexus-webhook-tls", DNSNames: ServiceDNSNames("plexus-webhook", "plexus-system")}},
		WebhookConfigurations: []string{"plexus-webhook"},
		Clock:                 func() time.Time { return now },
	}
	opts.setDefaults()
	r := &Reconciler{Client: c, Opts: opts}
	pass := func() time.Duration {
		t.Helper()
		res, err := r.Reconcile(ctx, reconcile.Request{})
		if err != nil {
			t.Fatalf("pass at %v: %v", now, err)
		}
		return res.RequeueAfter
	}
	secret := func(name string) *corev1.Secret {
		t.Helper()
		var s corev1.Secret
		if err := c.Get(ctx, types.NamespacedName{Namespace: "plexus-system", Name: name}, &s); err != nil {
			t.Fatal(err)
		}
		return &s
	}
	bundleOf := func() []byte {
		t.Helper()
		var m admissionregistrationv1.MutatingWebhookConfiguration
		if err := c.Get(ctx, client.ObjectKeyFromObject(mwc), &m); err != nil {
			t.Fatal(err)
		}
		if string(m.Webhooks[0].ClientConfig.CABundle) != string(m.Webhooks[1].ClientConfig.CABundle) {
			t.Fatal("the webhooks of one configuration got different bundles")
		}
		return m.Webhooks[0].ClientConfig.CABundle
	}
	issuer := func() string {
		t.Helper()
		kp, err := certs.ParseKeyPair(secret("plexus-webhook-tls").Data["tls.crt"], secret("plexus-webhook-tls").Data["tls.key"])
		if err != nil {
			t.Fatal(err)
		}
		return string(kp.Cert.RawIssuer) + string(kp.Cert.AuthorityKeyId)
	}
	caID := func(key string) string {
		t.Helper()
		cs, _ := certs.ParseBundle(secret("plexus-ca").Data[key])
		if len(cs) == 0 {
			t.Fatalf("no %s in the CA Secret", key)
		}
		return string(cs[0].RawSubject) + string(cs[0].SubjectKeyId)
	}

	wait := pass()
	for _, name := range []string{"plexus-ca", "plexus-webhook-tls"} {
		// Dependents of the webhook configuration: uninstalling the chart removes them too.
		if refs := secret(name).OwnerReferences; len(refs) != 1 || refs[0].UID != "mwc-uid" || refs[0].Kind != "MutatingWebhookConfiguration" {
			t.Errorf("Secret %s has owners %+v, want the MutatingWebhookConfiguration", name, refs)
		}
	}
	first := caID(KeyCACert)
	if issuer() != first {
		t.Fatal("the serving certificate is not signed by the CA")
	}
	if n := countCerts(t, bundleOf()); n != 1 {
		t.Fatalf("bundle holds %d CAs, want 1", n)
	}
	if wait < time.Hour || wait > 2*time.Hour+time.Minute {
		t.Errorf("next pass in %v, want at the renewal point (about 2h)", wait)
	}

	now = now.Add(wait)
	pass()
	if n := countCerts(t, bundleOf()); n != 2 {
		t.Fatalf("after the CA's renewal point the bundle holds %d CAs, want 2 (old and successor)", n)
	}
	if n := countCerts(t, secret("plexus-webhook-tls").Data[KeyBundle]); n != 2 {
		t.Fatalf("the serving Secret's ca.crt holds %d CAs, want 2", n)
	}
	if caID(KeyCACert) != first || issuer() != first {
		t.Fatal("the successor signs before the trust delay passed")
	}
	second := caID(KeyNextCert)

	now = now.Add(opts.TrustDelay)
	pass()
	if caID(KeyCACert) != second || issuer() != second {
		t.Fatal("after the trust delay the successor must be the CA and sign the serving certificate")
	}
	if n := countCerts(t, bundleOf()); n != 2 {
		t.Fatalf("the old CA must stay trusted until it expires: bundle holds %d", n)
	}
}

func countCerts(t *testing.T, pem []byte) int {
	t.Helper()
	cs, err := certs.ParseBundle(pem)
	if err != nil {
		t.Fatal(err)
	}
	return len(cs)
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name    string
		f       Flags
		enabled bool
		wantErr string
	}{
		{"none", Flags{Mode: "none"}, false, ""},
		{"unknown mode", Flags{Mode: "auto"}, false, `--certs-mode="auto"`},
		{"no namespace", Flags{Mode: "self-managed", WebhookService: "w", WebhookSecret: "w-tls"}, true, "--certs-namespace"},
		{"delay too long", Flags{Mode: "self-managed", Namespace: "ns", WebhookService: "w", WebhookSecret: "w-tls", CALifetime: time.Minute, TrustDelay: time.Minute}, true, "trust delay"},
		{"ok", Flags{Mode: "self-managed", Namespace: "ns", WebhookService: "w", WebhookSecret: "w-tls", ExtenderService: "e", ExtenderSecret: "e-tls", WebhookConfigurations: "a, b"}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, enabled, err := tt.f.Options()
			if enabled != tt.enabled || (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("enabled %v, err %v; want %v, %q", enabled, err, tt.enabled, tt.wantErr)
			}
			if tt.name == "ok" && (len(o.Serving) != 2 || len(o.WebhookConfigurations) != 2 || o.Serving[0].DNSNames[2] != "w.ns.svc") {
				t.Errorf("options = %+v", o)
			}
		})
	}
}
