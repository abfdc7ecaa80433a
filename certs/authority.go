package certs

import (
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"time"
)

// Policy is how an Authority's CAs and the serving certificates it signs live.
type Policy struct {
	// CommonName of the CAs.
	CommonName string
	// CALifetime is how long a CA is valid.
	CALifetime time.Duration
	// RenewFraction of a lifetime after which a CA or a serving certificate is renewed;
	// DefaultRenewFraction when 0.
	RenewFraction float64
	// TrustDelay is how long the bundle holding a successor CA must have been in place
	// everywhere before the successor signs serving certificates: the time every client (each
	// kube-apiserver's webhook configuration cache) takes to pick the bundle up.
	TrustDelay time.Duration
}

// Authority is the CA of a self-managed install and its rotation state.
type Authority struct {
	// Current signs serving certificates.
	Current *KeyPair
	// Next is Current's successor: in the bundle, not yet signing. Nil until Current is due.
	Next *KeyPair
	// NextTrustedAt is when a bundle holding Next was in place in every client; zero until
	// the caller reports it with MarkTrusted.
	NextTrustedAt time.Time
	// Retired are former CAs kept in the bundle until they expire, because serving
	// certificates they signed may still be served.
	Retired []*x509.Certificate
}

// Advance moves a forward to now under p: it creates the CA when there is none (or it expired),
// creates the successor when Current is due for renewal, promotes the successor once it has been
// trusted for p.TrustDelay, and forgets expired retired CAs. It reports what it did ("" for
// nothing).
func (a *Authority) Advance(now time.Time, p Policy) (string, error) {
	if a.Current == nil || !now.Before(a.Current.Cert.NotAfter) {
		if a.Next != nil && now.Before(a.Next.Cert.NotAfter) {
			a.promote()
			return "the CA expired before its successor was trusted long enough: promoted the successor", nil
		}
		ca, err := NewCA(p.CommonName, now, p.CALifetime)
		if err != nil {
			return "", err
		}
		if a.Current != nil {
			a.Retired = append(a.Retired, a.Current.Cert)
		}
		a.Current, a.Next, a.NextTrustedAt = ca, nil, time.Time{}
		a.prune(now)
		return "created the CA", nil
	}
	if a.Next == nil && !now.Before(RenewAt(a.Current.Cert, p.RenewFraction)) {
		next, err := NewCA(p.CommonName, now, p.CALifetime)
		if err != nil {
			return "", err
		}
		a.Next, a.NextTrustedAt = next, time.Time{}
		return "created the successor CA (trusted first, signing later)", nil
	}
	if a.Next != nil && !a.NextTrustedAt.IsZero() && !now.Before(a.NextTrustedAt.Add(p.TrustDelay)) {
		a.promote()
		a.prune(now)
		return "promoted the successor CA", nil
	}
	if a.prune(now) {
		return "dropped expired CAs from the bundle", nil
	}
	return "", nil
}

func (a *Authority) promote() {
	if a.Current != nil {
		a.Retired = append(a.Retired, a.Current.Cert)
	}
	a.Current, a.Next, a.NextTrustedAt = a.Next, nil, time.Time{}
}

func (a *Authority) prune(now time.Time) bool {
	n := len(a.Retired)
	a.Retired = slices.DeleteFunc(a.Retired, func(c *x509.Certificate) bool { return !now.Before(c.NotAfter) })
	return len(a.Retired) != n
}

// MarkTrusted records that the bundle holding Next is in place in every client since now.
func (a *Authority) MarkTrusted(now time.Time) {
	if a.Next != nil && a.NextTrustedAt.IsZero() {
		a.NextTrustedAt = now
	}
}

// Bundle is the PEM bundle clients must trust: the retired CAs still valid, Current and Next.
func (a *Authority) Bundle(now time.Time) []byte {
	cas := append([]*x509.Certificate{}, a.Retired...)
	if a.Current != nil {
		cas = append(cas, a.Current.Cert)
	}
	if a.Next != nil {
		cas = append(cas, a.Next.Cert)
	}
	return Bundle(now, cas...)
}

// NextEvent is when Advance next has something to do (the zero time if only MarkTrusted can
// move it).
func (a *Authority) NextEvent(p Policy) time.Time {
	var events []time.Time
	switch {
	case a.Current == nil:
		return time.Time{}
	case a.Next == nil:
		events = append(events, RenewAt(a.Current.Cert, p.RenewFraction))
	case !a.NextTrustedAt.IsZero():
		events = append(events, a.NextTrustedAt.Add(p.TrustDelay))
	}
	events = append(events, a.Current.Cert.NotAfter)
	for _, c := range a.Retired {
		events = append(events, c.NotAfter)
	}
	return slices.MinFunc(events, func(x, y time.Time) int { return x.Compare(y) })
}

// ReissueReason says why the serving certificate leaf must be issued again by ca for req at now,
// or "" when it may be served on.
func ReissueReason(leaf, ca *x509.Certificate, req ServingRequest, now time.Time, renewFraction float64) string {
	switch {
	case leaf == nil:
		return "there is none"
	case leaf.CheckSignatureFrom(ca) != nil:
		return "it is not signed by the current CA"
	case !slices.Equal(sorted(leaf.DNSNames), sorted(req.DNSNames)):
		return fmt.Sprintf("its DNS names %v are not the wanted %v", leaf.DNSNames, req.DNSNames)
	case !sameIPs(leaf.IPAddresses, req.IPs):
		return fmt.Sprintf("its IP addresses %v are not the wanted %v", leaf.IPAddresses, req.IPs)
	case !now.Before(RenewAt(leaf, renewFraction)):
		return "it is due for renewal since " + RenewAt(leaf, renewFraction).UTC().Format(time.RFC3339)
	}
	return ""
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func sameIPs(a, b []net.IP) bool {
	key := func(ips []net.IP) []string {
		var out []string
		for _, ip := range ips {
			out = append(out, ip.String())
		}
		return sorted(out)
	}
	return slices.Equal(key(a), key(b))
}
