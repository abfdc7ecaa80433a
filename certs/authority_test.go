package certs

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

// TestAuthorityRotation walks one CA rotation: the successor is trusted before it signs, and the
// old CA stays trusted until it expires.
func TestAuthorityRotation(t *testing.T) {
	p := Policy{CommonName: "plexus-ca", CALifetime: 3 * time.Hour, TrustDelay: time.Minute}
	var a Authority
	step := func(now time.Time, want string) {
		t.Helper()
		got, err := a.Advance(now, p)
		if err != nil {
			t.Fatal(err)
		}
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Fatalf("at %v: Advance did %q, want %q", now.Sub(t0), got, want)
		}
	}
	trusts := func(now time.Time, cas ...*x509.Certificate) {
		t.Helper()
		bundle, err := ParseBundle(a.Bundle(now))
		if err != nil {
			t.Fatal(err)
		}
		if len(bundle) != len(cas) {
			t.Fatalf("at %v: bundle holds %d CAs, want %d", now.Sub(t0), len(bundle), len(cas))
		}
		for i := range cas {
			if !bundle[i].Equal(cas[i]) {
				t.Fatalf("at %v: bundle[%d] is not the expected CA", now.Sub(t0), i)
			}
		}
	}

	step(t0, "created the CA")
	first := a.Current.Cert
	trusts(t0, first)
	step(t0.Add(time.Hour), "")
	renew := RenewAt(first, 0)
	if got := a.NextEvent(p); !got.Equal(renew) {
		t.Fatalf("NextEvent = %v, want the renewal time %v", got, renew)
	}

	step(renew, "created the successor")
	second := a.Next.Cert
	if a.Current.Cert != first {
		t.Fatal("the successor must not sign before it is trusted")
	}
	trusts(renew, first, second)
	step(renew.Add(10*time.Minute), "") // not yet reported in place: never promoted
	if a.Current.Cert != first {
		t.Fatal("promoted before the bundle was reported in place")
	}

	trustedAt := renew.Add(10 * time.Minute)
	a.MarkTrusted(trustedAt)
	a.MarkTrusted(trustedAt.Add(time.Second)) // a second report keeps the first time
	step(trustedAt.Add(p.TrustDelay-time.Second), "")
	step(trustedAt.Add(p.TrustDelay), "promoted the successor")
	if a.Current.Cert != second || a.Next != nil {
		t.Fatal("the successor is not the current CA")
	}
	trusts(trustedAt.Add(p.TrustDelay), first, second)

	step(first.NotAfter, "dropped expired CAs")
	trusts(first.NotAfter, second)
}

func TestAuthorityExpired(t *testing.T) {
	p := Policy{CommonName: "plexus-ca", CALifetime: time.Hour, TrustDelay: time.Minute}
	var a Authority
	if _, err := a.Advance(t0, p); err != nil {
		t.Fatal(err)
	}
	old := a.Current.Cert
	// The controller was down past the CA's expiry: a new CA, nothing to wait for.
	did, err := a.Advance(t0.Add(2*time.Hour), p)
	if err != nil || did != "created the CA" || a.Current.Cert.Equal(old) {
		t.Fatalf("did %q, %v", did, err)
	}
	if n := len(a.Retired); n != 0 {
		t.Errorf("%d expired CAs kept", n)
	}

	// Expired while a successor waited: the successor takes over at once.
	if _, err := a.Advance(RenewAt(a.Current.Cert, 0), p); err != nil || a.Next == nil {
		t.Fatalf("no successor: %v", err)
	}
	next := a.Next.Cert
	did, err = a.Advance(a.Current.Cert.NotAfter, p)
	if err != nil || !strings.Contains(did, "promoted the successor") || !a.Current.Cert.Equal(next) {
		t.Fatalf("did %q, %v", did, err)
	}
}
