package deviceplugin_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/plexus-project/plexus/deviceplugin"
	"github.com/plexus-project/plexus/deviceplugin/capacity"
	"github.com/plexus-project/plexus/deviceplugin/sysfs/sysfstest"
	"github.com/plexus-project/plexus/test/controlplane"
)

// TestCapacityAnnotationOnRealAPIServer runs the plugin with a kubeconfig for a real
// kube-apiserver (as a user with only the plugin's chart role) and checks the Node annotation the extender reads, as health and allocations
// change.
func TestCapacityAnnotationOnRealAPIServer(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{})
	ctx := context.Background()
	cp.CreateNode(ctx, t, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "sriov-node"}}, corev1.ResourceList{})
	kubeconfig := pluginIdentity(t, cp).Kubeconfig
	e := startPluginWith(t, func(o *deviceplugin.Options) {
		o.NodeName, o.Kubeconfig = "sriov-node", kubeconfig
	})

	read := func() capacity.NodeCapacity {
		var node corev1.Node
		if err := cp.Client.Get(ctx, clientKey("sriov-node"), &node); err != nil {
			t.Fatal(err)
		}
		nc, _, err := capacity.FromNode(&node)
		if err != nil {
			t.Fatal(err)
		}
		return nc
	}
	waitFor := func(what string, cond func(capacity.NodeCapacity) bool) capacity.NodeCapacity {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			nc := read()
			if nc.Pools != nil && cond(nc) {
				return nc
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: annotation %s never matched; last %+v", what, capacity.Annotation, nc)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	nc := waitFor("initial", func(nc capacity.NodeCapacity) bool { return len(nc.Pools) == 4 })
	wantIB := capacity.PoolCapacity{
		Count: capacity.Count{Healthy: 7, Free: 7},
		NUMA:  map[string]capacity.Count{"1": {Healthy: 7, Free: 7}},
		PFs:   map[string]capacity.PFCount{sysfstest.MellanoxPF: {Count: capacity.Count{Healthy: 7, Free: 7}, Name: "ens2f0", NUMA: 1}},
	}
	if d := cmp.Diff(wantIB, nc.Pools["mellanox.com/ib"]); d != "" {
		t.Errorf("mellanox.com/ib (-want +got):\n%s", d)
	}
	if got := nc.Pools["intel.com/dpdk"]; got.Healthy != 3 || got.NUMA["0"].Healthy != 2 || got.NUMA["1"].Healthy != 1 || len(got.PFs) != 2 {
		t.Errorf("intel.com/dpdk = %+v", got)
	}

	must(t, e.tree.SetOperState("ens2f0", "down"))
	waitFor("PF down", func(nc capacity.NodeCapacity) bool {
		return nc.Pools["mellanox.com/ib"].Healthy == 0 && nc.Pools["intel.com/dpdk"].NUMA["1"].Healthy == 0
	})

	p := e.kubelet.WaitPlugin(t, "intel.com/pf_range", 1, 10*time.Second)
	if _, err := p.Client.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIDs: []string{"0000:3b:02.0", "0000:3b:02.1"}},
	}}); err != nil {
		t.Fatal(err)
	}
	e.kubelet.SetInUse(map[string][]string{"intel.com/pf_range": {"0000:3b:02.0", "0000:3b:02.1"}})
	nc = waitFor("allocated", func(nc capacity.NodeCapacity) bool { return nc.Pools["intel.com/pf_range"].Free == 2 })
	if got := nc.Pools["intel.com/pf_range"]; got.Healthy != 4 || got.PFs[sysfstest.IntelPF].Free != 2 {
		t.Errorf("intel.com/pf_range after allocating 2: %+v", got)
	}
	e.kubelet.SetInUse(nil)
	waitFor("released", func(nc capacity.NodeCapacity) bool { return nc.Pools["intel.com/pf_range"].Free == 4 })
}
