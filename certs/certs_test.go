package certs

import (
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func mustCA(t *testing.T, now time.Time, life time.Duration) *KeyPair {
	t.Helper()
	ca, err := NewCA("test-ca", now, life)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestIssueLifetimeAndChain(t *testing.T) {
	ca := mustCA(t, t0, 10*time.Hour)
	tests := []struct {
		name      string
		now       time.Time
		life      time.Duration
		wantAfter time.Time
	}{
		{"within the CA's life", t0, time.Hour, t0.Add(time.Hour)},
		{"cut to the CA's expiry", t0.Add(9 * time.Hour), 5 * time.Hour, t0.Add(10 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := ServingRequest{CommonName: "svc", DNSNames: []string{"svc.ns.svc"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Lifetime: tt.life}
			leaf, err := ca.Issue(req, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			if !leaf.Cert.NotAfter.Equal(tt.wantAfter) {
				t.Errorf("NotAfter = %v, want %v", leaf.Cert.NotAfter, tt.wantAfter)
			}
			pool := x509.NewCertPool()
			pool.AddCert(ca.Cert)
			if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: "svc.ns.svc", Roots: pool, CurrentTime: tt.now}); err != nil {
				t.Errorf("the leaf does not verify against its CA: %v", err)
			}
			if leaf.Cert.IsCA {
				t.Error("a serving certificate must not be a CA")
			}
			back, err := ParseKeyPair(leaf.CertPEM, leaf.KeyPEM)
			if err != nil || back.Cert.SerialNumber.Cmp(leaf.Cert.SerialNumber) != 0 {
				t.Errorf("PEM round trip: %v", err)
			}
		})
	}
}

func TestIssueRefusals(t *testing.T) {
	ca := mustCA(t, t0, time.Hour)
	tests := []struct {
		name string
		req  ServingRequest
		now  time.Time
		want string
	}{
		{"no names", ServingRequest{CommonName: "x", Lifetime: time.Hour}, t0, "no DNS name or IP address"},
		{"no lifetime", ServingRequest{CommonName: "x", DNSNames: []string{"x"}}, t0, "lifetime 0s must be positive"},
		{"expired CA", ServingRequest{CommonName: "x", DNSNames: []string{"x"}, Lifetime: time.Hour}, t0.Add(2 * time.Hour), "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ca.Issue(tt.req, tt.now)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestParseKeyPairMismatch(t *testing.T) {
	a, b := mustCA(t, t0, time.Hour), mustCA(t, t0, time.Hour)
	if _, err := ParseKeyPair(a.CertPEM, b.KeyPEM); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("err = %v", err)
	}
	if _, err := ParseKeyPair(nil, a.KeyPEM); err == nil {
		t.Error("no certificate must fail")
	}
}

func TestRenewAt(t *testing.T) {
	ca := mustCA(t, t0, 3*time.Hour) // NotBefore is backdated by clockSkew
	life := ca.Cert.NotAfter.Sub(ca.Cert.NotBefore)
	tests := []struct {
		fraction float64
		want     time.Time
	}{
		{0, ca.Cert.NotBefore.Add(life * 2 / 3)},
		{0.5, ca.Cert.NotBefore.Add(life / 2)},
		{1.5, ca.Cert.NotBefore.Add(life * 2 / 3)},
	}
	for _, tt := range tests {
		if got := RenewAt(ca.Cert, tt.fraction); got.Sub(tt.want).Abs() > time.Second {
			t.Errorf("RenewAt(%v) = %v, want %v", tt.fraction, got, tt.want)
		}
	}
}

func TestBundleDropsExpiredAndDuplicates(t *testing.T) {
	a, b := mustCA(t, t0, time.Hour), mustCA(t, t0, 2*time.Hour)
	got, _ := ParseBundle(Bundle(t0.Add(90*time.Minute), a.Cert, b.Cert, b.Cert, nil))
	if len(got) != 1 || !got[0].Equal(b.Cert) {
		t.Errorf("bundle = %d certificates, want only the unexpired one once", len(got))
	}
}

func TestReissueReason(t *testing.T) {
	ca, other := mustCA(t, t0, 10*time.Hour), mustCA(t, t0, 10*time.Hour)
	req := ServingRequest{CommonName: "svc", DNSNames: []string{"b", "a"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Lifetime: 3 * time.Hour}
	leaf, err := ca.Issue(req, t0)
	if err != nil {
		t.Fatal(err)
	}
	renamed := req
	renamed.DNSNames = []string{"a", "c"}
	reordered := req
	reordered.DNSNames = []string{"a", "b"}
	noIP := req
	noIP.IPs = nil
	tests := []struct {
		name string
		leaf *x509.Certificate
		ca   *x509.Certificate
		req  ServingRequest
		now  time.Time
		want string
	}{
		{"fresh", leaf.Cert, ca.Cert, req, t0.Add(time.Hour), ""},
		{"names in another order", leaf.Cert, ca.Cert, reordered, t0.Add(time.Hour), ""},
		{"none", nil, ca.Cert, req, t0, "there is none"},
		{"other CA", leaf.Cert, other.Cert, req, t0, "not signed by the current CA"},
		{"names changed", leaf.Cert, ca.Cert, renamed, t0, "DNS names"},
		{"IPs changed", leaf.Cert, ca.Cert, noIP, t0, "IP addresses"},
		{"due", leaf.Cert, ca.Cert, req, t0.Add(2 * time.Hour), "due for renewal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ReissueReason(tt.leaf, tt.ca, tt.req, tt.now, 0)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("reason = %q, want %q", got, tt.want)
			}
		})
	}
}
