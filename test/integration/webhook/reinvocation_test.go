package webhook

import (
	"context"
	"net"
	"strings"
	"testing"

	"gomodules.xyz/jsonpatch/v2"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/plexus-project/plexus/webhook"
	"github.com/plexus-project/plexus/webhook/config"
	"github.com/plexus-project/plexus/webhook/server"
)

// TestReinvocation has another mutating webhook, called after Plexus's, change the pod, so the
// API server calls Plexus's again (reinvocationPolicy IfNeeded): the second call must change
// nothing, and the pod must ask for 2 devices, not 4.
func TestReinvocation(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()

	// A labeller webhook, registered under a name sorting after plexus-webhook.
	cert, key := e.ca.WritePair(t, t.TempDir(), 7)
	labeller := admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return webhook.Patched("Labelled", []jsonpatch.Operation{{Operation: "add", Path: "/metadata/labels/labelled", Value: "yes"}})
	})
	srv, err := server.New(server.Options{CertFile: cert, KeyFile: key, Mutator: labeller})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	m := config.Mutating(config.Options{Name: "zz-labeller", URL: "https://" + ln.Addr().String(), CABundle: e.ca.Bundle})
	m.Webhooks[0].Name = "labeller.example.com"
	never := admissionregistrationv1.NeverReinvocationPolicy
	m.Webhooks[0].ReinvocationPolicy = &never
	if err := e.c.Create(ctx, m); err != nil {
		t.Fatal(err)
	}

	e.createNAD(t, sriovNAD("sriov-n3"))
	e.createNAD(t, sriovNAD("sriov-n6"))
	e.createNAD(t, macvlanNAD("macvlan-n4"))
	for _, n := range []string{"sriov-n3", "sriov-n6", "macvlan-n4"} {
		e.waitNAD(t, n)
	}
	unchanged := `plexus_webhook_admission_decisions_total{allowed="true",reason="Unchanged",webhook="mutate"}`
	var got *corev1.Pod
	eventually(t, "the labeller being called", func() error {
		got = acceptancePod("reinvoked")
		if err := e.c.Create(ctx, got, client.DryRunAll); err != nil {
			return err
		}
		if got.Labels["labelled"] != "yes" {
			return errorf("labeller not called yet")
		}
		return nil
	})
	if l := got.Spec.Containers[1].Resources.Limits[sriovResource]; l.String() != "2" {
		t.Errorf("after reinvocation, limit %s, want 2", l.String())
	}
	if n := len(got.Spec.Volumes); n != 1 {
		t.Errorf("after reinvocation, %d volumes, want 1", n)
	}
	for _, c := range got.Spec.Containers {
		if len(c.VolumeMounts) != 1 {
			t.Errorf("container %s has mounts %+v", c.Name, c.VolumeMounts)
		}
	}
	if n := e.metric(t, unchanged); n < 1 {
		t.Errorf("Plexus's webhook was not reinvoked (no Unchanged decision): %v", n)
	}
	if !strings.Contains(got.Annotations["k8s.v1.cni.cncf.io/networks"], "sriov-n3") {
		t.Errorf("annotations lost: %v", got.Annotations)
	}
}
