package sriov

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/plexus-project/plexus/cni/sriov/pf"
	"github.com/plexus-project/plexus/cni/sriov/sriovtest"
)

// everything is a configuration setting every VF field.
var everything = map[string]any{
	"vlan": 100, "vlanQoS": 2, "spoofchk": "off", "trust": "on", "link_state": "enable",
	"min_tx_rate": 10, "max_tx_rate": 500, "mac": "02:aa:00:00:00:01", "mtu": 1400,
}

func ptr[T any](v T) *T { return &v }

var everythingPF = pf.Settings{VLAN: &pf.VLAN{ID: 100, QoS: 2, Proto: pf.Proto8021Q}, MAC: "02:aa:00:00:00:01",
	SpoofChk: ptr(false), Trust: ptr(true), LinkState: pf.LinkStateEnable, Rate: &pf.Rate{Min: 10, Max: 500}}

func TestSRIOV(t *testing.T) {
	sriovtest.RequireRoot(t)
	e := startEnv(t)
	t.Run("ADD moves and configures the VF, DEL restores it", e.testAddDel)
	t.Run("CHECK fails when something drifted", e.testCheckDrift)
	t.Run("DEL after the netns died restores everything", e.testDelAfterNetnsGone)
	t.Run("a late DEL of a former owner leaves the new owner's VF alone", e.testLateDel)
	t.Run("bad input changes nothing", e.testBadInput)
	t.Run("a VF on vfio-pci gets PF settings and its PCI address", e.testUserspace)
	t.Run("a failed ADD rolls the VF back", e.testRollback)
	t.Run("racing ADDs for one VF: one wins, the others change nothing", e.testRace)
}

func (e *env) testAddDel(t *testing.T) {
	for i, v := range []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			ctx := ctxT(t, 2*time.Minute)
			n := sriovtest.NewNode(t, sriovtest.Options{VFs: 2, InHostNetns: true})
			pod := sriovtest.NewNetns(t, "pod")
			vf := n.VFs[1]
			cidr := netip.MustParsePrefix("10.60." + string(rune('0'+i)) + ".0/24")
			a := e.newAttachment(n, "c-adddel", pod, vf.PCI, v, cidr.String(), everything)
			r := a.mustAdd(ctx, t)

			if len(r.Interfaces) != 1 || r.Interfaces[0].Name != "net1" || r.Interfaces[0].Sandbox != pod.Path() ||
				r.Interfaces[0].Mac != "02:aa:00:00:00:01" {
				t.Fatalf("result interfaces %+v", r.Interfaces)
			}
			if v == "1.1.0" && r.Interfaces[0].PciID != vf.PCI {
				t.Errorf("result pciID %q, want %s", r.Interfaces[0].PciID, vf.PCI)
			}
			if len(r.IPs) != 1 || !cidr.Contains(netip.MustParseAddr(r.IPs[0].Address.IP.String())) {
				t.Fatalf("result IPs %v, want one address of %s", r.IPs, cidr)
			}
			in, err := n.Link(pod, "net1")
			if err != nil {
				t.Fatalf("no net1 in the pod: %v", err)
			}
			if in.MAC != "02:aa:00:00:00:01" || in.MTU != 1400 || !in.Up {
				t.Errorf("net1 in the pod is %+v, want MAC 02:aa:00:00:00:01, MTU 1400, up", in)
			}
			if addrs, _ := sriovtest.Addrs(pod, "net1"); len(addrs) != 1 || addrs[0] != r.IPs[0].Address.String() {
				t.Errorf("net1 addresses %v, want %s", addrs, r.IPs[0].Address.String())
			}
			if _, err := n.Link(nil, vf.Netdev); err == nil {
				t.Errorf("%s is still in the node's netns", vf.Netdev)
			}
			got, _ := n.Recorder().Get(ctx, n.PF, vf.Index)
			if d := pf.Diff(everythingPF, got); d != nil {
				t.Errorf("PF settings after ADD: %v", d)
			}
			if v != "0.3.1" {
				if err := a.check(ctx, t, r); err != nil {
					t.Errorf("CHECK right after ADD: %v", err)
				}
			}
			if v == "1.1.0" {
				if _, err := a.call(ctx, t, "STATUS", nil); err != nil {
					t.Errorf("STATUS: %v", err)
				}
			}
			hostVFUnchanged(t, n, n.VFs[0]) // the other VF

			a.mustDel(ctx, t)
			hostVFUnchanged(t, n, vf)
			pfFresh(t, n, vf)
			noRecord(t, n, vf)
			if _, err := n.Link(pod, "net1"); err == nil {
				t.Error("net1 is still in the pod after DEL")
			}
			j, _ := n.Recorder().Journal(n.PF.PCI, vf.Index)
			if len(j) != 2 || pf.Diff(everythingPF, mergeFresh(j[0])) != nil || j[1].VLAN == nil || j[1].VLAN.ID != 0 || *j[1].Trust {
				t.Errorf("the recorder saw %+v, want the settings set, then restored", j)
			}
			a.mustDel(ctx, t) // twice is fine
		})
	}
}

// mergeFresh is a recorded change on top of a fresh VF.
func mergeFresh(s pf.Settings) pf.Settings {
	out := pf.Fresh()
	if s.VLAN != nil {
		out.VLAN = s.VLAN
	}
	if s.MAC != "" {
		out.MAC = s.MAC
	}
	if s.SpoofChk != nil {
		out.SpoofChk = s.SpoofChk
	}
	if s.Trust != nil {
		out.Trust = s.Trust
	}
	if s.LinkState != "" {
		out.LinkState = s.LinkState
	}
	if s.Rate != nil {
		out.Rate = s.Rate
	}
	return out
}

func (e *env) testCheckDrift(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	n := sriovtest.NewNode(t, sriovtest.Options{VFs: 1, InHostNetns: true})
	pod := sriovtest.NewNetns(t, "pod")
	vf := n.VFs[0]
	a := e.newAttachment(n, "c-check", pod, vf.PCI, "1.1.0", "10.61.0.0/24", everything)
	r := a.mustAdd(ctx, t)
	if err := a.check(ctx, t, r); err != nil {
		t.Fatalf("CHECK right after ADD: %v", err)
	}
	inPod := func(fn func(l netlink.Link) error) {
		t.Helper()
		if err := pod.Do(func(ns.NetNS) error {
			l, err := netlink.LinkByName("net1")
			if err != nil {
				return err
			}
			return fn(l)
		}); err != nil {
			t.Fatal(err)
		}
	}
	drifts := []struct {
		name  string
		drift func()
		undo  func()
		want  string
	}{
		{"mtu", func() { inPod(func(l netlink.Link) error { return netlink.LinkSetMTU(l, 1300) }) },
			func() { inPod(func(l netlink.Link) error { return netlink.LinkSetMTU(l, 1400) }) }, "mtu: want 1400, have 1300"},
		{"down", func() { inPod(netlink.LinkSetDown) }, func() { inPod(netlink.LinkSetUp) }, "interface net1: down"},
		{"address", func() {
			inPod(func(l netlink.Link) error { return netlink.AddrDel(l, &netlink.Addr{IPNet: &r.IPs[0].Address}) })
		}, func() {
			inPod(func(l netlink.Link) error { return netlink.AddrAdd(l, &netlink.Addr{IPNet: &r.IPs[0].Address}) })
		}, "address " + r.IPs[0].Address.String() + ": missing"},
		{"vlan", func() { setPF(t, n, vf, pf.Settings{VLAN: &pf.VLAN{ID: 7, Proto: pf.Proto8021Q}}) },
			func() { setPF(t, n, vf, pf.Settings{VLAN: everythingPF.VLAN}) }, "vlan: want 100 qos 2"},
		{"trust", func() { setPF(t, n, vf, pf.Settings{Trust: ptr(false)}) },
			func() { setPF(t, n, vf, pf.Settings{Trust: ptr(true)}) }, "trust: want on, have off"},
	}
	for _, d := range drifts {
		d.drift()
		err := a.check(ctx, t, r)
		if err == nil || !strings.Contains(err.Error(), d.want) {
			t.Errorf("%s drifted: CHECK = %v, want an error saying %q", d.name, err, d.want)
		}
		d.undo()
		if err := a.check(ctx, t, r); err != nil {
			t.Errorf("after undoing the %s drift: %v", d.name, err)
		}
	}
	a.mustDel(ctx, t)
	if err := a.check(ctx, t, r); err == nil {
		t.Error("CHECK after DEL passed")
	}
}

func setPF(t testing.TB, n *sriovtest.Node, vf sriovtest.VF, s pf.Settings) {
	t.Helper()
	if err := n.Recorder().Set(context.Background(), n.PF, vf.Index, s); err != nil {
		t.Fatal(err)
	}
}

func (e *env) testDelAfterNetnsGone(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	n := sriovtest.NewNode(t, sriovtest.Options{VFs: 1, InHostNetns: true})
	pod := sriovtest.NewNetns(t, "pod")
	vf := n.VFs[0]
	a := e.newAttachment(n, "c-gone", pod, vf.PCI, "1.0.0", "10.62.0.0/24", everything)
	first := a.mustAdd(ctx, t)

	// The pod's netns dies before DEL; the kernel brings a real VF back to the host with the
	// MAC and MTU it had in the pod.
	sriovtest.DeleteNetns(t, pod)
	n.ReturnVF(t, vf, "02:aa:00:00:00:01", 1400)
	a.mustDel(ctx, t)
	hostVFUnchanged(t, n, vf)
	pfFresh(t, n, vf)
	noRecord(t, n, vf)
	a.mustDel(ctx, t)

	// The address went back to the pool: the next pod gets it.
	b := e.newAttachment(n, "c-next", sriovtest.NewNetns(t, "pod"), vf.PCI, "1.0.0", "10.62.0.0/24", everything)
	next := b.mustAdd(ctx, t)
	if !next.IPs[0].Address.IP.Equal(first.IPs[0].Address.IP) {
		t.Errorf("the next pod got %s, want the released %s", next.IPs[0].Address.IP, first.IPs[0].Address.IP)
	}
	b.mustDel(ctx, t)
	hostVFUnchanged(t, n, vf)
}

func (e *env) testLateDel(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	n := sriovtest.NewNode(t, sriovtest.Options{VFs: 1, InHostNetns: true})
	vf := n.VFs[0]
	pod1 := sriovtest.NewNetns(t, "pod")
	old := e.newAttachment(n, "c-old", pod1, vf.PCI, "1.1.0", "10.63.0.0/24", everything)
	old.mustAdd(ctx, t)
	sriovtest.DeleteNetns(t, pod1)
	n.ReturnVF(t, vf, "02:aa:00:00:00:01", 1400)

	// The device plugin hands the VF to a new pod before the old pod's DEL comes.
	pod2 := sriovtest.NewNetns(t, "pod")
	newer := map[string]any{"vlan": 200, "mac": "02:bb:00:00:00:02", "trust": "off", "mtu": 1450}
	cur := e.newAttachment(n, "c-new", pod2, vf.PCI, "1.1.0", "10.63.0.0/24", newer)
	r := cur.mustAdd(ctx, t)
	// A third pod asking for the same VF while it is in use is refused, and changes nothing.
	third := e.newAttachment(n, "c-third", sriovtest.NewNetns(t, "pod"), vf.PCI, "1.1.0", "10.63.0.0/24", everything)
	if _, err := third.add(ctx, t); err == nil || !strings.Contains(err.Error(), "attached to container c-new") {
		t.Errorf("ADD of a VF in use: %v, want a refusal naming c-new", err)
	}

	old.mustDel(ctx, t) // late
	if err := cur.check(ctx, t, r); err != nil {
		t.Fatalf("the new owner's VF was touched by the late DEL: %v", err)
	}
	in, err := n.Link(pod2, "net1")
	if err != nil || in.MAC != "02:bb:00:00:00:02" || in.MTU != 1450 {
		t.Fatalf("new owner's net1: %+v, %v", in, err)
	}
	got, _ := n.Recorder().Get(ctx, n.PF, vf.Index)
	if got.VLAN.ID != 200 || got.MAC != "02:bb:00:00:00:02" {
		t.Fatalf("PF settings after the late DEL: %+v, want the new owner's", got)
	}
	cur.mustDel(ctx, t)
	hostVFUnchanged(t, n, vf)
	pfFresh(t, n, vf)
	noRecord(t, n, vf)
}

func (e *env) testBadInput(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	n := sriovtest.NewNode(t, sriovtest.Options{VFs: 1, VFIO: 1, NoNetdev: 1, InHostNetns: true})
	vf := n.VFs[0]
	pod := sriovtest.NewNetns(t, "pod")
	tests := []struct {
		name  string
		pci   string
		extra map[string]any
		want  string
	}{
		{"unknown deviceID", "0000:3b:09.0", nil, `deviceID: "0000:3b:09.0": PCI device 0000:3b:09.0: no such PCI device`},
		{"missing deviceID", "", nil, "deviceID: missing"},
		{"deviceID of the PF", sriovtest.PFPCI, nil, "not an SR-IOV virtual function"},
		{"deviceID a path", "../../../etc", nil, `deviceID: "../../../etc" is not a PCI address`},
		{"VF without netdev on iavf", n.VFs[2].PCI, nil, `the VF has no netdev and its driver "iavf" is not a userspace driver`},
		{"vlan 5000", vf.PCI, map[string]any{"vlan": 5000}, "vlan: 5000 is out of range 0-4094"},
		{"max rate below min", vf.PCI, map[string]any{"min_tx_rate": 200, "max_tx_rate": 100}, "max_tx_rate: 100 is below min_tx_rate 200"},
		{"bad mac", vf.PCI, map[string]any{"mac": "02:zz:00:00:00:01"}, `mac: "02:zz:00:00:00:01" is not an Ethernet MAC`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := e.newAttachment(n, "c-bad", pod, tc.pci, "1.1.0", "10.64.0.0/24", tc.extra)
			_, err := a.add(ctx, t)
			var ce *types.Error
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ADD = %v, want a CNI error saying %q", err, tc.want)
			}
			if !asCNIError(err, &ce) || ce.Code == 0 {
				t.Errorf("not a CNI error with a code: %v", err)
			}
			hostVFUnchanged(t, n, vf)
			noRecord(t, n, vf)
			if j, _ := n.Recorder().Journal(n.PF.PCI, vf.Index); len(j) != 0 {
				t.Errorf("the PF was changed: %+v", j)
			}
			if _, err := n.Link(pod, "net1"); err == nil {
				t.Error("net1 appeared in the pod")
			}
		})
	}
	// No address was allocated by the refused ADDs: the first is still free.
	a := e.newAttachment(n, "c-good", pod, vf.PCI, "1.1.0", "10.64.0.0/24", nil)
	r := a.mustAdd(ctx, t)
	if got := r.IPs[0].Address.IP.String(); got != "10.64.0.1" {
		t.Errorf("first address after the refusals %s, want 10.64.0.1", got)
	}
	a.mustDel(ctx, t)
}

func asCNIError(err error, target **types.Error) bool {
	e, ok := err.(*types.Error)
	if ok {
		*target = e
	}
	return ok
}

func (e *env) testUserspace(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	n := sriovtest.NewNode(t, sriovtest.Options{VFs: 1, VFIO: 1, InHostNetns: true})
	vfio := n.VFs[1]
	pod := sriovtest.NewNetns(t, "pod")
	a := e.newAttachment(n, "c-dpdk", pod, vfio.PCI, "1.1.0", "10.65.0.0/24", map[string]any{"vlan": 300, "mac": "02:cc:00:00:00:03", "trust": "on"})
	r := a.mustAdd(ctx, t)
	if len(r.Interfaces) != 1 || r.Interfaces[0].PciID != vfio.PCI || r.Interfaces[0].Mac != "02:cc:00:00:00:03" || len(r.IPs) != 1 {
		t.Fatalf("result %+v %v, want the VF's PCI address, MAC and an address", r.Interfaces, r.IPs)
	}
	got, _ := n.Recorder().Get(ctx, n.PF, vfio.Index)
	if got.VLAN.ID != 300 || got.MAC != "02:cc:00:00:00:03" || !*got.Trust {
		t.Errorf("PF settings %+v", got)
	}
	if err := a.check(ctx, t, r); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	hostVFUnchanged(t, n, n.VFs[0])
	a.mustDel(ctx, t)
	pfFresh(t, n, vfio)
	noRecord(t, n, vfio)
}

func (e *env) testRollback(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	n := sriovtest.NewNode(t, sriovtest.Options{VFs: 1, InHostNetns: true})
	vf := n.VFs[0]
	pod := sriovtest.NewNetns(t, "pod")
	// IPAM fails after the PF settings are applied.
	a := e.newAttachment(n, "c-noipam", pod, vf.PCI, "1.1.0", "10.66.0.0/24", everything)
	a.conf["ipam"] = map[string]any{"type": "no-such-ipam"}
	if _, err := a.add(ctx, t); err == nil {
		t.Fatal("ADD with a missing IPAM plugin succeeded")
	}
	hostVFUnchanged(t, n, vf)
	pfFresh(t, n, vf)
	noRecord(t, n, vf)
	if j, _ := n.Recorder().Journal(n.PF.PCI, vf.Index); len(j) != 2 {
		t.Errorf("the recorder saw %+v, want the change and its rollback", j)
	}

	// Configuring the addresses fails after the netdev moved into the pod: a route through a
	// gateway the interface cannot reach.
	b := e.newAttachment(n, "c-badroute", pod, vf.PCI, "1.1.0", "10.66.0.0/24", everything)
	ipam := b.conf["ipam"].(map[string]any)
	ipam["routes"] = []map[string]any{{"dst": "192.0.2.0/24", "gw": "10.200.0.1"}}
	if _, err := b.add(ctx, t); err == nil || !strings.Contains(err.Error(), "192.0.2.0/24") {
		t.Fatalf("ADD with an unreachable route: %v, want an error naming the route", err)
	}
	hostVFUnchanged(t, n, vf)
	pfFresh(t, n, vf)
	noRecord(t, n, vf)
	if _, err := n.Link(pod, "net1"); err == nil {
		t.Error("net1 is left in the pod")
	}
	// The address allocated for the failed ADD was released.
	c := e.newAttachment(n, "c-after", pod, vf.PCI, "1.1.0", "10.66.0.0/24", nil)
	if r := c.mustAdd(ctx, t); r.IPs[0].Address.IP.String() != "10.66.0.1" {
		t.Errorf("after the rollbacks the first address is %s, want 10.66.0.1 free again", r.IPs[0].Address.IP)
	}
	c.mustDel(ctx, t)
}

func (e *env) testRace(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	n := sriovtest.NewNode(t, sriovtest.Options{VFs: 1, InHostNetns: true})
	vf := n.VFs[0]
	const racers = 4
	atts := make([]*attachment, racers)
	for i := range atts {
		atts[i] = e.newAttachment(n, "c-race-"+string(rune('a'+i)), sriovtest.NewNetns(t, "pod"), vf.PCI, "1.1.0", "10.67.0.0/24", everything)
	}
	errs := make(chan error, racers)
	results := make([]*current.Result, racers)
	for i, a := range atts {
		go func() {
			r, err := a.add(ctx, t)
			results[i] = r
			errs <- err
		}()
	}
	won := -1
	for range racers {
		if err := <-errs; err != nil && !strings.Contains(err.Error(), "the VF is attached to container c-race-") {
			t.Errorf("a losing ADD failed otherwise than refused: %v", err)
		}
	}
	for i, r := range results {
		if r != nil {
			if won >= 0 {
				t.Fatalf("%s and %s both got VF %s", atts[won].cid, atts[i].cid, vf.PCI)
			}
			won = i
		}
	}
	if won < 0 {
		t.Fatal("no ADD got the VF")
	}
	if err := atts[won].check(ctx, t, results[won]); err != nil {
		t.Errorf("the winner's attachment: %v", err)
	}
	for i, a := range atts {
		if i != won {
			a.mustDel(ctx, t) // the runtime's DEL after a failed ADD leaves the winner's VF alone
		}
	}
	if err := atts[won].check(ctx, t, results[won]); err != nil {
		t.Errorf("the losers' DELs touched the winner's VF: %v", err)
	}
	atts[won].mustDel(ctx, t)
	hostVFUnchanged(t, n, vf)
	pfFresh(t, n, vf)
	noRecord(t, n, vf)
}
