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
)

// webhookReady waits for the replicas (they start once plexus-controller has written their
// serving certificate) and until the API server really calls the webhook (plexus-controller
// injected its CA into the webhook configurations): a dry-run pod selecting a probe NAD comes
// back with the NAD's resource injected.
func webhookReady(ctx context.Context, c *cluster.Cluster) error {
	if err := deploymentReady(ctx, c, "plexus-webhook", 3*time.Minute); err != nil {
		return fmt.Errorf("the webhook's replicas never became ready (kubectl -n %s describe deploy/plexus-webhook): %w", PlexusNamespace, err)
	}
	return probeWebhook(ctx, c)
}

// deploymentReady waits until Deployment name of PlexusNamespace has all its replicas ready
// and up to date.
func deploymentReady(ctx context.Context, c *cluster.Cluster, name string, timeout time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		d, err := c.Clientset.AppsV1().Deployments(PlexusNamespace).Get(ctx, name, metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == *d.Spec.Replicas && deploymentCurrent(d), nil
	})
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

// controllerReady waits until plexus-controller's replicas are ready and one holds the lease.
func controllerReady(ctx context.Context, c *cluster.Cluster) error {
	return leaderReady(ctx, c, "plexus-controller", "plexus-controller")
}

// schedulerReady waits until the second kube-scheduler (plexus-extender beside it) is ready and
// holds its lease.
func schedulerReady(ctx context.Context, c *cluster.Cluster) error {
	return leaderReady(ctx, c, "plexus-scheduler", "plexus-scheduler")
}

// leaderReady waits until Deployment name's replicas are ready and Lease lease of
// PlexusNamespace has a holder.
func leaderReady(ctx context.Context, c *cluster.Cluster, name, lease string) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := c.Clientset.AppsV1().Deployments(PlexusNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil || d.Status.ReadyReplicas != *d.Spec.Replicas || !deploymentCurrent(d) {
			last = "replicas not ready"
			return false, nil
		}
		l, err := c.Clientset.CoordinationV1().Leases(PlexusNamespace).Get(ctx, lease, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
			last = "no holder of Lease " + lease + " yet"
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("%s (kubectl -n %s logs deploy/%s --all-containers): %w", last, PlexusNamespace, name, err)
	}
	return nil
}
