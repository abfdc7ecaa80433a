package demo

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-project/plexus/test/cluster"
)

// IPAMUser is the identity plexus-ipam uses from the nodes when no IPAM agent runs there:
// WithPlexus writes its kubeconfig on every node, Install("plexus-ipam") grants its rights.
const IPAMUser = "plexus-ipam"

// nodeIPAMRBAC is what plexus-ipam does with IPAMUser's kubeconfig (ipam/allocator/apistore).
func nodeIPAMRBAC() (*rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding) {
	name := "plexus-sandbox-node-ipam"
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"ipam.plexus.io"}, Resources: []string{"ipblocks"}, Verbs: []string{"get", "list", "create", "update", "delete"}},
		{APIGroups: []string{"ipam.plexus.io"}, Resources: []string{"ippools"}, Verbs: []string{"create"}},
	}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: IPAMUser}}}
	return role, binding
}

// grantNodeIPAM gives IPAMUser its rights.
func grantNodeIPAM(ctx context.Context, c *cluster.Cluster) error {
	role, binding := nodeIPAMRBAC()
	rbac := c.Clientset.RbacV1()
	if _, err := rbac.ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("granting %s its rights: %w", IPAMUser, err)
	}
	if _, err := rbac.ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("granting %s its rights: %w", IPAMUser, err)
	}
	return nil
}

// revokeNodeIPAM undoes grantNodeIPAM.
func revokeNodeIPAM(ctx context.Context, c *cluster.Cluster) error {
	role, binding := nodeIPAMRBAC()
	rbac := c.Clientset.RbacV1()
	if err := rbac.ClusterRoleBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err := rbac.ClusterRoles().Delete(ctx, role.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}
