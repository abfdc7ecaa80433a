package webhook

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/webhook/inject"
	"github.com/plexus-project/plexus/webhook/validate"
)

func resourceQ(s string) resource.Quantity { return resource.MustParse(s) }

// acceptancePod selects two SR-IOV networks on one resource and a macvlan network without
// one, and asks for the devices in its second container.
func acceptancePod(name string) *corev1.Pod {
	p := pod(name, "sriov-n3, sriov-n6, macvlan-n4")
	p.Annotations[inject.ContainerAnnotation] = "app"
	return p
}

// checkInjected asserts what the webhook adds to acceptancePod, and that, once those
// additions are taken out, the pod equals control (the same pod that never reached the webhook).
func checkInjected(t *testing.T, got, control *corev1.Pod) {
	t.Helper()
	app := got.Spec.Containers[1]
	lim, req := app.Resources.Limits[sriovResource], app.Resources.Requests[sriovResource]
	if lim.String() != "2" || req.String() != "2" {
		t.Errorf("container app: %s limit %s request %s, want 2 and 2", sriovResource, lim.String(), req.String())
	}
	if _, ok := got.Spec.Containers[0].Resources.Limits[sriovResource]; ok {
		t.Errorf("container sidecar was given devices: %+v", got.Spec.Containers[0].Resources)
	}
	var vol *corev1.Volume
	for i := range got.Spec.Volumes {
		if got.Spec.Volumes[i].Name == inject.VolumeName {
			vol = &got.Spec.Volumes[i]
		}
	}
	if vol == nil || vol.DownwardAPI == nil || len(vol.DownwardAPI.Items) != 2 {
		t.Fatalf("no podnetinfo downward-API volume with labels and annotations: %+v", got.Spec.Volumes)
	}
	for _, c := range got.Spec.Containers {
		if n := len(c.VolumeMounts); n == 0 || c.VolumeMounts[n-1].MountPath != inject.MountPath || !c.VolumeMounts[n-1].ReadOnly {
			t.Errorf("container %s: podnetinfo not mounted read-only at %s: %+v", c.Name, inject.MountPath, c.VolumeMounts)
		}
	}

	// Take the injection out: what is left must be the control pod.
	stripped := got.DeepCopy()
	delete(stripped.Spec.Containers[1].Resources.Limits, sriovResource)
	delete(stripped.Spec.Containers[1].Resources.Requests, sriovResource)
	var vols []corev1.Volume
	for _, v := range stripped.Spec.Volumes {
		if v.Name != inject.VolumeName {
			vols = append(vols, v)
		}
	}
	stripped.Spec.Volumes = vols
	for i := range stripped.Spec.Containers {
		c := &stripped.Spec.Containers[i]
		c.VolumeMounts = c.VolumeMounts[:len(c.VolumeMounts)-1]
		if len(c.VolumeMounts) == 0 {
			c.VolumeMounts = nil
		}
	}
	delete(stripped.Annotations, network.NetworksAnnotation)
	delete(stripped.Annotations, "kubectl.kubernetes.io/last-applied-configuration")
	if !equality.Semantic.DeepEqual(stripped.Spec, control.Spec) {
		a, _ := yaml.Marshal(stripped.Spec)
		b, _ := yaml.Marshal(control.Spec)
		t.Errorf("besides the injection, the pod changed:\n%s\ncontrol:\n%s", a, b)
	}
	if !equality.Semantic.DeepEqual(stripped.Annotations, control.Annotations) || !equality.Semantic.DeepEqual(stripped.Labels, control.Labels) {
		t.Errorf("metadata changed: %v %v, control %v %v", stripped.Annotations, stripped.Labels, control.Annotations, control.Labels)
	}
}

func TestInjection(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	e.createNAD(t, sriovNAD("sriov-n3"))
	e.createNAD(t, sriovNAD("sriov-n6"))
	e.createNAD(t, macvlanNAD("macvlan-n4"))
	racked := macvlanNAD("racked")
	racked.Annotations[network.NodeSelectorAnnotation] = "example.com/rack=r1"
	e.createNAD(t, racked)
	for _, n := range []string{"sriov-n3", "sriov-n6", "macvlan-n4", "racked"} {
		e.waitNAD(t, n)
	}
	control := pod("control", "")
	control.Annotations = map[string]string{inject.ContainerAnnotation: "app"}
	if err := e.c.Create(ctx, control); err != nil {
		t.Fatal(err)
	}
	decisions := e.metric(t, "plexus_webhook_admission_decisions_total")

	t.Run("create", func(t *testing.T) {
		p := acceptancePod("acceptance")
		if err := e.c.Create(ctx, p); err != nil {
			t.Fatalf("creating the pod: %v", err)
		}
		got := &corev1.Pod{}
		if err := e.c.Get(ctx, client.ObjectKeyFromObject(p), got); err != nil {
			t.Fatal(err)
		}
		checkInjected(t, got, control)
	})

	t.Run("kubectl apply --dry-run=server", func(t *testing.T) {
		manifest := manifestOf(acceptancePod("dry"))
		out, err := e.kubectl(t, manifest, "apply", "--dry-run=server", "-f", "-", "-o", "yaml")
		if err != nil {
			t.Fatal(err)
		}
		got := &corev1.Pod{}
		if err := yaml.Unmarshal([]byte(out), got); err != nil {
			t.Fatalf("kubectl output: %v\n%s", err, out)
		}
		checkInjected(t, got, control)
		if err := e.c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "dry"}, &corev1.Pod{}); !apierrors.IsNotFound(err) {
			t.Errorf("a dry-run left a pod behind (or failed to look): %v", err)
		}
	})

	t.Run("kubectl dry-run shows the nodeSelector", func(t *testing.T) {
		manifest := manifestOf(pod("dry-racked", "racked,sriov-n3"))
		out, err := e.kubectl(t, manifest, "apply", "--dry-run=server", "-f", "-", "-o", "yaml")
		if err != nil {
			t.Fatal(err)
		}
		got := &corev1.Pod{}
		if err := yaml.Unmarshal([]byte(out), got); err != nil {
			t.Fatal(err)
		}
		if got.Spec.NodeSelector["example.com/rack"] != "r1" || len(got.Spec.NodeSelector) != 1 {
			t.Errorf("nodeSelector = %v, want example.com/rack=r1", got.Spec.NodeSelector)
		}
		if l := got.Spec.Containers[0].Resources.Limits[sriovResource]; l.String() != "1" {
			t.Errorf("first container limit = %s, want 1", l.String())
		}
		if err := e.c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "dry-racked"}, &corev1.Pod{}); !apierrors.IsNotFound(err) {
			t.Errorf("a dry-run left a pod behind: %v", err)
		}
	})

	t.Run("pods without networks never reach the webhook", func(t *testing.T) {
		before := e.metric(t, "plexus_webhook_admission_decisions_total")
		if err := e.c.Create(ctx, pod("plain", "")); err != nil {
			t.Fatal(err)
		}
		if after := e.metric(t, "plexus_webhook_admission_decisions_total"); after != before {
			t.Errorf("decisions went from %v to %v for a pod without networks: the matchCondition should keep it away", before, after)
		}
	})

	t.Run("the webhook wrote nothing and read nothing per admission", func(t *testing.T) {
		if d := e.metric(t, "plexus_webhook_admission_decisions_total") - decisions; d < 6 {
			t.Errorf("only %v decisions counted", d)
		}
		for _, verb := range []string{"POST", "PUT", "PATCH", "DELETE"} {
			if n := e.metric(t, `plexus_webhook_apiserver_requests_total{verb="`+verb+`"}`); n != 0 {
				t.Errorf("the webhook made %v %s requests", n, verb)
			}
		}
		lists := e.metric(t, `plexus_webhook_apiserver_requests_total{verb="GET"}`)
		for i := 0; i < 20; i++ {
			if err := e.c.Create(ctx, acceptancePod("again"), client.DryRunAll); err != nil {
				t.Fatal(err)
			}
		}
		if after := e.metric(t, `plexus_webhook_apiserver_requests_total{verb="GET"}`); after != lists {
			t.Errorf("GET/LIST requests went from %v to %v over 20 admissions: want none", lists, after)
		}
	})
}

func TestRefusals(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	e.createNAD(t, sriovNAD("sriov-n3"))
	e.createNAD(t, macvlanNAD("macvlan-n4"))
	e.waitNAD(t, "sriov-n3")
	e.waitNAD(t, "macvlan-n4")

	pods := []struct {
		name, networks, want string
	}{
		{"unknown NAD", "sriov-n3, sriov-n9",
			`admission webhook "pods.mutate.plexus.io" denied the request: network 2 ("default/sriov-n9"): NetworkAttachmentDefinition default/sriov-n9 does not exist; create it, or fix the name (kubectl get network-attachment-definitions -n default lists the ones that exist)`},
		{"bad syntax: extra comma", "sriov-n3,,macvlan-n4",
			`admission webhook "pods.mutate.plexus.io" denied the request: pod annotation k8s.v1.cni.cncf.io/networks: network 2 (""): empty network name; remove the extra comma`},
		{"bad syntax: two slashes", "default/sriov-n3/eth1",
			`network 1 ("default/sriov-n3/eth1"): more than one "/"; write <name>, <namespace>/<name>, <name>@<interface> or <namespace>/<name>@<interface>`},
		{"bad syntax: JSON object, not list", `{"name":"sriov-n3"}`,
			`the JSON form must be a list of networks: wrap the object in [ ], e.g. [{"name":"net1"}]`},
		{"requested IP outside the range (validating webhook)", `[{"name":"macvlan-n4","ips":["10.99.0.7/24"]}]`,
			`admission webhook "pods.validate.plexus.io" denied the request: network 1 ("default/macvlan-n4"): NetworkAttachmentDefinition default/macvlan-n4: network "macvlan-n4": requested address 10.99.0.7 is outside every configured range: ask for an address inside one of them`},
	}
	for i, tc := range pods {
		t.Run(tc.name, func(t *testing.T) {
			p := pod("refused-"+string(rune('a'+i)), tc.networks)
			for _, opts := range [][]client.CreateOption{nil, {client.DryRunAll}} {
				err := e.c.Create(ctx, p.DeepCopy(), opts...)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("create (%v): error = %v\nwant it to contain %q", opts, err, tc.want)
				}
			}
			if err := e.c.Get(ctx, client.ObjectKeyFromObject(p), &corev1.Pod{}); !apierrors.IsNotFound(err) {
				t.Errorf("a refused pod exists: %v", err)
			}
		})
	}

	t.Run("what kubectl shows", func(t *testing.T) {
		manifest := manifestOf(pod("kubectl-refused", "sriov-n3,sriov-n9"))
		_, err := e.kubectl(t, manifest, "apply", "-f", "-")
		want := `Error from server (Forbidden): error when creating "STDIN": admission webhook "pods.mutate.plexus.io" denied the request: network 2 ("default/sriov-n9"): NetworkAttachmentDefinition default/sriov-n9 does not exist`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("kubectl: %v\nwant %q", err, want)
		}
	})

	nads := []struct {
		name, config, resourceName, want string
	}{
		{"bad-config", `{"cniVersion":"1.0.0","plugins":[{"type":"macvlan"},{"mtu":1400}]}`, "",
			`admission webhook "nads.validate.plexus.io" denied the request: NetworkAttachmentDefinition default/bad-config is invalid: spec.config: Invalid value: plugin 2 has no "type": name the CNI plugin, e.g. "type": "tuning"`},
		{"not-json", `{"type": macvlan}`, "", `NetworkAttachmentDefinition default/not-json is invalid: spec.config: Invalid value: not a JSON object`},
		{"empty-config", ``, "", `spec.config: Invalid value: empty CNI configuration: put a CNI config or conflist JSON in spec.config`},
		{"bad-resource", `{"cniVersion":"1.0.0","type":"plexus-sriov"}`, "sriov_netdevice",
			`metadata.annotations[k8s.v1.cni.cncf.io/resourceName]: Invalid value: "sriov_netdevice": must be <domain>/<name>, e.g. intel.com/sriov_netdevice`},
		{"bad-ipam", `{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"plexus-ipam","range":"10.0.0.0/40"}}`, "", `spec.config.ipam: Invalid value`},
	}
	for _, tc := range nads {
		t.Run("NAD "+tc.name, func(t *testing.T) {
			n := nad(tc.name, tc.config)
			if tc.resourceName != "" {
				n.Annotations[network.ResourceNameAnnotation] = tc.resourceName
			}
			err := e.c.Create(ctx, n)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}

	t.Run("pod selecting an invalid NAD that bypassed validation", func(t *testing.T) {
		// kube-system is excluded from the webhooks, so a broken NAD can exist there.
		broken := nad("broken", `{"cniVersion":"1.0.0","type":"macvlan"}`, network.ResourceNameAnnotation, "not-a-resource")
		broken.Namespace = "kube-system"
		e.createNAD(t, broken)
		want := `admission webhook "pods.mutate.plexus.io" denied the request: network 1 ("kube-system/broken"): NetworkAttachmentDefinition kube-system/broken: metadata.annotations[k8s.v1.cni.cncf.io/resourceName]: Invalid value: "not-a-resource": must be <domain>/<name>, e.g. intel.com/sriov_netdevice; fix the NetworkAttachmentDefinition`
		eventually(t, "refusing a pod that selects kube-system/broken", func() error {
			err := e.c.Create(ctx, pod("uses-broken", "kube-system/broken"), client.DryRunAll)
			if err == nil || !strings.Contains(err.Error(), want) {
				return errorf("error = %v\nwant it to contain %q", err, want)
			}
			return nil
		})
	})

	t.Run("kube-system and Plexus's namespace are never judged", func(t *testing.T) {
		if err := e.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plexus-system"}}); err != nil {
			t.Fatal(err)
		}
		for _, ns := range []string{"kube-system", "plexus-system"} {
			p := pod("unjudged", "no-such-network")
			p.Namespace = ns
			if err := e.c.Create(ctx, p); err != nil {
				t.Errorf("a pod in %s reached the webhook: %v", ns, err)
			}
		}
	})

	t.Run("NAD update to a bad config", func(t *testing.T) {
		n := macvlanNAD("macvlan-n4")
		if err := e.c.Get(ctx, client.ObjectKeyFromObject(n), n); err != nil {
			t.Fatal(err)
		}
		n.Spec.Config = `{"cniVersion":"1.0.0"}`
		err := e.c.Update(ctx, n)
		if want := `the config has neither "type" nor "plugins"`; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want %q", err, want)
		}
	})
}

func TestNADDeleteInUse(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	e.createNAD(t, sriovNAD("sriov-n3"))
	e.createNAD(t, macvlanNAD("unused"))
	keep := macvlanNAD("forced")
	keep.Annotations[validate.AllowDeleteInUseAnnotation] = "true"
	e.createNAD(t, keep)
	e.waitNAD(t, "sriov-n3")
	e.waitNAD(t, "forced")

	var users []*corev1.Pod
	for _, name := range []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7"} {
		p := pod(name, "sriov-n3")
		if err := e.c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		users = append(users, p)
	}
	fp := pod("forced-user", "forced")
	if err := e.c.Create(ctx, fp); err != nil {
		t.Fatal(err)
	}

	want := `admission webhook "nads.validate.plexus.io" denied the request: NetworkAttachmentDefinition default/sriov-n3 is in use by 7 running pods (default/u1, default/u2, default/u3, default/u4, default/u5 and 2 more); delete them first, or annotate the NAD plexus.io/allow-delete-in-use="true" to delete it anyway`
	eventually(t, "refusing to delete sriov-n3", func() error {
		err := e.c.Delete(ctx, sriovNAD("sriov-n3"), client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), want) {
			return errorf("dry-run delete: %v", err)
		}
		return nil
	})
	if _, err := e.kubectl(t, "", "delete", "network-attachment-definitions.k8s.cni.cncf.io", "sriov-n3"); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("kubectl delete: %v\nwant %q", err, want)
	}
	if err := e.c.Get(ctx, client.ObjectKeyFromObject(sriovNAD("sriov-n3")), sriovNAD("sriov-n3")); err != nil {
		t.Errorf("the NAD is gone after a refused delete: %v", err)
	}

	if err := e.c.Delete(ctx, macvlanNAD("unused")); err != nil {
		t.Errorf("deleting an unused NAD: %v", err)
	}
	if err := e.c.Delete(ctx, macvlanNAD("forced")); err != nil {
		t.Errorf("deleting an in-use NAD that allows it: %v", err)
	}

	// Finished pods do not hold a NAD; deleted ones neither.
	for _, p := range users[:6] {
		p.Status.Phase = corev1.PodSucceeded
		if err := e.c.Status().Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "one user left", func() error {
		err := e.c.Delete(ctx, sriovNAD("sriov-n3"), client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), "in use by 1 running pod (default/u7)") {
			return errorf("dry-run delete: %v", err)
		}
		return nil
	})
	if err := e.c.Delete(ctx, users[6]); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deleting sriov-n3 once unused", func() error {
		return e.c.Delete(ctx, sriovNAD("sriov-n3"))
	})
}

func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// manifestOf is the pod as a YAML manifest for kubectl.
func manifestOf(p *corev1.Pod) string {
	p.APIVersion, p.Kind = "v1", "Pod"
	b, _ := yaml.Marshal(p)
	return string(b)
}
