package demo

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/test/cluster"
	"github.com/plexus-project/plexus/webhook/config"
)

// PlexusNamespace is where the demo runs Plexus's own Deployments.
const PlexusNamespace = "plexus-system"

// webhookSetup creates the namespace and the webhook's serving certificate, signed by the
// cluster CA for the Service's DNS name (the certs component will own this).
func webhookSetup(ctx context.Context, c *cluster.Cluster) error {
	if err := ensureNamespace(ctx, c); err != nil {
		return err
	}
	svc := "plexus-webhook." + PlexusNamespace + ".svc"
	crt, key, err := c.IssueServingCert(svc, svc+".cluster.local")
	if err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "plexus-webhook-tls", Namespace: PlexusNamespace},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key},
	}
	_, err = c.Clientset.CoreV1().Secrets(PlexusNamespace).Create(ctx, secret, metav1.CreateOptions{})
	return err
}

// webhookReady waits for the replicas, registers the webhook configurations with the cluster
// CA, and waits until the API server really calls the webhook: a dry-run pod selecting a probe
// NAD comes back with the NAD's resource injected.
func webhookReady(ctx context.Context, c *cluster.Cluster) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		d, err := c.Clientset.AppsV1().Deployments(PlexusNamespace).Get(ctx, "plexus-webhook", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == *d.Spec.Replicas && deploymentCurrent(d), nil
	})
	if err != nil {
		return fmt.Errorf("the webhook's replicas never became ready (kubectl -n %s logs deploy/plexus-webhook): %w", PlexusNamespace, err)
	}
	ca, err := c.CACert()
	if err != nil {
		return err
	}
	opts := config.Options{Namespace: PlexusNamespace, CABundle: ca}
	adm := c.Clientset.AdmissionregistrationV1()
	if _, err := adm.MutatingWebhookConfigurations().Create(ctx, config.Mutating(opts), metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := adm.ValidatingWebhookConfigurations().Create(ctx, config.Validating(opts), metav1.CreateOptions{}); err != nil {
		return err
	}
	return probeWebhook(ctx, c)
}

func deploymentCurrent(d *appsv1.Deployment) bool {
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == *d.Spec.Replicas
}

// probeWebhook creates a NAD with a resourceName and dry-runs a pod that selects it until the
// answer carries the injected resource.
func probeWebhook(ctx context.Context, c *cluster.Cluster) error {
	dc, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	const probe = "plexus-demo-probe"
	nad := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
		"metadata": map[string]any{"name": probe, "namespace": "default",
			"annotations": map[string]any{network.ResourceNameAnnotation: "plexus.io/probe"}},
		"spec": map[string]any{"config": `{"cniVersion":"1.0.0","name":"` + probe + `","type":"macvlan","master":"eth0"}`},
	}}
	var last error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		// The validating webhook may refuse the NAD while it is not reachable yet: retry.
		if _, err := dc.Resource(nadGVR).Namespace("default").Create(ctx, nad, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			last = err
			return false, nil
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: probe, Namespace: "default",
				Annotations: map[string]string{network.NetworksAnnotation: probe}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: cluster.BusyboxImage}}},
		}
		got, err := c.Clientset.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			last = err
			return false, nil
		}
		if _, ok := got.Spec.Containers[0].Resources.Limits["plexus.io/probe"]; !ok {
			last = fmt.Errorf("a dry-run pod selecting %s came back without plexus.io/probe", probe)
			return false, nil
		}
		return true, nil
	})
	_ = dc.Resource(nadGVR).Namespace("default").Delete(context.WithoutCancel(ctx), probe, metav1.DeleteOptions{})
	if err != nil {
		return fmt.Errorf("the API server does not reach the webhook: %v: %w", last, err)
	}
	return nil
}

// ensureNamespace creates PlexusNamespace.
func ensureNamespace(ctx context.Context, c *cluster.Cluster) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: PlexusNamespace}}
	if _, err := c.Clientset.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// controllerReady waits until plexus-controller's replicas are ready and one holds the lease.
func controllerReady(ctx context.Context, c *cluster.Cluster) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		d, err := c.Clientset.AppsV1().Deployments(PlexusNamespace).Get(ctx, "plexus-controller", metav1.GetOptions{})
		if err != nil || d.Status.ReadyReplicas != *d.Spec.Replicas || !deploymentCurrent(d) {
			last = "replicas not ready"
			return false, nil
		}
		l, err := c.Clientset.CoordinationV1().Leases(PlexusNamespace).Get(ctx, "plexus-controller", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
			last = "no leader yet"
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("%s (kubectl -n %s logs deploy/plexus-controller): %w", last, PlexusNamespace, err)
	}
	return nil
}
