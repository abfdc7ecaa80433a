package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/cni/sriov/pf"
	"github.com/plexus-project/plexus/deviceplugin/sysfs"
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	"github.com/plexus-project/plexus/test/cluster"
	"github.com/plexus-project/plexus/test/cluster/demo"
)

// upfNetworks are the networks of the example UPF pods, as net1, net2, net3.
var upfNetworks = []string{"default/sriov-n3", "default/sriov-n6", "default/macvlan-n4"}

// upfVFSettings are the PF-side settings of docs/examples' SR-IOV networks, by interface.
var upfVFSettings = map[string]pf.Settings{
	"net1": {VLAN: &pf.VLAN{ID: 103, Proto: pf.Proto8021Q}, SpoofChk: ptr(true), Trust: ptr(false), LinkState: pf.LinkStateAuto, Rate: &pf.Rate{Max: 10000}},
	"net2": {VLAN: &pf.VLAN{ID: 106, Proto: pf.Proto8021Q}, SpoofChk: ptr(true), Trust: ptr(false), LinkState: pf.LinkStateAuto, Rate: &pf.Rate{Max: 10000}},
}

// TestUPF is the whole SR-IOV data path on real kubelets, twice (re-creating works): the
// example UPF pods on two nodes each get eth0, two VFs (N3, N6) and macvlan (N4), each with its
// address; network-status names the VFs kubelet allocated (as the pod's PCIDEVICE_* variable
// and the PodResources API do); the VFs' netdevs left their nodes and their PFs hold the
// networks' settings; the pods ping each other over N3, N6 and N4. Deleting the pods returns
// every VF to its node under its name and MAC with its PF settings as before, and every
// address to its pool.
func TestUPF(t *testing.T) {
	s, ctx, examples := withCNI(t)
	for round := 1; round <= 2; round++ {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) { upfRound(ctx, t, s, examples) })
	}
}

// upfPod is what one UPF pod got.
type upfPod struct {
	pod  *corev1.Pod
	node *cluster.Node
	nets map[string]network.Status // by interface
	vfs  map[string]sysfs.VF       // by interface (net1, net2)
}

func upfRound(ctx context.Context, t *testing.T, s *suiteCluster, examples string) {
	c := s.Cluster
	// Whatever an earlier round or test left (the examples' NADs, which ApplyExamples creates).
	if out, err := kubectl(ctx, c, "delete", "-f", examples, "--ignore-not-found", "--wait=true"); err != nil {
		t.Fatalf("deleting the examples: %v %s", err, out)
	}
	pods, err := demo.ApplyExamples(ctx, c, examples, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 2 || pods[0].Spec.NodeName == pods[1].Spec.NodeName {
		t.Fatalf("want the two UPF pods on two nodes, got %d pods", len(pods))
	}
	var upfs []upfPod
	for _, p := range pods {
		upfs = append(upfs, checkUPFPod(ctx, t, c, p))
	}
	for i, from := range upfs {
		to := upfs[1-i]
		for _, ifName := range []string{"net1", "net2", "net3"} {
			dst := to.nets[ifName].IPs[0]
			out, err := kubectl(ctx, c, "exec", from.pod.Name, "--", "ping", "-c", "3", "-W", "2", "-I", ifName, dst)
			if err != nil || !strings.Contains(out, " 0% packet loss") {
				t.Errorf("%s cannot ping %s over %s (%s): %v\n%s", from.pod.Name, to.pod.Name, ifName, dst, err, out)
			}
		}
	}
	t.Logf("%s on %s and %s on %s ping each other over N3 (VF), N6 (VF) and N4 (macvlan)",
		upfs[0].pod.Name, upfs[0].node.Name, upfs[1].pod.Name, upfs[1].node.Name)

	for _, u := range upfs {
		if err := c.Clientset.CoreV1().Pods(u.pod.Namespace).Delete(ctx, u.pod.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := waitGone(ctx, c, podNames(pods)...); err != nil {
		t.Fatal(err)
	}
	// The daemon's IPAM agent writes the DELs it journaled, and gives back what it set aside,
	// within seconds.
	var blocks []v1alpha1.IPBlock
	settle(func() bool {
		blocks = e2eAllBlocks(ctx, t, s)
		for _, u := range upfs {
			for ifName, st := range u.nets {
				if a, err := netip.ParseAddr(st.IPs[0]); ifName != "eth0" && err == nil {
					if _, held := blockHolding(blocks, a); held {
						return false
					}
				}
			}
		}
		return true
	})
	for _, u := range upfs {
		for ifName, vf := range u.vfs {
			checkVFReturned(ctx, t, u.node, vf, ifName)
		}
		for ifName, st := range u.nets {
			if ifName == "eth0" {
				continue
			}
			a, err := netip.ParseAddr(st.IPs[0])
			if err != nil {
				t.Fatal(err)
			}
			if b, held := blockHolding(blocks, a); held {
				t.Errorf("%s's %s address %s is still held in block %s after the pod went", u.pod.Name, ifName, a, b.Name)
			}
		}
	}
}

// checkUPFPod checks one running UPF pod's networks and VFs.
func checkUPFPod(ctx context.Context, t *testing.T, c *cluster.Cluster, p *corev1.Pod) upfPod {
	t.Helper()
	u := upfPod{pod: p, nets: podNetworks(ctx, t, c, p.Name, upfNetworks), vfs: map[string]sysfs.VF{}}
	for _, n := range c.Nodes {
		if n.Name == p.Spec.NodeName {
			u.node = n
		}
	}
	if u.node == nil {
		t.Fatalf("pod %s is on %q, no node of the cluster", p.Name, p.Spec.NodeName)
	}
	env, err := kubectl(ctx, c, "exec", p.Name, "--", "env")
	if err != nil {
		t.Fatalf("pod %s: env: %v", p.Name, err)
	}
	var allocated []string
	for _, l := range strings.Split(env, "\n") {
		if v, ok := strings.CutPrefix(l, "PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE="); ok {
			allocated = strings.Split(strings.TrimSpace(v), ",")
		}
	}
	if len(allocated) != 2 {
		t.Fatalf("pod %s: PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE gives %v, want two VFs", p.Name, allocated)
	}
	listed := podResourceDevices(ctx, t, u.node.HostPath("/var/lib/kubelet/pod-resources/kubelet.sock"), p.Name)
	var inStatus []string
	fs := sysfs.New(u.node.HostPath(cluster.FakeSysfsRoot))
	for _, ifName := range []string{"net1", "net2"} {
		di := u.nets[ifName].DeviceInfo
		if di == nil || di.Pci == nil || di.Pci.PciAddress == "" {
			t.Fatalf("pod %s: network-status %s has no device-info PCI address: %+v", p.Name, ifName, u.nets[ifName])
		}
		inStatus = append(inStatus, di.Pci.PciAddress)
		vf, err := fs.LookupVF(di.Pci.PciAddress)
		if err != nil {
			t.Fatal(err)
		}
		u.vfs[ifName] = vf
		// The VF's netdev left the node for the pod.
		if err := u.node.Command(ctx, "ip", "link", "show", vf.NetName).Run(); err == nil {
			t.Errorf("pod %s: VF %s (%s) is still on node %s", p.Name, vf.Address, vf.NetName, u.node.Name)
		}
		got, err := (pf.Recorder{SysfsRoot: fs.Root}).Get(ctx, pf.PF{Name: vf.PFName, PCI: vf.PFAddress}, vf.Index)
		if err != nil {
			t.Fatal(err)
		}
		if d := pf.Diff(upfVFSettings[ifName], got); d != nil {
			t.Errorf("pod %s: VF %s of %s: PF settings %v", p.Name, vf.Address, ifName, d)
		}
	}
	slices.Sort(allocated)
	slices.Sort(listed)
	slices.Sort(inStatus)
	if !slices.Equal(allocated, inStatus) || !slices.Equal(listed, inStatus) {
		t.Errorf("pod %s: VFs in network-status %v, in PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE %v, in PodResources %v: want the same",
			p.Name, inStatus, allocated, listed)
	}
	t.Logf("pod %s on %s: net1 %s (VF %s), net2 %s (VF %s), net3 %s", p.Name, u.node.Name,
		u.nets["net1"].IPs[0], u.vfs["net1"].Address, u.nets["net2"].IPs[0], u.vfs["net2"].Address, u.nets["net3"].IPs[0])
	return u
}

// checkVFReturned checks that VF vf is back on node n under its name and MAC, and that its PF
// settings are those of a VF nobody used.
func checkVFReturned(ctx context.Context, t *testing.T, n *cluster.Node, vf sysfs.VF, ifName string) {
	t.Helper()
	var want cluster.VF
	for _, v := range n.VFs {
		if v.PCI == vf.Address {
			want = v
		}
	}
	out, err := n.Command(ctx, "ip", "-o", "link", "show", want.Netdev).CombinedOutput()
	if err != nil || !strings.Contains(string(out), want.MAC) {
		t.Errorf("VF %s (%s of the pod) is not back on %s as %s with MAC %s: %v %s", vf.Address, ifName, n.Name, want.Netdev, want.MAC, err, out)
	}
	got, err := (pf.Recorder{SysfsRoot: n.HostPath(cluster.FakeSysfsRoot)}).Get(ctx, pf.PF{Name: vf.PFName, PCI: vf.PFAddress}, vf.Index)
	if err != nil {
		t.Fatal(err)
	}
	if d := pf.Diff(pf.Fresh(), got); d != nil {
		t.Errorf("VF %s (%s of the pod) on %s: PF settings not restored: %v", vf.Address, ifName, n.Name, d)
	}
}

// e2eAllBlocks lists every IPBlock of the cluster.
func e2eAllBlocks(ctx context.Context, t *testing.T, s *suiteCluster) []v1alpha1.IPBlock {
	t.Helper()
	out, err := kubectl(ctx, s.Cluster, "get", "ipblocks.ipam.plexus.io", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list v1alpha1.IPBlockList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("decoding the IPBlocks: %v", err)
	}
	return list.Items
}

// TestVFBackWhenNetnsDies runs plexus-sriov on a sandbox node as the runtime would, then deletes
// the pod's netns before DEL: the node gets the VF's netdev back under its name and MAC (the
// sandbox's emulation of what the kernel does with a real VF), and the late DEL, with its netns
// gone, restores the rest (MTU, PF settings) from plexus-sriov's own record.
func TestVFBackWhenNetnsDies(t *testing.T) {
	s := requireSuite(t)
	s.requireBinary(t, "plexus-sriov")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n := s.Nodes[0]
	vf := n.VFs[len(n.VFs)-1]
	const netns = "e2e-vf-death"
	nodeRun(ctx, t, n, "ip", "netns", "add", netns)
	t.Cleanup(func() { _ = n.Command(context.Background(), "ip", "netns", "del", netns).Run() })
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"vf-death","type":"plexus-sriov","deviceID":%q,"vlan":42,"trust":"on","mac":"02:42:00:00:00:01","mtu":1400}`, vf.PCI)
	call := func(command string) {
		t.Helper()
		cmd := n.Command(ctx, "env", "CNI_COMMAND="+command, "CNI_CONTAINERID=e2e-vf-death", "CNI_NETNS=/run/netns/"+netns,
			"CNI_IFNAME=net1", "CNI_PATH=/opt/cni/bin", "/opt/cni/bin/plexus-sriov")
		cmd.Stdin = strings.NewReader(conf)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("plexus-sriov %s on %s: %v %s", command, n.Name, err, out)
		}
	}
	fs := sysfs.New(n.HostPath(cluster.FakeSysfsRoot))
	sv, err := fs.LookupVF(vf.PCI)
	if err != nil {
		t.Fatal(err)
	}
	rec := pf.Recorder{SysfsRoot: fs.Root}
	call("ADD")
	if out := nodeOutput(ctx, t, n, "ip", "-n", netns, "-o", "link", "show", "net1"); !strings.Contains(out, "02:42:00:00:00:01") || !strings.Contains(out, "mtu 1400") {
		t.Fatalf("net1 in the pod netns: %s", out)
	}
	if got, _ := rec.Get(ctx, pf.PF{Name: sv.PFName, PCI: sv.PFAddress}, sv.Index); got.VLAN == nil || got.VLAN.ID != 42 {
		t.Fatalf("PF settings after ADD: %+v", got)
	}

	nodeRun(ctx, t, n, "ip", "netns", "del", netns)
	deadline := time.Now().Add(20 * time.Second)
	for n.Command(ctx, "ip", "link", "show", vf.Netdev).Run() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("VF %s did not come back to %s as %s within 20s after its netns died", vf.PCI, n.Name, vf.Netdev)
		}
		time.Sleep(100 * time.Millisecond)
	}
	call("DEL")
	if out := nodeOutput(ctx, t, n, "ip", "-o", "link", "show", vf.Netdev); !strings.Contains(out, vf.MAC) || !strings.Contains(out, "mtu 1500") || !strings.Contains(out, ",UP") {
		t.Errorf("VF %s after DEL: %s, want MAC %s, MTU 1500, up", vf.PCI, out, vf.MAC)
	}
	got, err := rec.Get(ctx, pf.PF{Name: sv.PFName, PCI: sv.PFAddress}, sv.Index)
	if err != nil {
		t.Fatal(err)
	}
	if d := pf.Diff(pf.Fresh(), got); d != nil {
		t.Errorf("PF settings after the late DEL: %v", d)
	}
	call("DEL") // twice is fine
}
