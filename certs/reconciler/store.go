package reconciler

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-project/plexus/certs"
)

// Keys of the CA Secret.
const (
	// KeyCACert and KeyCAKey hold the CA that signs (kubernetes.io/tls names).
	KeyCACert = corev1.TLSCertKey
	KeyCAKey  = corev1.TLSPrivateKeyKey
	// KeyNextCert and KeyNextKey hold its successor while it waits to be trusted.
	KeyNextCert = "next.crt"
	KeyNextKey  = "next.key"
	// KeyBundle holds the CAs clients trust, in the CA Secret and beside every serving pair.
	KeyBundle = "ca.crt"
	// NextTrustedAtAnnotation on the CA Secret records when the bundle holding the successor was
	// in place everywhere (RFC 3339).
	NextTrustedAtAnnotation = "certs.plexus.io/next-trusted-at"
)

// authorityFrom reads the CA state of a Secret. Damaged parts are dropped (and logged by the
// caller through the returned problem): a damaged current CA is replaced, which costs an
// outage the caller cannot avoid anyway.
func authorityFrom(s *corev1.Secret) (a certs.Authority, problem error) {
	if s == nil {
		return a, nil
	}
	cur, err := certs.ParseKeyPair(s.Data[KeyCACert], s.Data[KeyCAKey])
	if err != nil {
		return certs.Authority{}, fmt.Errorf("CA Secret %s/%s: the CA in %s/%s is unusable (a new CA replaces it): %w", s.Namespace, s.Name, KeyCACert, KeyCAKey, err)
	}
	a.Current = cur
	if len(s.Data[KeyNextCert]) > 0 {
		next, err := certs.ParseKeyPair(s.Data[KeyNextCert], s.Data[KeyNextKey])
		if err != nil {
			problem = fmt.Errorf("CA Secret %s/%s: the successor CA in %s/%s is unusable (a new one replaces it): %w", s.Namespace, s.Name, KeyNextCert, KeyNextKey, err)
		} else {
			a.Next = next
			if at, err := time.Parse(time.RFC3339, s.Annotations[NextTrustedAtAnnotation]); err == nil {
				a.NextTrustedAt = at
			}
		}
	}
	bundle, err := certs.ParseBundle(s.Data[KeyBundle])
	if err != nil {
		return a, fmt.Errorf("CA Secret %s/%s: the bundle %s is unusable (rebuilt from the CAs): %w", s.Namespace, s.Name, KeyBundle, err)
	}
	for _, c := range bundle {
		if !c.Equal(a.Current.Cert) && (a.Next == nil || !c.Equal(a.Next.Cert)) {
			a.Retired = append(a.Retired, c)
		}
	}
	return a, problem
}

// writeAuthority stores a in s at now; it reports whether s changed.
func writeAuthority(s *corev1.Secret, a *certs.Authority, now time.Time) bool {
	want := map[string][]byte{
		KeyCACert: a.Current.CertPEM,
		KeyCAKey:  a.Current.KeyPEM,
		KeyBundle: a.Bundle(now),
	}
	trustedAt := ""
	if a.Next != nil {
		want[KeyNextCert], want[KeyNextKey] = a.Next.CertPEM, a.Next.KeyPEM
		if !a.NextTrustedAt.IsZero() {
			trustedAt = a.NextTrustedAt.UTC().Format(time.RFC3339)
		}
	}
	changed := !sameData(s.Data, want) || s.Annotations[NextTrustedAtAnnotation] != trustedAt
	s.Data = want
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	if trustedAt == "" {
		delete(s.Annotations, NextTrustedAtAnnotation)
	} else {
		s.Annotations[NextTrustedAtAnnotation] = trustedAt
	}
	return changed
}

func sameData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// servingLeaf is the serving certificate of a Secret, nil when missing or damaged.
func servingLeaf(s *corev1.Secret) *x509.Certificate {
	if s == nil {
		return nil
	}
	kp, err := certs.ParseKeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil
	}
	return kp.Cert
}
