package controlplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// Identity is a user of the control plane that is not a cluster admin: it may do what the
// ClusterRoles bound to it allow, and nothing else, so a component run under it fails a test
// when its role lacks a rule.
type Identity struct {
	// Name is the user name.
	Name string
	// Config reaches the API server as that user (a client certificate).
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig for that user, for binaries.
	Kubeconfig string
}

// NewIdentity adds the user name, in no group but system:authenticated, and binds it to the
// ClusterRole of each YAML file in roleFiles (one ClusterRole a file, e.g. a component's
// testdata/clusterrole.yaml, the rules its chart role gives it).
func (cp *ControlPlane) NewIdentity(t testing.TB, name string, roleFiles ...string) *Identity {
	t.Helper()
	u, err := cp.Env.AddUser(envtest.User{Name: name}, cp.Config)
	if err != nil {
		t.Fatalf("adding user %s: %v", name, err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		t.Fatalf("kubeconfig for %s: %v", name, err)
	}
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range roleFiles {
		role := cp.ApplyClusterRole(t, f)
		cp.bind(t, role, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name})
	}
	return &Identity{Name: name, Config: u.Config(), Kubeconfig: path}
}

// ApplyClusterRole creates (or replaces) the ClusterRole in the YAML file and returns its name.
func (cp *ControlPlane) ApplyClusterRole(t testing.TB, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.UnmarshalStrict(b, role); err != nil || role.Kind != "ClusterRole" {
		t.Fatalf("%s: want one ClusterRole: %v", file, err)
	}
	ctx := context.Background()
	err = cp.Client.Create(ctx, role)
	if apierrors.IsAlreadyExists(err) {
		old := &rbacv1.ClusterRole{}
		if err = cp.Client.Get(ctx, clientKey(role.Name), old); err == nil {
			role.ResourceVersion = old.ResourceVersion
			err = cp.Client.Update(ctx, role)
		}
	}
	if err != nil {
		t.Fatalf("applying ClusterRole %s from %s: %v", role.Name, file, err)
	}
	return role.Name
}

func (cp *ControlPlane) bind(t testing.TB, role string, subject rbacv1.Subject) {
	t.Helper()
	b := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%s-%s", role, subject.Kind, subject.Name)},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{subject},
	}
	if err := cp.Client.Create(context.Background(), b); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("binding ClusterRole %s to %s %s: %v", role, subject.Kind, subject.Name, err)
	}
}

// ServiceAccountToken creates the service account namespace/name (and the namespace) if
// needed, binds it to the ClusterRoles in roleFiles and returns a bearer token for it (a
// TokenRequest), e.g. for a metrics scraper.
func (cp *ControlPlane) ServiceAccountToken(t testing.TB, namespace, name string, roleFiles ...string) string {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := cp.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if err := cp.Client.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, f := range roleFiles {
		cp.bind(t, cp.ApplyClusterRole(t, f), rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: name})
	}
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token for service account %s/%s: %v", namespace, name, err)
	}
	return tr.Status.Token
}

func clientKey(name string) client.ObjectKey { return client.ObjectKey{Name: name} }

// MetricsReaderToken returns a bearer token of a service account allowed exactly "get" on the
// non-resource URL /metrics (what a Prometheus scraper is given), and one of a service account
// allowed nothing, to check that /metrics refuses it.
func (cp *ControlPlane) MetricsReaderToken(t testing.TB) (reader, nobody string) {
	t.Helper()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "plexus-test-metrics-reader"},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}
	if err := cp.Client.Create(context.Background(), role); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	nobody = cp.ServiceAccountToken(t, "monitoring", "nobody")
	cp.bind(t, role.Name, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: "monitoring", Name: "prometheus"})
	return cp.ServiceAccountToken(t, "monitoring", "prometheus"), nobody
}

// Scrape GETs url (a /metrics endpoint served over HTTPS with a self-signed certificate, as
// internal/metricsauth serves it) with token as the bearer ("" for none), and returns the
// status code and body; a request that fails returns code 0 and the error.
func Scrape(t testing.TB, url, token string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
