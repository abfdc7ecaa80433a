package validate

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/webhook"
	"github.com/plexus-project/plexus/webhook/nadcache"
	nadtesting "github.com/plexus-project/plexus/webhook/nadcache/testing"
)

func nad(name, config string, annotations ...string) *nadv1.NetworkAttachmentDefinition {
	n := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: map[string]string{}},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: config},
	}
	for i := 0; i+1 < len(annotations); i += 2 {
		n.Annotations[annotations[i]] = annotations[i+1]
	}
	return n
}

const (
	macvlan = `{"cniVersion":"1.0.0","type":"macvlan","master":"eth0"}`
	pooled  = `{"cniVersion":"1.0.0","name":"pooled","plugins":[{"type":"macvlan","master":"eth0","ipam":{"type":"plexus-ipam","range":"10.10.0.0/24","exclude":["10.10.0.0/28"]}},{"type":"tuning"}]}`
)

func lookup() *nadtesting.Lookup {
	l := nadtesting.New(
		nad("macvlan-n4", macvlan),
		nad("pooled", pooled),
		nad("hostlocal", `{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"host-local","subnet":"10.20.0.0/24"}}`),
		nad("broken", `{"cniVersion":"1.0.0","plugins":[{"master":"eth0"}]}`),
		nad("sriov-n3", `{"type":"plexus-sriov"}`, network.ResourceNameAnnotation, "intel.com/sriov_netdevice"),
	)
	l.Users["default/sriov-n3"] = []string{"default/p1", "default/p2", "default/p3", "default/p4", "default/p5", "default/p6", "default/p7"}
	l.Users["default/pooled"] = []string{"team/only"}
	return l
}

func pod(networks string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: map[string]string{}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}
	if networks != "" {
		p.Annotations[network.NetworksAnnotation] = networks
	}
	return p
}

func TestPod(t *testing.T) {
	cases := []struct {
		name, networks, defaultNet string
		wantReason, wantMsg        string
	}{
		{"valid", "macvlan-n4, default/sriov-n3@net1", "", "", ""},
		{"requested IP in range", `[{"name":"pooled","ips":["10.10.0.20/24"]}]`, "", "", ""},
		{"requested IP of another IPAM is not judged", `[{"name":"hostlocal","ips":["192.168.1.1"]}]`, "", "", ""},
		{"requested IP outside the range", `[{"name":"macvlan-n4"},{"name":"pooled","ips":["10.99.0.1"]}]`, "", webhook.ReasonIPOutOfRange,
			`network 2 ("default/pooled"): NetworkAttachmentDefinition default/pooled: network "pooled": requested address 10.99.0.1 is outside every configured range`},
		{"requested IP excluded", `[{"name":"pooled","ips":["10.10.0.3"]}]`, "", webhook.ReasonIPOutOfRange, "outside the usable addresses"},
		{"unknown NAD", "macvlan-n4,sriov-n9", "", webhook.ReasonUnknownNetwork,
			`network 2 ("default/sriov-n9"): NetworkAttachmentDefinition default/sriov-n9 does not exist; create it, or fix the name`},
		{"bad syntax", "macvlan-n4,,x", "", webhook.ReasonBadAnnotation,
			`pod annotation k8s.v1.cni.cncf.io/networks: network 2 (""): empty network name; remove the extra comma`},
		{"bad syntax JSON", `[{"name":"x","ips":"10.0.0.1"}]`, "", webhook.ReasonBadAnnotation, `field "ips" must be a JSON list`},
		{"invalid NAD selected", "broken", "", webhook.ReasonInvalidNetwork, `network 1 ("default/broken"): NetworkAttachmentDefinition default/broken`},
		{"unknown default network", "", "nope", webhook.ReasonUnknownNetwork, `v1.multus-cni.io/default-network "default/nope": NetworkAttachmentDefinition default/nope does not exist`},
	}
	v := New(lookup(), Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pod(tc.networks)
			if tc.defaultNet != "" {
				p.Annotations[network.DefaultNetworkAnnotation] = tc.defaultNet
			}
			resp := v.Handle(context.Background(), request("Pod", admissionv1.Create, p, nil))
			check(t, resp, tc.wantReason, tc.wantMsg)
		})
	}
}

func TestNAD(t *testing.T) {
	cases := []struct {
		name    string
		nad     *nadv1.NetworkAttachmentDefinition
		wantMsg string
	}{
		{"valid single plugin", nad("ok", macvlan), ""},
		{"valid with IPAM", nad("pooled", pooled), ""},
		{"valid resourceName", nad("sr", `{"type":"plexus-sriov"}`, network.ResourceNameAnnotation, "intel.com/sriov_netdevice"), ""},
		{"empty config", nad("empty", ""), "spec.config: Invalid value: empty CNI configuration: put a CNI config or conflist JSON in spec.config"},
		{"not JSON", nad("garbage", "{type: macvlan"), "spec.config: Invalid value: not a JSON object"},
		{"plugin without type", nad("notype", `{"cniVersion":"1.0.0","plugins":[{"type":"macvlan"},{"mtu":1400}]}`), `spec.config: Invalid value: plugin 2 has no "type": name the CNI plugin, e.g. "type": "tuning"`},
		{"bad resourceName", nad("rn", macvlan, network.ResourceNameAnnotation, "sriov"), `metadata.annotations[k8s.v1.cni.cncf.io/resourceName]: Invalid value: "sriov": must be <domain>/<name>`},
		{"bad name", nad("Bad_Name", macvlan), `metadata.name: Invalid value: "Bad_Name"`},
		{"IPAM our IPAM refuses", nad("badpool", `{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"plexus-ipam","range":"10.0.0.0/33"}}`), "spec.config.ipam: Invalid value"},
		{"IPAM without ranges", nad("noranges", `{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"plexus-ipam","range":"10.0.0.5-10.0.0.1/24"}}`), "spec.config.ipam"},
		// Host paths: a NAD author is not root on the nodes.
		{"log_file outside /var/log/plexus", nad("logfile", `{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"plexus-ipam","range":"10.0.0.0/24","log_file":"/etc/cron.d/evil"}}`),
			`spec.config.ipam.log_file: Invalid value: "/etc/cron.d/evil": a network configuration may only log to a file inside /var/log/plexus`},
		{"log_file escaping by ..", nad("dotdot", `{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"whereabouts","range":"10.0.0.0/24","log_file":"/var/log/plexus/../../../etc/x"}}`),
			"spec.config.ipam.log_file"},
		{"configuration_path without ranges", nad("flat", `{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"plexus-ipam","configuration_path":"/root/.ssh/id_rsa"}}`),
			`spec.config.ipam.configuration_path: Invalid value: "/root/.ssh/id_rsa": a network configuration may only name a flat file inside /etc/plexus`},
		{"lock_dir in a conflist's second plugin", nad("lockdir", `{"cniVersion":"1.0.0","plugins":[{"type":"macvlan","ipam":{"type":"host-local","subnet":"10.1.0.0/24"}},{"type":"tuning","ipam":{"type":"plexus-ipam","range":"10.0.0.0/24","lock_dir":"/etc"}}]}`),
			`spec.config.plugins[1].ipam.lock_dir: Invalid value: "/etc": a network configuration may only name /run/plexus-ipam`},
		{"bad node_name", nad("nodename", `{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"plexus-ipam","range":"10.0.0.0/24","node_name":"../../x"}}`),
			`spec.config.ipam.node_name: Invalid value: "../../x": not a valid node name`},
		// An IPAM section that does not parse is refused with the parse error, not skipped.
		{"ipam section does not parse", nad("unparsed", `{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"plexus-ipam","configuration_path":["x"]}}`),
			"does not parse as a plexus-ipam section: json: cannot unmarshal array"},
	}
	v := New(lookup(), Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, op := range []admissionv1.Operation{admissionv1.Create, admissionv1.Update} {
				resp := v.Handle(context.Background(), request("NetworkAttachmentDefinition", op, tc.nad, tc.nad))
				reason := ""
				if tc.wantMsg != "" {
					reason = webhook.ReasonInvalidNetwork
				}
				check(t, resp, reason, tc.wantMsg)
			}
		})
	}
}

func TestNADDelete(t *testing.T) {
	v := New(lookup(), Options{})
	cases := []struct {
		name               string
		nad                *nadv1.NetworkAttachmentDefinition
		wantReason, wantMs string
	}{
		{"unused", nad("macvlan-n4", macvlan), "", ""},
		{"in use by 7", nad("sriov-n3", `{"type":"plexus-sriov"}`), webhook.ReasonInUse,
			`NetworkAttachmentDefinition default/sriov-n3 is in use by 7 running pods (default/p1, default/p2, default/p3, default/p4, default/p5 and 2 more); delete them first, or annotate the NAD plexus.io/allow-delete-in-use="true" to delete it anyway`},
		{"in use by 1", nad("pooled", pooled), webhook.ReasonInUse, `in use by 1 running pod (team/only)`},
		{"in use but allowed", nad("sriov-n3", `{"type":"plexus-sriov"}`, AllowDeleteInUseAnnotation, "true"), "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := v.Handle(context.Background(), request("NetworkAttachmentDefinition", admissionv1.Delete, nil, tc.nad))
			check(t, resp, tc.wantReason, tc.wantMs)
		})
	}
}

func TestPodWithoutNetworksAllowedAtOnce(t *testing.T) {
	resp := New(lookup(), Options{}).Handle(context.Background(), request("Pod", admissionv1.Create, pod(""), nil))
	check(t, resp, "", "")
	if webhook.ReasonOf(resp) != webhook.ReasonNoNetworks {
		t.Errorf("reason = %s", webhook.ReasonOf(resp))
	}
}

func request(kind string, op admissionv1.Operation, obj, old any) admission.Request {
	r := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "1", Kind: metav1.GroupVersionKind{Kind: kind}, Operation: op, Namespace: "default",
	}}
	if obj != nil {
		r.Object = runtime.RawExtension{Raw: mustJSON(obj)}
	}
	if old != nil {
		r.OldObject = runtime.RawExtension{Raw: mustJSON(old)}
		if n, ok := old.(*nadv1.NetworkAttachmentDefinition); ok {
			r.Name = n.Name
		}
	}
	return r
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func check(t *testing.T, resp admission.Response, wantReason, wantMsg string) {
	t.Helper()
	if wantReason == "" {
		if !resp.Allowed {
			t.Fatalf("refused: %s", resp.Result.Message)
		}
		return
	}
	if resp.Allowed {
		t.Fatalf("allowed, want refusal %s: %q", wantReason, wantMsg)
	}
	if got := webhook.ReasonOf(resp); got != wantReason {
		t.Errorf("reason = %s, want %s", got, wantReason)
	}
	if !strings.Contains(resp.Result.Message, wantMsg) {
		t.Errorf("message = %q\nwant it to contain %q", resp.Result.Message, wantMsg)
	}
}

func TestNADWarnsOfIgnoredKubeconfig(t *testing.T) {
	n := nad("wb", `{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"whereabouts","range":"10.0.0.0/24","kubernetes":{"kubeconfig":"/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig"}}}`)
	resp := New(lookup(), Options{}).Handle(context.Background(), request("NetworkAttachmentDefinition", admissionv1.Create, n, nil))
	check(t, resp, "", "")
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], `spec.config.ipam.kubernetes.kubeconfig "/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig" is ignored`) {
		t.Errorf("warnings = %q", resp.Warnings)
	}
}

func TestPodNamespaceIsolation(t *testing.T) {
	l := lookup()
	other := nad("net-b", macvlan)
	other.Namespace = "team-b"
	l.NADs["team-b/net-b"] = nadcache.Parse(other)
	shared := nad("shared", macvlan)
	shared.Namespace = "infra"
	l.NADs["infra/shared"] = nadcache.Parse(shared)
	cases := []struct {
		name, networks, defaultNet string
		iso                        *nadcache.Isolation
		wantMsg                    string
	}{
		{"own namespace", "macvlan-n4", "", &nadcache.Isolation{}, ""},
		{"shared namespace", "infra/shared", "", &nadcache.Isolation{Shared: []string{"infra"}}, ""},
		{"another namespace", "macvlan-n4, team-b/net-b", "", &nadcache.Isolation{Shared: []string{"infra"}},
			`network 2 ("team-b/net-b"): pods of namespace "default" may not select NetworkAttachmentDefinitions of namespace "team-b" (namespace isolation; shared namespaces: infra); create the NAD in "default", or ask the cluster admin to share "team-b" (--shared-namespaces)`},
		{"JSON form", `[{"name":"net-b","namespace":"team-b"}]`, "", &nadcache.Isolation{}, `network 1 ("team-b/net-b")`},
		{"default network", "", "team-b/net-b", &nadcache.Isolation{}, `v1.multus-cni.io/default-network "team-b/net-b": pods of namespace "default"`},
		{"a NAD that does not exist is not revealed", "team-b/nope", "", &nadcache.Isolation{}, `may not select NetworkAttachmentDefinitions of namespace "team-b"`},
		{"isolation off", "team-b/net-b", "", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pod(tc.networks)
			if tc.defaultNet != "" {
				p.Annotations[network.DefaultNetworkAnnotation] = tc.defaultNet
			}
			resp := New(l, Options{Isolation: tc.iso}).Handle(context.Background(), request("Pod", admissionv1.Create, p, nil))
			reason := ""
			if tc.wantMsg != "" {
				reason = webhook.ReasonNamespaceIsolation
			}
			check(t, resp, reason, tc.wantMsg)
		})
	}
}

func TestPodUpdate(t *testing.T) {
	v := New(lookup(), Options{Isolation: &nadcache.Isolation{Shared: []string{"default"}}})
	scheduled := func(networks string) *corev1.Pod {
		p := pod(networks)
		p.Spec.NodeName = "node-1"
		return p
	}
	relabel := func(p *corev1.Pod) *corev1.Pod { p = p.DeepCopy(); p.Labels = map[string]string{"a": "b"}; return p }
	cases := []struct {
		name       string
		old, pod   *corev1.Pod
		wantReason string
		wantMsg    string
	}{
		{"other changes to a scheduled pod", scheduled("macvlan-n4"), relabel(scheduled("macvlan-n4")), "", ""},
		{"networks of a scheduled pod", scheduled("macvlan-n4"), scheduled("macvlan-n4, sriov-n3"), webhook.ReasonNetworksImmutable,
			`pod default/p runs on node node-1: the networks of a scheduled pod cannot change`},
		{"networks removed from a scheduled pod", scheduled("macvlan-n4"), scheduled(""), webhook.ReasonNetworksImmutable, "cannot change"},
		{"networks added to a scheduled pod", scheduled(""), scheduled("macvlan-n4"), webhook.ReasonNetworksImmutable, "cannot change"},
		{"pending pod, valid networks", pod("macvlan-n4"), pod("sriov-n3"), "", ""},
		{"pending pod, unknown network", pod("macvlan-n4"), pod("sriov-n9"), webhook.ReasonUnknownNetwork, "does not exist"},
		{"pending pod, another namespace", pod("macvlan-n4"), pod("team-b/x"), webhook.ReasonNamespaceIsolation, `namespace "team-b"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := request("Pod", admissionv1.Update, tc.pod, tc.old)
			check(t, v.Handle(context.Background(), req), tc.wantReason, tc.wantMsg)
		})
	}
}
