package metricsauth

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
)

// Filter returns a wrapper that serves a handler only to callers the API server (reached with
// cfg) authenticates and authorizes for "get" on the request's path: 401 without a valid token,
// 403 without RBAC. Decisions are cached for a minute (allowed) or 30 s (denied).
func Filter(cfg *rest.Config, log logr.Logger) (func(http.Handler) http.Handler, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("an API client for authenticating metrics scrapers: %w", err)
	}
	f, err := filters.WithAuthenticationAndAuthorization(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("authenticating metrics scrapers: %w", err)
	}
	return func(h http.Handler) http.Handler {
		guarded, err := f(log, h)
		if err != nil { // the filter cannot be built: serve nothing rather than everything
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "metrics authentication unavailable: "+err.Error(), http.StatusInternalServerError)
			})
		}
		return guarded
	}, nil
}

// SelfSignedTLS is a TLS configuration with a fresh self-signed certificate for host (a name or
// an address), for a metrics endpoint whose scrapers do not verify it (as kube-controller-manager's
// default): the point is that the bearer token is encrypted.
func SelfSignedTLS(host string) (*tls.Config, error) {
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = append(ips, ip)
	}
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(host, ips, nil)
	if err != nil {
		return nil, fmt.Errorf("generating a self-signed metrics certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}, nil
}
