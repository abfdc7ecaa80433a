package metricsauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
)

// Cache lifetimes of the API server's answers, and the bound of one review.
const (
	allowTTL      = time.Minute
	denyTTL       = 30 * time.Second
	reviewTimeout = 10 * time.Second
	maxCached     = 1024
)

// Filter returns a wrapper that serves a handler only to callers the API server (reached with
// cfg) authenticates and authorizes for "get" on the request's path: 401 without a valid token,
// 403 without RBAC, 500 when the API server cannot say. Decisions are cached for a minute
// (allowed) or 30 s (denied).
//
// It sends the TokenReview and the SubjectAccessReview itself, as controller-runtime's metrics
// filter does, without the API server libraries that filter brings (a node daemon would keep
// them resident on every node).
func Filter(cfg *rest.Config, log logr.Logger) (func(http.Handler) http.Handler, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("an API client for authenticating metrics scrapers: %w", err)
	}
	host := cfg.Host
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	r := &reviewer{http: hc, base: strings.TrimSuffix(host, "/") + strings.TrimSuffix(cfg.APIPath, "/"), decisions: map[[32]byte]decision{}}
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			code, err := r.allowed(req)
			switch {
			case err != nil:
				log.Error(err, "authenticating a metrics scraper")
				http.Error(w, "metrics authentication unavailable: "+err.Error(), http.StatusInternalServerError)
			case code != http.StatusOK:
				http.Error(w, http.StatusText(code), code)
			default:
				h.ServeHTTP(w, req)
			}
		})
	}, nil
}

// reviewer asks the API server who a token is and whether it may get a path.
type reviewer struct {
	http *http.Client
	base string

	mu        sync.Mutex
	decisions map[[32]byte]decision // by hash of token, verb and path
}

type decision struct {
	code    int
	expires time.Time
}

// allowed answers 200, 401 or 403 for req.
func (r *reviewer) allowed(req *http.Request) (int, error) {
	token, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return http.StatusUnauthorized, nil
	}
	verb := strings.ToLower(req.Method)
	key := sha256.Sum256([]byte(token + "\x00" + verb + "\x00" + req.URL.Path))
	now := time.Now()
	r.mu.Lock()
	d, ok := r.decisions[key]
	r.mu.Unlock()
	if ok && now.Before(d.expires) {
		return d.code, nil
	}
	ctx, cancel := context.WithTimeout(req.Context(), reviewTimeout)
	defer cancel()
	code, err := r.review(ctx, token, verb, req.URL.Path)
	if err != nil {
		return 0, err
	}
	ttl := denyTTL
	if code == http.StatusOK {
		ttl = allowTTL
	}
	r.mu.Lock()
	if len(r.decisions) >= maxCached {
		clear(r.decisions)
	}
	r.decisions[key] = decision{code: code, expires: now.Add(ttl)}
	r.mu.Unlock()
	return code, nil
}

// review is a TokenReview of token, then a SubjectAccessReview of verb on the non-resource path.
func (r *reviewer) review(ctx context.Context, token, verb, path string) (int, error) {
	var tr authnv1.TokenReview
	if err := r.post(ctx, "/apis/authentication.k8s.io/v1/tokenreviews", &authnv1.TokenReview{
		TypeMeta: typeMeta("TokenReview", authnv1.SchemeGroupVersion.String()), Spec: authnv1.TokenReviewSpec{Token: token},
	}, &tr); err != nil {
		return 0, err
	}
	if !tr.Status.Authenticated {
		return http.StatusUnauthorized, nil
	}
	u := tr.Status.User
	extra := map[string]authzv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authzv1.ExtraValue(v)
	}
	var sar authzv1.SubjectAccessReview
	if err := r.post(ctx, "/apis/authorization.k8s.io/v1/subjectaccessreviews", &authzv1.SubjectAccessReview{
		TypeMeta: typeMeta("SubjectAccessReview", authzv1.SchemeGroupVersion.String()),
		Spec: authzv1.SubjectAccessReviewSpec{User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
			NonResourceAttributes: &authzv1.NonResourceAttributes{Path: path, Verb: verb}},
	}, &sar); err != nil {
		return 0, err
	}
	if !sar.Status.Allowed || sar.Status.Denied {
		return http.StatusForbidden, nil
	}
	return http.StatusOK, nil
}

// post sends in as JSON to path and decodes the answer into out.
func (r *reviewer) post(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: HTTP %d: %s (the component's identity needs create on tokenreviews and subjectaccessreviews)", path, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("POST %s: decoding the answer: %w", path, err)
	}
	return nil
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

func typeMeta(kind, apiVersion string) metav1.TypeMeta {
	return metav1.TypeMeta{Kind: kind, APIVersion: apiVersion}
}
