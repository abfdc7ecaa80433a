package chart

import (
	"bytes"
	"context"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-project/plexus/test/controlplane"
)

// TestInstallUpgradeUninstall runs helm install, upgrade and uninstall of the chart, with Helm 3
// and with Helm 4, against a real API server (no kubelet: the workloads are created, not run): the upgrade carries a changed
// device plugin resourceList into its ConfigMap and rolls the DaemonSet's pods (a new template
// checksum) and keeps the injected caBundle; uninstall removes every object the release created and keeps the CRDs.
func TestInstallUpgradeUninstall(t *testing.T) {
	for _, cli := range clis {
		t.Run(cli, func(t *testing.T) { installUpgradeUninstall(t, cli) })
	}
}

func installUpgradeUninstall(t *testing.T, cli string) {
	cp := controlplane.Start(t, controlplane.Options{})
	ctx := context.Background()
	kubeconfig := cp.Kubeconfig(t, "chart-installer")
	run := func(args ...string) string {
		t.Helper()
		out, err := helmCLI(t, cli, append(args, "--kubeconfig", kubeconfig)...)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", cli, strings.Join(args, " "), err, out)
		}
		return out
	}
	run("install", "plexus", chartDir(t), "--namespace", namespace, "--create-namespace")
	rendered := objects(t, render(t))
	for _, o := range rendered {
		if !exists(ctx, t, cp, o) {
			t.Errorf("helm install did not create %s %s", o.GetKind(), o.GetName())
		}
	}
	ds := &appsv1.DaemonSet{}
	key := types.NamespacedName{Namespace: namespace, Name: "plexus-deviceplugin"}
	if err := cp.Client.Get(ctx, key, ds); err != nil {
		t.Fatal(err)
	}
	before := ds.Spec.Template.Annotations["checksum/config"]

	// What the certs reconciler (or cert-manager's injector) wrote must survive the upgrade, or
	// every upgrade would be an admission outage until the next injection.
	injected := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := cp.Client.Get(ctx, types.NamespacedName{Name: "plexus-webhook"}, &mwc); err != nil {
		t.Fatal(err)
	}
	mwc.Webhooks[0].ClientConfig.CABundle = injected
	if err := cp.Client.Update(ctx, &mwc); err != nil {
		t.Fatal(err)
	}

	run("upgrade", "plexus", chartDir(t), "--namespace", namespace, "--reuse-values",
		"--set", "devicePlugin.resourceList[0].resourceName=sriov_n3",
		"--set", "devicePlugin.resourceList[0].selectors.pfNames[0]=ens1f0")
	if err := cp.Client.Get(ctx, types.NamespacedName{Name: "plexus-webhook"}, &mwc); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mwc.Webhooks[0].ClientConfig.CABundle, injected) {
		t.Errorf("helm upgrade wiped the injected caBundle (now %q)", mwc.Webhooks[0].ClientConfig.CABundle)
	}
	var cm corev1.ConfigMap
	if err := cp.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: "plexus-deviceplugin"}, &cm); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cm.Data["config.json"], `"resourceName":"sriov_n3"`) || !strings.Contains(cm.Data["config.json"], "ens1f0") {
		t.Errorf("the upgraded ConfigMap holds %s", cm.Data["config.json"])
	}
	if err := cp.Client.Get(ctx, key, ds); err != nil {
		t.Fatal(err)
	}
	if after := ds.Spec.Template.Annotations["checksum/config"]; after == before || after == "" {
		t.Errorf("the DaemonSet's pod template checksum stayed %q: its pods would keep the old resourceList", after)
	}

	run("uninstall", "plexus", "--namespace", namespace, "--wait")
	for _, o := range rendered {
		if exists(ctx, t, cp, o) {
			t.Errorf("helm uninstall left %s %s", o.GetKind(), o.GetName())
		}
	}
	for _, crd := range []string{"network-attachment-definitions.k8s.cni.cncf.io", "ippools.ipam.plexus.io", "ipblocks.ipam.plexus.io"} {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
		if err := cp.Client.Get(ctx, types.NamespacedName{Name: crd}, u); err != nil {
			t.Errorf("CRD %s gone after uninstall (Helm keeps CRDs): %v", crd, err)
		}
	}
}

// exists reports whether the API server has o (a deleted object with finalizers pending counts
// as gone).
func exists(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, o *unstructured.Unstructured) bool {
	t.Helper()
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(schema.FromAPIVersionAndKind(o.GetAPIVersion(), o.GetKind()))
	err := cp.Client.Get(ctx, client.ObjectKey{Namespace: o.GetNamespace(), Name: o.GetName()}, got)
	if client.IgnoreNotFound(err) != nil {
		t.Fatalf("reading %s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return err == nil && got.GetDeletionTimestamp() == nil
}
