package inject

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/webhook"
	"github.com/plexus-project/plexus/webhook/nadcache"
	nadtesting "github.com/plexus-project/plexus/webhook/nadcache/testing"
)

const sriov = "intel.com/sriov_netdevice"

func nad(ns, name, resourceName string, annotations ...string) *nadv1.NetworkAttachmentDefinition {
	n := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{}},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","type":"macvlan","master":"eth0"}`},
	}
	if resourceName != "" {
		n.Annotations[network.ResourceNameAnnotation] = resourceName
		n.Spec.Config = `{"cniVersion":"1.0.0","type":"plexus-sriov"}`
	}
	for i := 0; i+1 < len(annotations); i += 2 {
		n.Annotations[annotations[i]] = annotations[i+1]
	}
	return n
}

func lookup() *nadtesting.Lookup {
	bad := nad("default", "broken", "")
	bad.Spec.Config = `{"cniVersion":"1.0.0"}`
	return nadtesting.New(
		nad("ns1", "net1", sriov),
		nad("default", "net1", "example.com/foo"),
		nad("default", "net2", sriov),
		nad("default", "sriov-n3", sriov),
		nad("default", "sriov-n6", sriov),
		nad("default", "macvlan-n4", ""),
		nad("default", "rack1", "", network.NodeSelectorAnnotation, "rack=r1,example.com/zone=a"),
		nad("default", "rack2", "", network.NodeSelectorAnnotation, "rack=r2"),
		nad("default", "vendor-key", "", "example.com/resource", "example.com/dev"),
		bad,
	)
}

// podWith returns a pod in "default" with the networks annotation and containers named.
func podWith(networks string, containers ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Annotations: map[string]string{}}}
	if networks != "" {
		p.Annotations[network.NetworksAnnotation] = networks
	}
	if len(containers) == 0 {
		containers = []string{"app"}
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "busybox"})
	}
	return p
}

// apply runs the injector and applies its patch; it also checks the patch is idempotent.
func apply(t *testing.T, in *Injector, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	ops, err := in.Inject(pod.DeepCopy(), pod.Namespace)
	if err != nil {
		t.Fatalf("Inject: %v", err)
	}
	out := applyOps(t, pod, ops)
	again, err := in.Inject(out.DeepCopy(), pod.Namespace)
	if err != nil {
		t.Fatalf("re-invocation: %v", err)
	}
	if len(again) != 0 {
		t.Fatalf("re-invocation is not idempotent: %+v", again)
	}
	return out
}

func applyOps(t *testing.T, pod *corev1.Pod, ops any) *corev1.Pod {
	t.Helper()
	raw, _ := json.Marshal(pod)
	pb, _ := json.Marshal(ops)
	patch, err := jsonpatchapply.DecodePatch(pb)
	if err != nil {
		t.Fatalf("decoding patch %s: %v", pb, err)
	}
	res, err := patch.Apply(raw)
	if err != nil {
		t.Fatalf("applying patch %s: %v", pb, err)
	}
	out := &corev1.Pod{}
	if err := json.Unmarshal(res, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func q(s string) resource.Quantity { return resource.MustParse(s) }

func limitsOf(c corev1.Container) map[string]string {
	out := map[string]string{}
	for k, v := range c.Resources.Limits {
		out["limit:"+string(k)] = v.String()
	}
	for k, v := range c.Resources.Requests {
		out["request:"+string(k)] = v.String()
	}
	return out
}

func TestSelectionForms(t *testing.T) {
	cases := []struct {
		name, networks string
		want           map[string]string // resources of the first container
		wantErr        string
	}{
		{"ns/name@iface", "ns1/net1@eth0", map[string]string{"limit:" + sriov: "1", "request:" + sriov: "1"}, ""},
		{"name in pod namespace", "net1", map[string]string{"limit:example.com/foo": "1", "request:example.com/foo": "1"}, ""},
		{"ns/name,name", "ns1/net1,net2", map[string]string{"limit:" + sriov: "2", "request:" + sriov: "2"}, ""},
		{"same network twice asks for 2", "net2@a, net2@b", map[string]string{"limit:" + sriov: "2", "request:" + sriov: "2"}, ""},
		{"JSON list with namespaces", `[{"name":"net1","namespace":"ns1","interface":"sr0"},{"name":"net1"},{"name":"net2","namespace":"default"}]`,
			map[string]string{"limit:" + sriov: "2", "request:" + sriov: "2", "limit:example.com/foo": "1", "request:example.com/foo": "1"}, ""},
		{"network without resource", "macvlan-n4", map[string]string{}, ""},
		{"error: two slashes", "ns1/net1/if1", nil, `network 1 ("ns1/net1/if1"): more than one "/"`},
		{"error: two @", "net1@eth0@eth1", nil, `network 1 ("net1@eth0@eth1"): more than one "@"`},
		{"error: malformed JSON", `[{"name":"net1"`, nil, "not a JSON list of networks"},
		{"error: unknown NAD", "net1,missing", nil, `network 2 ("default/missing"): NetworkAttachmentDefinition default/missing does not exist; create it`},
		{"error: invalid NAD", "broken", nil, `network 1 ("default/broken"): NetworkAttachmentDefinition default/broken`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := New(lookup(), Options{})
			pod := podWith(tc.networks)
			if tc.wantErr != "" {
				_, err := in.Inject(pod, "default")
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			out := apply(t, in, pod)
			if got := limitsOf(out.Spec.Containers[0]); !equalMaps(got, tc.want) {
				t.Errorf("resources = %v, want %v", got, tc.want)
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// The acceptance pod: resources in the chosen container, the volume, nothing else changed.
func TestAcceptancePodNothingElseChanged(t *testing.T) {
	in := New(lookup(), Options{})
	pod := podWith("sriov-n3, sriov-n6, macvlan-n4", "sidecar", "app")
	pod.Annotations[ContainerAnnotation] = "app"
	pod.Spec.Containers[1].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: q("1"), corev1.ResourceMemory: q("64Mi")}
	pod.Spec.Containers[1].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: q("500m")}
	out := apply(t, in, pod)

	want := pod.DeepCopy()
	want.Spec.Containers[1].Resources.Limits[sriov] = q("2")
	want.Spec.Containers[1].Resources.Requests[sriov] = q("2")
	mount := corev1.VolumeMount{Name: VolumeName, MountPath: MountPath, ReadOnly: true}
	want.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{mount}
	want.Spec.Containers[1].VolumeMounts = []corev1.VolumeMount{mount}
	want.Spec.Volumes = []corev1.Volume{{Name: VolumeName, VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
		Items: downwardItems(pod),
	}}}}
	if !equality.Semantic.DeepEqual(out, want) {
		got, _ := json.MarshalIndent(out, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("patched pod:\n%s\nwant:\n%s", got, w)
	}
}

func TestContainerChoice(t *testing.T) {
	cases := []struct {
		name, networks, annotation string
		init                       bool
		want                       []string // sriov count per container ("" = none)
		wantErr                    string
	}{
		{"first container by default", "net2", "", false, []string{"1", "", ""}, ""},
		{"pod annotation", "net2,net2", "c", false, []string{"", "", "2"}, ""},
		{"per-element hint beats the annotation", `[{"name":"net2","container":"b"},{"name":"net2"}]`, "c", false, []string{"", "1", "1"}, ""},
		{"unknown container in annotation", "net2", "zzz", false, nil, `pod annotation plexus.io/resource-container: the pod has no container "zzz"; name one of its containers (a, b, c)`},
		{"unknown container in hint", `[{"name":"net2","container":"zzz"}]`, "", false, nil, `network 1 ("default/net2"): "container": the pod has no container "zzz"`},
		{"init container never gets devices", `[{"name":"net2","container":"setup"}]`, "", true, nil, `"setup" is an init container, and init containers are never given network devices`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := podWith(tc.networks, "a", "b", "c")
			if tc.annotation != "" {
				pod.Annotations[ContainerAnnotation] = tc.annotation
			}
			if tc.init {
				pod.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox"}}
			}
			in := New(lookup(), Options{})
			if tc.wantErr != "" {
				_, err := in.Inject(pod, "default")
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			out := apply(t, in, pod)
			for i, want := range tc.want {
				got := ""
				if v, ok := out.Spec.Containers[i].Resources.Limits[sriov]; ok {
					got = v.String()
				}
				if got != want {
					t.Errorf("container %d: %s = %q, want %q", i, sriov, got, want)
				}
			}
			for _, c := range out.Spec.InitContainers {
				if len(c.Resources.Limits) > 0 || len(c.VolumeMounts) > 0 {
					t.Errorf("init container %s was changed: %+v", c.Name, c)
				}
			}
		})
	}
}

func TestExistingResources(t *testing.T) {
	cases := []struct {
		name             string
		honor            bool
		limits, requests corev1.ResourceList
		wantLim, wantReq string
	}{
		{"user's value kept", false, corev1.ResourceList{sriov: q("5")}, corev1.ResourceList{sriov: q("5")}, "5", "5"},
		{"limit only kept", false, corev1.ResourceList{sriov: q("3")}, nil, "3", ""},
		{"honor adds", true, corev1.ResourceList{sriov: q("1")}, corev1.ResourceList{sriov: q("1")}, "3", "3"},
		{"honor adds to limit only", true, corev1.ResourceList{sriov: q("1")}, nil, "3", "3"},
		{"honor with nothing set", true, nil, nil, "2", "2"},
		{"cpu and memory untouched", false, corev1.ResourceList{corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q("1Gi")}, corev1.ResourceList{corev1.ResourceCPU: q("1")}, "2", "2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := podWith("net2,net2")
			pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{Limits: tc.limits, Requests: tc.requests}
			out := apply(t, New(lookup(), Options{HonorResources: tc.honor}), pod)
			r := out.Spec.Containers[0].Resources
			lim, req := r.Limits[sriov], r.Requests[sriov]
			if got := lim.String(); got != tc.wantLim {
				t.Errorf("limit = %s, want %s", got, tc.wantLim)
			}
			if _, ok := r.Requests[sriov]; ok != (tc.wantReq != "") || (ok && req.String() != tc.wantReq) {
				t.Errorf("request = %v (set %v), want %q", req.String(), ok, tc.wantReq)
			}
			for _, rn := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if !equality.Semantic.DeepEqual(r.Limits[rn], tc.limits[rn]) || !equality.Semantic.DeepEqual(r.Requests[rn], tc.requests[rn]) {
					t.Errorf("%s changed: %+v", rn, r)
				}
			}
		})
	}
}

func TestHugepages(t *testing.T) {
	pod := podWith("net2", "dpdk", "plain")
	pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{"hugepages-1Gi": q("2Gi"), "hugepages-2Mi": q("512Mi"), corev1.ResourceMemory: q("1Gi")},
		Requests: corev1.ResourceList{"hugepages-1Gi": q("2Gi"), "hugepages-2Mi": q("512Mi"), corev1.ResourceMemory: q("1Gi")},
	}
	out := apply(t, New(lookup(), Options{}), pod)
	items := out.Spec.Volumes[0].DownwardAPI.Items
	var paths []string
	for _, it := range items {
		paths = append(paths, it.Path)
		if it.ResourceFieldRef != nil && (it.ResourceFieldRef.ContainerName != "dpdk" || it.ResourceFieldRef.Divisor.String() != "1Mi") {
			t.Errorf("item %s: %+v", it.Path, it.ResourceFieldRef)
		}
	}
	want := "labels annotations hugepages_1G_request_dpdk hugepages_2M_request_dpdk hugepages_1G_limit_dpdk hugepages_2M_limit_dpdk"
	if got := strings.Join(paths, " "); got != want {
		t.Errorf("items = %s, want %s", got, want)
	}
	if f := items[2].ResourceFieldRef; f.Resource != "requests.hugepages-1Gi" {
		t.Errorf("resource = %s", f.Resource)
	}
	if len(out.Spec.Containers[1].VolumeMounts) != 1 {
		t.Errorf("container plain has no mount: %+v", out.Spec.Containers[1])
	}
}

func TestExistingVolumeAndMounts(t *testing.T) {
	pod := podWith("macvlan-n4", "a", "b")
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	ops, err := New(lookup(), Options{}).Inject(pod.DeepCopy(), "default")
	if err != nil {
		t.Fatal(err)
	}
	paths := pathsOf(ops)
	if want := "/spec/volumes/- /spec/containers/0/volumeMounts/- /spec/containers/1/volumeMounts"; paths != want {
		t.Errorf("paths = %s, want %s", paths, want)
	}
	apply(t, New(lookup(), Options{}), pod)

	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: VolumeName})
	if ops, _ := New(lookup(), Options{}).Inject(pod, "default"); len(ops) != 0 {
		t.Errorf("a pod with its own podnetinfo volume got %+v", ops)
	}
}

func pathsOf(ops any) string {
	b, _ := json.Marshal(ops)
	var list []struct{ Path string }
	_ = json.Unmarshal(b, &list)
	var p []string
	for _, o := range list {
		p = append(p, o.Path)
	}
	return strings.Join(p, " ")
}

func TestNodeSelector(t *testing.T) {
	in := New(lookup(), Options{})
	out := apply(t, in, podWith("rack1"))
	if got := out.Spec.NodeSelector; got["rack"] != "r1" || got["example.com/zone"] != "a" || len(got) != 2 {
		t.Errorf("nodeSelector = %v", got)
	}

	pod := podWith("rack1")
	pod.Spec.NodeSelector = map[string]string{"disk": "ssd", "rack": "r1"}
	ops, err := in.Inject(pod.DeepCopy(), "default")
	if err != nil {
		t.Fatal(err)
	}
	if got := pathsOf(ops); !strings.Contains(got, "/spec/nodeSelector/example.com~1zone") || strings.Contains(got, "/spec/nodeSelector/rack") {
		t.Errorf("paths = %s: want one escaped add for the missing key", got)
	}
	out = apply(t, in, pod)
	if out.Spec.NodeSelector["disk"] != "ssd" || out.Spec.NodeSelector["example.com/zone"] != "a" {
		t.Errorf("nodeSelector = %v", out.Spec.NodeSelector)
	}

	pod.Spec.NodeSelector = map[string]string{"rack": "r9"}
	_, err = in.Inject(pod, "default")
	wantMsg := `network 1 ("default/rack1"): NetworkAttachmentDefinition default/rack1 exists only on nodes with rack=r1, but the pod's nodeSelector asks for rack=r9`
	if err == nil || !strings.Contains(err.Error(), wantMsg) {
		t.Errorf("error = %v, want %q", err, wantMsg)
	}
	if _, err := in.Inject(podWith("rack1,rack2"), "default"); err == nil || !strings.Contains(err.Error(), "no node can have both") {
		t.Errorf("error = %v, want a conflict between networks", err)
	}
}

func TestResourceNameKeys(t *testing.T) {
	in := New(lookup(), Options{ResourceNameKeys: []string{network.ResourceNameAnnotation, "example.com/resource"}})
	out := apply(t, in, podWith("vendor-key,net2"))
	if got := limitsOf(out.Spec.Containers[0]); got["limit:example.com/dev"] != "1" || got["limit:"+sriov] != "1" {
		t.Errorf("resources = %v", got)
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{"a/b": "a~1b", "a~b": "a~0b", "~/": "~0~1", "x~1": "x~01"} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHandle(t *testing.T) {
	in := New(lookup(), Options{})
	req := func(op admissionv1.Operation, pod *corev1.Pod) admission.Request {
		raw, _ := json.Marshal(pod)
		return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID: "1", Operation: op, Namespace: "default", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Object: runtime.RawExtension{Raw: raw},
		}}
	}
	cases := []struct {
		name    string
		req     admission.Request
		allowed bool
		reason  string
		patches int
	}{
		{"no networks", req(admissionv1.Create, podWith("")), true, webhook.ReasonNoNetworks, 0},
		{"injected", req(admissionv1.Create, podWith("net2")), true, webhook.ReasonInjected, 3},
		{"update ignored", req(admissionv1.Update, podWith("missing")), true, webhook.ReasonIgnored, 0},
		{"bad syntax denied, not errored", req(admissionv1.Create, podWith("a/b/c")), false, webhook.ReasonBadAnnotation, 0},
		{"unknown network denied", req(admissionv1.Create, podWith("missing")), false, webhook.ReasonUnknownNetwork, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := in.Handle(context.Background(), tc.req)
			if resp.Allowed != tc.allowed || webhook.ReasonOf(resp) != tc.reason || len(resp.Patches) != tc.patches {
				t.Errorf("got allowed=%v reason=%s patches=%d (%+v), want %v %s %d", resp.Allowed, webhook.ReasonOf(resp), len(resp.Patches), resp.Result, tc.allowed, tc.reason, tc.patches)
			}
			if !tc.allowed && (resp.Result == nil || resp.Result.Code != 403 || resp.Result.Message == "") {
				t.Errorf("a refusal must be a 403 with a message: %+v", resp.Result)
			}
		})
	}
}

// TestHonorResourcesHandSetAnnotation: plexus.io/resources-added written by hand must not stop
// the injection (it guards re-invocations only): the container still gets at least what its
// networks need, and the annotation is rewritten to what was added.
func TestHonorResourcesHandSetAnnotation(t *testing.T) {
	cases := []struct {
		name             string
		annotation       string
		limits, requests corev1.ResourceList
		wantLim, wantReq string
		wantAnnotation   string
	}{
		{"hand-set, nothing requested", "app:" + sriov + "+2", nil, nil, "2", "2", "app:" + sriov + "+2"},
		{"hand-set, less than it claims", "app:" + sriov + "+2", corev1.ResourceList{sriov: q("1")}, corev1.ResourceList{sriov: q("1")}, "3", "3", "app:" + sriov + "+2"},
		{"hand-set garbage", "whatever", nil, nil, "2", "2", "app:" + sriov + "+2"},
		{"another resource", "app:example.com/x+2", nil, nil, "2", "2", "app:" + sriov + "+2"},
		{"consistent: a re-invocation, left alone", "app:" + sriov + "+2", corev1.ResourceList{sriov: q("2")}, corev1.ResourceList{sriov: q("2")}, "2", "2", "app:" + sriov + "+2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := podWith("net2,net2")
			pod.Annotations[AddedAnnotation] = tc.annotation
			pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{Limits: tc.limits, Requests: tc.requests}
			out := apply(t, New(lookup(), Options{HonorResources: true}), pod)
			r := out.Spec.Containers[0].Resources
			lim, req := r.Limits[sriov], r.Requests[sriov]
			if lim.String() != tc.wantLim || req.String() != tc.wantReq {
				t.Errorf("limit %s request %s, want %s and %s", lim.String(), req.String(), tc.wantLim, tc.wantReq)
			}
			if got := out.Annotations[AddedAnnotation]; got != tc.wantAnnotation {
				t.Errorf("%s = %q, want %q", AddedAnnotation, got, tc.wantAnnotation)
			}
		})
	}
}

func TestNamespaceIsolation(t *testing.T) {
	in := New(lookup(), Options{Isolation: &nadcache.Isolation{Shared: []string{"ns1"}}})
	if _, err := in.Inject(podWith("ns1/net1"), "default"); err != nil {
		t.Errorf("a shared namespace's NAD refused: %v", err)
	}
	_, err := New(lookup(), Options{Isolation: &nadcache.Isolation{}}).Inject(podWith("net2, ns1/net1"), "default")
	var r *webhook.Refusal
	if !errors.As(err, &r) || r.Reason != webhook.ReasonNamespaceIsolation || !strings.Contains(r.Message, `network 2 ("ns1/net1"): pods of namespace "default" may not select NetworkAttachmentDefinitions of namespace "ns1"`) {
		t.Errorf("err = %v", err)
	}
}
