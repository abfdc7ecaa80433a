package metricsauth

import (
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/rest"
)

func TestSelfSignedTLS(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "node-1.example"} {
		cfg, err := SelfSignedTLS(host)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Certificates) != 1 || cfg.MinVersion == 0 {
			t.Fatalf("%s: config %+v", host, cfg)
		}
		leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("%s: certificate does not name it: %v", host, err)
		}
		if ip := net.ParseIP(host); ip != nil && len(leaf.IPAddresses) == 0 {
			t.Errorf("%s: no IP SAN", host)
		}
	}
}

// fakeReviews is an API server answering TokenReviews (tokens "reader", "nobody") and
// SubjectAccessReviews (only user "reader" may get /metrics), counting the reviews.
func fakeReviews(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var reviews atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reviews.Add(1)
		switch r.URL.Path {
		case "/apis/authentication.k8s.io/v1/tokenreviews":
			var tr authnv1.TokenReview
			_ = json.NewDecoder(r.Body).Decode(&tr)
			if tr.Spec.Token == "reader" || tr.Spec.Token == "nobody" {
				tr.Status.Authenticated, tr.Status.User.Username = true, tr.Spec.Token
			}
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(tr)
		case "/apis/authorization.k8s.io/v1/subjectaccessreviews":
			var sar authzv1.SubjectAccessReview
			_ = json.NewDecoder(r.Body).Decode(&sar)
			na := sar.Spec.NonResourceAttributes
			sar.Status.Allowed = sar.Spec.User == "reader" && na != nil && na.Path == "/metrics" && na.Verb == "get"
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(sar)
		default:
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &reviews
}

func TestFilter(t *testing.T) {
	api, reviews := fakeReviews(t)
	filter, err := Filter(&rest.Config{Host: api.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	h := filter(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics")) }))
	get := func(path, token string) int {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, tc := range []struct {
		who, path, token string
		want             int
	}{
		{"no token", "/metrics", "", 401},
		{"unknown token", "/metrics", "forged", 401},
		{"no RBAC", "/metrics", "nobody", 403},
		{"metrics reader", "/metrics", "reader", 200},
		{"metrics reader, another path", "/debug", "reader", 403},
	} {
		if got := get(tc.path, tc.token); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.who, got, tc.want)
		}
	}
	before := reviews.Load()
	if get("/metrics", "reader") != 200 || get("/metrics", "nobody") != 403 {
		t.Error("cached decisions changed")
	}
	if reviews.Load() != before {
		t.Errorf("a decision made a moment ago was asked again (%d more reviews)", reviews.Load()-before)
	}
	api.Close() // the API server is gone: a new caller gets 500, not the metrics
	if got := get("/metrics", "someone-new"); got != http.StatusInternalServerError {
		t.Errorf("with the API server down: %d, want 500", got)
	}
}
