package cni

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// inSubnet fails unless every address of addrs (CIDR form) lies in subnet, and there is one.
func inSubnet(t *testing.T, what string, addrs []string, subnet string) {
	t.Helper()
	_, want, _ := net.ParseCIDR(subnet)
	if len(addrs) != 1 {
		t.Fatalf("%s has addresses %v, want one in %s", what, addrs, subnet)
	}
	ip, _, err := net.ParseCIDR(addrs[0])
	if err != nil || !want.Contains(ip) {
		t.Fatalf("%s has address %s, want one in %s", what, addrs[0], subnet)
	}
}

func TestPodGetsDefaultAndSecondaryNetworks(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 4*time.Minute)
	master := e.master()
	e.createNAD(ctx, "macvlan-conf", fmt.Sprintf(`{"cniVersion":"1.0.0","type":"macvlan","master":%q,"mode":"bridge","ipam":%s}`, master, e.ipamConf("10.97.0.0/24")), nil)
	br := "pxb" + e.suffix
	e.cleanupLink(br)
	e.createNAD(ctx, "bridge-conf", fmt.Sprintf(`{"cniVersion":"1.0.0","type":"bridge","bridge":%q,"ipam":%s}`, br, e.hostLocalConf("10.96.0.0/24")), nil)
	e.startDaemon()
	rt := e.runtime()
	sb := e.newSandbox(ctx, "pod-a", "macvlan-conf, bridge-conf")

	res, err := rt.add(ctx, sb)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	// The runtime gets the default network's result.
	r, err := current.NewResultFromResult(res)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.IPs) != 1 || !strings.HasPrefix(r.IPs[0].Address.String(), "10.99.0.") {
		t.Errorf("result to the runtime = %v, want the cluster network's address in 10.99.0.0/24", r)
	}

	want := map[string]string{"eth0": "10.99.0.0/24", "net1": "10.97.0.0/24", "net2": "10.96.0.0/24"}
	macs := map[string]string{}
	addrs := map[string]string{}
	for ifName, subnet := range want {
		mac, a, ok := ifaceAddrs(t, sb, ifName)
		if !ok {
			t.Fatalf("the pod has no %s", ifName)
		}
		inSubnet(t, ifName, a, subnet)
		macs[ifName], addrs[ifName] = mac, strings.Split(a[0], "/")[0]
	}
	if got := defaultRoutes(t, sb); !slices.Equal(got, []string{clusterGateway + " dev eth0"}) {
		t.Errorf("default routes = %v, want the cluster network's via eth0", got)
	}

	st := e.networkStatus(ctx, sb)
	wantStatus := []struct{ name, iface string }{{"cluster", "eth0"}, {"default/macvlan-conf", "net1"}, {"default/bridge-conf", "net2"}}
	if len(st) != len(wantStatus) {
		t.Fatalf("network-status has %d entries, want 3: %s", len(st), mustJSON(st))
	}
	for i, w := range wantStatus {
		s := st[i]
		if s.Name != w.name || s.Interface != w.iface || s.Mac != macs[w.iface] || !slices.Equal(s.IPs, []string{addrs[w.iface]}) || s.Default != (i == 0) {
			t.Errorf("network-status[%d] = %s, want name %s interface %s mac %s ips [%s] default %v", i, mustJSON(s), w.name, w.iface, macs[w.iface], addrs[w.iface], i == 0)
		}
	}
	if got := e.allocatedTo(ctx, sb.id, 1); len(got) != 1 || !strings.HasSuffix(got[0], "@net1") || !strings.HasPrefix(got[0], addrs["net1"]+"@") {
		t.Errorf("plexus-ipam allocations of the container = %v, want %s@net1", got, addrs["net1"])
	}

	// CHECK passes, then notices an interface removed behind its back.
	if err := rt.check(ctx, sb); err != nil {
		t.Fatalf("CHECK of a healthy pod: %v", err)
	}
	if err := sb.ns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName("net2")
		if err != nil {
			return err
		}
		return netlink.LinkDel(l)
	}); err != nil {
		t.Fatal(err)
	}
	if err := rt.check(ctx, sb); err == nil || !strings.Contains(err.Error(), "net2") {
		t.Errorf("CHECK after net2 was deleted = %v, want an error naming net2", err)
	}

	// DEL frees everything; a second DEL is fine.
	if err := rt.del(ctx, sb); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if got := e.allocatedTo(ctx, sb.id, 0); len(got) != 0 {
		t.Errorf("after DEL plexus-ipam still holds %v", got)
	}
	if got := e.hostLocalFiles(sb.id); len(got) != 0 {
		t.Errorf("after DEL host-local still holds %v", got)
	}
	for _, ifName := range []string{"eth0", "net1"} {
		if _, _, ok := ifaceAddrs(t, sb, ifName); ok {
			t.Errorf("after DEL the pod still has %s", ifName)
		}
	}
	if err := rt.del(ctx, sb); err != nil {
		t.Errorf("second DEL: %v", err)
	}
}

func TestJSONSelectionIsHonoured(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 3*time.Minute)
	master := e.master()
	e.createNAD(ctx, "macvlan-static", fmt.Sprintf(`{"cniVersion":"1.0.0","type":"macvlan","master":%q,"mode":"bridge",
		"capabilities":{"ips":true,"mac":true},"ipam":{"type":"static"}}`, master), nil)
	e.startDaemon()
	rt := e.runtime()
	sb := e.newSandbox(ctx, "pod-json", `[{"name":"macvlan-static","interface":"ext0","ips":["10.98.0.10/24"],
		"mac":"02:11:22:33:44:55","default-route":["10.98.0.254"]}]`)
	if _, err := rt.add(ctx, sb); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	mac, addrs, ok := ifaceAddrs(t, sb, "ext0")
	if !ok {
		t.Fatal("the pod has no ext0 (the interface the selection asked for)")
	}
	if mac != "02:11:22:33:44:55" || !slices.Equal(addrs, []string{"10.98.0.10/24"}) {
		t.Errorf("ext0 = mac %s addrs %v, want 02:11:22:33:44:55 and [10.98.0.10/24]", mac, addrs)
	}
	if _, _, ok := ifaceAddrs(t, sb, "net1"); ok {
		t.Error("the pod has a net1 although the selection named its interface ext0")
	}
	if got := defaultRoutes(t, sb); !slices.Equal(got, []string{"10.98.0.254 dev ext0"}) {
		t.Errorf("default routes = %v, want only 10.98.0.254 dev ext0 (default-route replaces the cluster network's)", got)
	}
	st := e.networkStatus(ctx, sb)
	if len(st) != 2 || st[1].Interface != "ext0" || !slices.Equal(st[1].Gateway, []string{"10.98.0.254"}) || st[1].Mac != mac {
		t.Errorf("network-status = %s, want ext0 with gateway 10.98.0.254", mustJSON(st))
	}
	if len(st) == 2 && len(st[0].Gateway) != 0 {
		t.Errorf("the default network still reports gateway %v after default-route moved it", st[0].Gateway)
	}
	if err := rt.check(ctx, sb); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := rt.del(ctx, sb); err != nil {
		t.Fatalf("DEL: %v", err)
	}
}

func TestFailingDelegateLeavesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 3*time.Minute)
	master := e.master()
	e.createNAD(ctx, "macvlan-conf", fmt.Sprintf(`{"cniVersion":"1.0.0","type":"macvlan","master":%q,"ipam":%s}`, master, e.ipamConf("10.97.0.0/24")), nil)
	e.createNAD(ctx, "macvlan-bad", fmt.Sprintf(`{"cniVersion":"1.0.0","type":"macvlan","master":"nosuch0","ipam":%s}`, e.ipamConf("10.95.0.0/24")), nil)
	e.startDaemon()
	rt := e.runtime()
	sb := e.newSandbox(ctx, "pod-bad", "macvlan-conf, macvlan-bad")

	_, err := rt.add(ctx, sb)
	if err == nil {
		t.Fatal("ADD with a network whose master does not exist succeeded")
	}
	for _, w := range []string{"default/macvlan-bad", "macvlan", "master interface nosuch0 not found on node " + node} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("ADD error %q does not say %q", err, w)
		}
	}
	for _, ifName := range []string{"eth0", "net1", "net2"} {
		if _, _, ok := ifaceAddrs(t, sb, ifName); ok {
			t.Errorf("after the failed ADD the pod has %s", ifName)
		}
	}
	if got := e.allocatedTo(ctx, sb.id, 0); len(got) != 0 {
		t.Errorf("after the failed ADD plexus-ipam holds %v for the container (the rollback must return it)", got)
	}
	if got := e.hostLocalFiles(sb.id); len(got) != 0 {
		t.Errorf("after the failed ADD host-local holds %v", got)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "state", "containers", sb.id+".json")); !os.IsNotExist(err) {
		t.Errorf("the failed ADD left a cache entry (stat: %v)", err)
	}
	if ev, ok := e.waitEvent(ctx, sb, "default/macvlan-bad", "master interface nosuch0 not found on node "+node); !ok {
		t.Errorf("no Warning event naming the network and the cause; events seen:\n%s", ev)
	} else if !strings.HasPrefix(ev, "NetworkAttachFailed: ") {
		t.Errorf("event %q, want reason NetworkAttachFailed", ev)
	}
	// The runtime's DEL after a failed ADD is fine.
	if err := rt.del(ctx, sb); err != nil {
		t.Errorf("DEL after the failed ADD: %v", err)
	}
}

func TestBadInputGetsAClearErrorAndNothingAttached(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 3*time.Minute)
	e.createNAD(ctx, "unparsable", `{"cniVersion":"1.0.0","type":`, nil)
	e.createNAD(ctx, "unknown-plugin", `{"cniVersion":"1.0.0","type":"nosuchplugin"}`, nil)
	e.startDaemon()
	rt := e.runtime()
	tests := []struct {
		name, networks string
		want           []string
	}{
		{"malformed annotation", "a@b@c", []string{`network 1 ("a@b@c")`, `more than one "@"`}},
		{"missing NAD", "nosuch", []string{"default/nosuch", "no NetworkAttachmentDefinition nosuch in namespace default"}},
		{"unparsable NAD config", "unparsable", []string{"default/unparsable", "config is invalid"}},
		{"unknown plugin type", "unknown-plugin", []string{`CNI plugin "nosuchplugin" is not installed on node ` + node, e.pluginDirs[0]}},
		{"NAD of another namespace", "kube-system/x", []string{"kube-system/x", "namespace isolation"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb := e.newSandbox(ctx, fmt.Sprintf("pod-bad-%d", i), tt.networks)
			_, err := rt.add(ctx, sb)
			if err == nil {
				t.Fatal("ADD succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, _, ok := ifaceAddrs(t, sb, "eth0"); ok {
				t.Error("the pod has eth0 after the failed ADD")
			}
			if got := e.hostLocalFiles(sb.id); len(got) != 0 {
				t.Errorf("host-local holds %v after the failed ADD", got)
			}
			if _, ok := e.waitEvent(ctx, sb, tt.want[0]); !ok {
				t.Errorf("no Warning event saying %q", tt.want[0])
			}
		})
	}
}

func TestNoNetworksGetsTheDefaultOnly(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 2*time.Minute)
	e.startDaemon()
	rt := e.runtime()
	sb := e.newSandbox(ctx, "plain", "")
	if _, err := rt.add(ctx, sb); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	_, a, ok := ifaceAddrs(t, sb, "eth0")
	if !ok {
		t.Fatal("no eth0")
	}
	inSubnet(t, "eth0", a, "10.99.0.0/24")
	if st := e.networkStatus(ctx, sb); len(st) != 1 || st[0].Name != "cluster" || !st[0].Default {
		t.Errorf("network-status = %s, want the cluster network alone", mustJSON(st))
	}
	if err := rt.del(ctx, sb); err != nil {
		t.Fatal(err)
	}
}
