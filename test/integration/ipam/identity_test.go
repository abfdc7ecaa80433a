package ipam

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// rbacFile holds the ClusterRoles the IPAM components run under in these tests.
const rbacFile = "testdata/rbac.yaml"

// kubeconfigAs writes a kubeconfig for a new user of no group (not system:masters) bound to the
// ClusterRole role of rbacFile, so a component run with it has exactly the rights its chart role
// should give it.
func (e *env) kubeconfigAs(t testing.TB, user, role string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e.applyRoles(ctx, t)
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if err := e.cp.Client.Create(ctx, binding); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("binding %s to %s: %v", user, role, err)
	}
	u, err := e.cp.Env.AddUser(envtest.User{Name: user}, e.cp.Config)
	if err != nil {
		t.Fatalf("adding user %s: %v", user, err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		t.Fatalf("kubeconfig for %s: %v", user, err)
	}
	path := filepath.Join(t.TempDir(), user+".kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// applyRoles creates the ClusterRoles of rbacFile.
func (e *env) applyRoles(ctx context.Context, t testing.TB) {
	t.Helper()
	b, err := os.ReadFile(rbacFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var role rbacv1.ClusterRole
		if err := dec.Decode(&role); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatalf("%s: %v", rbacFile, err)
		}
		if err := e.cp.Client.Create(ctx, &role); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating ClusterRole %s: %v", role.Name, err)
		}
	}
}
