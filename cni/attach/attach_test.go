package attach

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-project/plexus/cni/cache"
	"github.com/plexus-project/plexus/cni/conflist"
	"github.com/plexus-project/plexus/cni/network"
)

// fakeDelegates records calls and fails the plugin types in fail.
type fakeDelegates struct {
	mu    sync.Mutex
	calls []string // "ADD net1 macvlan {config}"
	fail  map[string]string
	// failDel fails DEL of these interfaces.
	failDel map[string]bool
}

func (f *fakeDelegates) record(cmd string, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) {
	f.mu.Lock()
	defer f.mu.Unlock()
	caps, _ := json.Marshal(rt.CapabilityArgs)
	f.calls = append(f.calls, fmt.Sprintf("%s %s %s %s %s", cmd, rt.IfName, list.Plugins[0].Network.Type, list.Plugins[0].Bytes, caps))
}

func (f *fakeDelegates) AddNetworkList(_ context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (types.Result, error) {
	f.record("ADD", list, rt)
	if msg, ok := f.fail[list.Plugins[0].Network.Type]; ok {
		return nil, errors.New(msg)
	}
	idx := 0
	return &current.Result{CNIVersion: "1.0.0", Interfaces: []*current.Interface{{Name: rt.IfName, Mac: "02:00:00:00:00:01", Sandbox: rt.NetNS}},
		IPs: []*current.IPConfig{{Interface: &idx, Address: net.IPNet{IP: net.ParseIP("10.0.0.2").To4(), Mask: net.CIDRMask(24, 32)}}}}, nil
}

func (f *fakeDelegates) DelNetworkList(_ context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	f.record("DEL", list, rt)
	if f.failDel[rt.IfName] {
		return errors.New("device busy")
	}
	return nil
}

func (f *fakeDelegates) CheckNetworkList(context.Context, *libcni.NetworkConfigList, *libcni.RuntimeConf) error {
	return nil
}
func (f *fakeDelegates) GCNetworkList(context.Context, *libcni.NetworkConfigList, *libcni.GCArgs) error {
	return nil
}
func (f *fakeDelegates) GetStatusNetworkList(context.Context, *libcni.NetworkConfigList) error {
	return nil
}

func (f *fakeDelegates) ops(cmd string) []string {
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, cmd+" ") {
			out = append(out, c)
		}
	}
	return out
}

type fakeAPI struct {
	pods     map[string]*corev1.Pod
	nads     map[string]*nadv1.NetworkAttachmentDefinition
	statuses [][]network.Status
	events   []string
}

func (f *fakeAPI) Pod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	if p, ok := f.pods[ns+"/"+name]; ok {
		return p, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
}

func (f *fakeAPI) NAD(ns, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	if n, ok := f.nads[ns+"/"+name]; ok {
		return n, nil
	}
	return nil, apierrors.NewNotFound(nadv1.Resource("network-attachment-definitions"), name)
}

func (f *fakeAPI) WriteStatus(_ context.Context, _ *corev1.Pod, st []network.Status) error {
	f.statuses = append(f.statuses, st)
	return nil
}

func (f *fakeAPI) Warn(_ *corev1.Pod, reason, msg string) {
	f.events = append(f.events, reason+": "+msg)
}

type fakeDevices map[string][]string

func (f fakeDevices) PodDevices(_ context.Context, _, _, resource string) ([]string, error) {
	return f[resource], nil
}

type fakeNetns struct{ routes []string }

func (f *fakeNetns) SetDefaultRoute(_, ifName string, gws []net.IP) error {
	f.routes = append(f.routes, fmt.Sprintf("%v dev %s", gws, ifName))
	return nil
}
func (f *fakeNetns) CheckInterfaces(string, []Interface) error { return nil }

type fixedCluster struct{ c *conflist.ClusterNetwork }

func (f fixedCluster) Current() *conflist.ClusterNetwork { return f.c }

func nad(ns, name, config string, annotations map[string]string) *nadv1.NetworkAttachmentDefinition {
	return &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: config}}
}

type fixture struct {
	a     *Attacher
	dels  *fakeDelegates
	api   *fakeAPI
	netns *fakeNetns
	store *cache.Store
}

func newFixture(t *testing.T, annotations map[string]string) *fixture {
	t.Helper()
	cluster, err := network.ParseConfig(`{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"bridge"}]}`, "cbr0")
	if err != nil {
		t.Fatal(err)
	}
	api := &fakeAPI{
		pods: map[string]*corev1.Pod{"ns1/p": {ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "p", UID: "u1", Annotations: annotations}}},
		nads: map[string]*nadv1.NetworkAttachmentDefinition{
			"ns1/mv":        nad("ns1", "mv", `{"cniVersion":"1.0.0","type":"macvlan","master":"eth1"}`, nil),
			"ns1/br":        nad("ns1", "br", `{"cniVersion":"0.4.0","type":"bridge"}`, nil),
			"ns1/bad":       nad("ns1", "bad", `{"cniVersion":"1.0.0","type":"failing","master":"nosuch0"}`, nil),
			"ns1/sriov":     nad("ns1", "sriov", `{"type":"plexus-sriov"}`, map[string]string{network.ResourceNameAnnotation: "intel.com/vf"}),
			"default/glob":  nad("default", "glob", `{"cniVersion":"1.0.0","type":"macvlan"}`, nil),
			"other/private": nad("other", "private", `{"cniVersion":"1.0.0","type":"macvlan"}`, nil),
			"ns1/alt":       nad("ns1", "alt", `{"cniVersion":"1.0.0","type":"ptp"}`, nil),
		},
	}
	f := &fixture{dels: &fakeDelegates{fail: map[string]string{"failing": `plugin type="failing" failed (add): Link not found`}, failDel: map[string]bool{}},
		api: api, netns: &fakeNetns{}, store: &cache.Store{Dir: t.TempDir()}}
	f.a = New(Options{NodeName: "node1", BinDirs: []string{"/opt/cni/bin"}, NamespaceIsolation: true, GlobalNamespaces: []string{"default"},
		AllowedPlugins: []string{"macvlan", "bridge", "failing", "plexus-sriov"}},
		Host{Delegates: f.dels, Pods: api, NADs: api, Reporter: api, Devices: fakeDevices{"intel.com/vf": {"0000:af:06.0", "0000:af:06.1"}},
			Netns: f.netns, Cluster: fixedCluster{&conflist.ClusterNetwork{Source: "test", Config: cluster}}, Cache: f.store})
	return f
}

func addCall(id string) *Call {
	return &Call{Command: "ADD", ContainerID: id, Netns: "/var/run/netns/x", IfName: "eth0",
		Args:   "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=p;K8S_POD_UID=u1",
		Config: []byte(`{"cniVersion":"1.0.0","name":"plexus","type":"plexus","runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}}`)}
}

func TestAddPlansEveryForm(t *testing.T) {
	tests := []struct {
		name     string
		networks string
		// want are "ifName type" of the ADDs, in plan order; contains are substrings of the ADD
		// records (config and capability args).
		want     []string
		contains []string
		routes   []string
	}{
		{name: "none", want: []string{"eth0 bridge"}, contains: []string{`"portMappings":[{`}},
		{name: "names", networks: "mv, br", want: []string{"eth0 bridge", "net1 macvlan", "net2 bridge"}},
		{name: "interface requests", networks: "mv@data0, ns1/br", want: []string{"eth0 bridge", "data0 macvlan", "net2 bridge"}},
		{name: "global namespace", networks: "default/glob", want: []string{"eth0 bridge", "net1 macvlan"}},
		{name: "JSON with requests", networks: `[{"name":"mv","interface":"ext0","ips":["10.1.1.5/24"],"mac":"02:11:22:33:44:55",
			"default-route":["10.1.1.1"],"cni-args":{"foo":"bar"},"bandwidth":{"ingressRate":1000,"ingressBurst":10,"egressRate":1000,"egressBurst":10},
			"portMappings":[{"hostPort":9090,"containerPort":90,"protocol":"tcp"}],"infiniband-guid":"c2:11:22:33:44:55:66:77"}]`,
			want: []string{"eth0 bridge", "ext0 macvlan"},
			contains: []string{`"ips":["10.1.1.5/24"]`, `"mac":"02:11:22:33:44:55"`, `"args":{"cni":{"foo":"bar"}}`, `"ingressRate":1000`,
				`"hostPort":9090`, `"infinibandGUID":"c2:11:22:33:44:55:66:77"`},
			routes: []string{"[10.1.1.1] dev ext0"}},
		{name: "devices in order", networks: "sriov, sriov", want: []string{"eth0 bridge", "net1 plexus-sriov", "net2 plexus-sriov"},
			contains: []string{`"deviceID":"0000:af:06.0"`, `"pciBusID":"0000:af:06.0"`, `"deviceID":"0000:af:06.1"`, `{"deviceID":"0000:af:06.1"}`}},
		{name: "NAD without cniVersion gets the runtime's", networks: "sriov", want: []string{"eth0 bridge", "net1 plexus-sriov"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, map[string]string{network.NetworksAnnotation: tt.networks})
			out, err := f.a.Add(context.Background(), addCall("c1"))
			if err != nil {
				t.Fatalf("Add: %v", err)
			}
			var res current.Result
			if err := json.Unmarshal(out, &res); err != nil || len(res.Interfaces) != 1 || res.Interfaces[0].Name != "eth0" {
				t.Errorf("result %s, want the default network's (eth0)", out)
			}
			var got []string
			for _, c := range f.dels.ops("ADD") {
				fields := strings.Fields(c)
				got = append(got, fields[1]+" "+fields[2])
			}
			slices.Sort(got) // they run in parallel
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("ADDs = %v, want %v", got, want)
			}
			all := strings.Join(f.dels.calls, "\n")
			for _, c := range tt.contains {
				if !strings.Contains(all, c) {
					t.Errorf("no ADD carries %s:\n%s", c, all)
				}
			}
			if !slices.Equal(f.netns.routes, tt.routes) {
				t.Errorf("default routes set = %v, want %v", f.netns.routes, tt.routes)
			}
			// network-status in plan order, one patch.
			if len(f.api.statuses) != 1 {
				t.Fatalf("%d status writes, want 1", len(f.api.statuses))
			}
			var ifs []string
			for _, s := range f.api.statuses[0] {
				ifs = append(ifs, s.Interface)
			}
			var wantIfs []string
			for _, w := range tt.want {
				wantIfs = append(wantIfs, strings.Fields(w)[0])
			}
			if !slices.Equal(ifs, wantIfs) {
				t.Errorf("network-status interfaces = %v, want %v (annotation order)", ifs, wantIfs)
			}
			entry, _ := f.store.Get("c1")
			if entry == nil || len(entry.Attachments) != len(tt.want) || len(entry.Attachments[len(tt.want)-1].Result) == 0 {
				t.Errorf("cache entry = %+v, want every attachment with its result", entry)
			}
		})
	}
}

func TestAddRefusesBadInputBeforeAttaching(t *testing.T) {
	tests := []struct{ name, networks, want string }{
		{"malformed", "a@b@c", `more than one "@"`},
		{"missing NAD", "nosuch", "no NetworkAttachmentDefinition nosuch in namespace ns1"},
		{"other namespace", "other/private", "namespace isolation refuses"},
		{"too few devices", "sriov, sriov, sriov", "kubelet allocated none (or too few)"},
		{"interface of the default network", "mv@eth0", "which is the default network's"},
		{"plugin not allowed", "alt", `uses plugin type "ptp", which the cluster admin does not allow on node node1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, map[string]string{network.NetworksAnnotation: tt.networks})
			_, err := f.a.Add(context.Background(), addCall("c1"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Add error = %v, want %q", err, tt.want)
			}
			if len(f.dels.calls) != 0 {
				t.Errorf("plugins were called: %v", f.dels.calls)
			}
			if len(f.api.events) != 1 || !strings.Contains(f.api.events[0], tt.want) {
				t.Errorf("events = %v, want one saying %q", f.api.events, tt.want)
			}
			if ids, _ := f.store.List(); len(ids) != 0 {
				t.Errorf("cache entries left: %v", ids)
			}
		})
	}
}

func TestFailedADDRollsBackInReverse(t *testing.T) {
	f := newFixture(t, map[string]string{network.NetworksAnnotation: "mv, bad, br"})
	_, err := f.a.Add(context.Background(), addCall("c1"))
	if err == nil {
		t.Fatal("Add succeeded with a failing delegate")
	}
	for _, w := range []string{"network ns1/bad (plugin failing, interface net2)", "master interface nosuch0 not found on node node1"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	var dels []string
	for _, c := range f.dels.ops("DEL") {
		dels = append(dels, strings.Fields(c)[1])
	}
	if !slices.Equal(dels, []string{"net3", "net2", "net1", "eth0"}) {
		t.Errorf("rollback DELs = %v, want every attachment in reverse order", dels)
	}
	if ids, _ := f.store.List(); len(ids) != 0 {
		t.Errorf("cache entries left after the rollback: %v", ids)
	}
	if len(f.api.statuses) != 0 {
		t.Errorf("a network-status was written for a failed ADD: %v", f.api.statuses)
	}
	if len(f.api.events) != 1 || !strings.HasPrefix(f.api.events[0], EventReason+": network ns1/bad (plugin failing, interface net2): master interface nosuch0 not found on node node1") {
		t.Errorf("events = %v", f.api.events)
	}
}

func TestDelFromCacheKeepsWhatFailed(t *testing.T) {
	f := newFixture(t, map[string]string{network.NetworksAnnotation: "mv, br"})
	if _, err := f.a.Add(context.Background(), addCall("c1")); err != nil {
		t.Fatal(err)
	}
	// The NADs and the pod are gone: DEL needs neither.
	f.api.nads, f.api.pods = nil, nil
	f.dels.failDel["net1"] = true
	del := &Call{Command: "DEL", ContainerID: "c1", Netns: "", IfName: "eth0"}
	err := f.a.Del(context.Background(), del)
	if err == nil || !strings.Contains(err.Error(), "network ns1/mv (plugin macvlan, interface net1): DEL failed") {
		t.Fatalf("Del = %v, want the failure of net1 reported", err)
	}
	entry, _ := f.store.Get("c1")
	if entry == nil || len(entry.Attachments) != 1 || entry.Attachments[0].IfName != "net1" {
		t.Fatalf("cache after a partly failed DEL = %+v, want net1 alone", entry)
	}
	f.dels.failDel["net1"] = false
	if err := f.a.Del(context.Background(), del); err != nil {
		t.Fatalf("retried Del: %v", err)
	}
	if err := f.a.Del(context.Background(), del); err != nil {
		t.Fatalf("Del of a detached container: %v", err)
	}
	if ids, _ := f.store.List(); len(ids) != 0 {
		t.Errorf("cache entries left: %v", ids)
	}
}

func TestExplain(t *testing.T) {
	a := New(Options{NodeName: "node2", BinDirs: []string{"/opt/cni/bin"}}, Host{})
	tests := []struct{ raw, want, reason string }{
		{`plugin type="macvlan" failed (add): failed to lookup master "nosuch0": Link not found`, "master interface nosuch0 not found on node node2", "master-not-found"},
		{`failed to find plugin "nosuch" in path [/opt/cni/bin]`, `CNI plugin "nosuch" is not installed on node node2 (searched /opt/cni/bin)`, "plugin-not-found"},
		{`no IP addresses available in range set: 10.0.0.1-10.0.0.2`, "no free address", "no-address"},
		{`something odd`, "something odd", "plugin-error"},
	}
	for _, tt := range tests {
		cause, reason := a.explain(tt.raw)
		if !strings.Contains(cause, tt.want) || reason != tt.reason {
			t.Errorf("explain(%q) = %q, %q; want %q, %q", tt.raw, cause, reason, tt.want, tt.reason)
		}
		if !strings.Contains(cause, tt.raw) {
			t.Errorf("explain(%q) dropped the plugin's own words: %q", tt.raw, cause)
		}
	}
}

func TestParseArgs(t *testing.T) {
	p := parseArgs("K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_UID=u;BLAHBLAH=foo=bar")
	if p.Namespace != "ns" || p.Name != "p" || p.UID != "u" {
		t.Errorf("parseArgs = %+v", p)
	}
	want := [][2]string{{"IgnoreUnknown", "true"}, {"K8S_POD_NAMESPACE", "ns"}, {"K8S_POD_NAME", "p"}, {"K8S_POD_UID", "u"}, {"BLAHBLAH", "foo=bar"}}
	if !slices.Equal(p.Args, want) {
		t.Errorf("args = %v, want %v", p.Args, want)
	}
}

func TestDefaultNetworkAnnotationReplacesTheClusterNetwork(t *testing.T) {
	f := newFixture(t, map[string]string{network.DefaultNetworkAnnotation: "alt", network.NetworksAnnotation: "mv"})
	f.a.opts.AllowedPlugins = append(f.a.opts.AllowedPlugins, "ptp")
	if _, err := f.a.Add(context.Background(), addCall("c1")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range f.dels.ops("ADD") {
		fields := strings.Fields(c)
		got = append(got, fields[1]+" "+fields[2])
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"eth0 ptp", "net1 macvlan"}) {
		t.Errorf("ADDs = %v, want eth0 from NAD ns1/alt (ptp) instead of the cluster network", got)
	}
	st := f.api.statuses[0]
	if st[0].Name != "ns1/alt" || !st[0].Default {
		t.Errorf("network-status[0] = %+v, want ns1/alt as the default", st[0])
	}
}
