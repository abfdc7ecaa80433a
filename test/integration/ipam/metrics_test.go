package ipam

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestControllerMetricsNeedAuthorization: plexus-controller serves /metrics over HTTPS to callers
// the API server authenticates and authorizes only: no token 401, a ServiceAccount not allowed
// "get" on /metrics 403, one allowed 200. It runs under its test role (testdata/rbac.yaml), which
// must therefore allow it the TokenReviews and SubjectAccessReviews this takes.
func TestControllerMetricsNeedAuthorization(t *testing.T) {
	e := start(t)
	ctx := ctxT(t, 3*time.Minute)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	e.startController(t, "--metrics-bind-address", addr)

	cs, err := kubernetes.NewForConfig(e.cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	token := func(name string) string {
		t.Helper()
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
		if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("a token for %s: %v", name, err)
		}
		return tr.Status.Token
	}
	allowed, denied := token("prometheus"), token("nosy")
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-metrics"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "default", Name: "prometheus"}}}
	if err := e.cp.Client.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := e.cp.Client.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the controller's pair is self-signed
	get := func(bearer string) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// The endpoint comes up with the manager; plain HTTP is not served.
	deadline := time.Now().Add(90 * time.Second)
	for {
		code, err := get(allowed)
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /metrics with an allowed token: %d %v", code, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, tc := range []struct {
		who, token string
		want       int
	}{{"no token", "", http.StatusUnauthorized}, {"a ServiceAccount without the role", denied, http.StatusForbidden}} {
		if code, err := get(tc.token); err != nil || code != tc.want {
			t.Errorf("GET /metrics with %s: %d %v, want %d", tc.who, code, err, tc.want)
		}
	}
	// A token the API server does not know: controller-runtime's filter answers 500 when the
	// TokenReview reports an error with its "not authenticated" (it does for a malformed token);
	// either way no metrics.
	if code, err := get("garbage"); err != nil || (code != http.StatusUnauthorized && code != http.StatusInternalServerError) {
		t.Errorf("GET /metrics with a bad token: %d %v, want 401 or 500", code, err)
	}
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP GET /metrics answered %d", resp.StatusCode)
		}
	}
}
