package e2e

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	podresourcesapi "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/plexus-project/plexus/deviceplugin/capacity"
	"github.com/plexus-project/plexus/deviceplugin/devinfo"
	"github.com/plexus-project/plexus/test/cluster"
	"github.com/plexus-project/plexus/test/cluster/demo"
)

const sriovResource = "intel.com/sriov_netdevice"

// TestDevicePlugin runs plexus-deviceplugin as a DaemonSet on a cluster of real kubelets whose
// nodes have emulated VFs: each node's allocatable shows the pool, a pod limiting 2 VFs runs
// with PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE holding two of the node's VF addresses, kubelet's
// PodResources API lists those two devices for the pod, the device-info files exist (and go
// when the pod goes), and the Node carries the capacity annotation.
func TestDevicePlugin(t *testing.T) {
	s := requireSuite(t)
	s.requireBinary(t, "plexus-deviceplugin")
	c := s.Cluster
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// An earlier test's device plugin (TestCNI installs one) may have gone moments ago: until
	// kubelet has marked its devices unhealthy, allocatable still shows them, and a pod
	// admitted on that stale count fails with UnexpectedAdmissionError before the new plugin
	// registers. Start from a node status that no longer counts the old plugin's devices.
	waitAllocatable(ctx, t, c, 0)
	// The chart installs it (its DaemonSet, configuration and ServiceAccount with the chart's
	// rules, nothing more); demo.Install returns once every node advertises the VFs.
	start := time.Now()
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := kubectl(context.Background(), c, "-n", demo.PlexusNamespace, "logs", "-l", "app.kubernetes.io/component=deviceplugin", "--prefix", "--tail=80")
			t.Logf("device plugin log:\n%s", out)
		}
		if err := demo.Uninstall(context.Background(), c, "plexus-deviceplugin"); err != nil {
			t.Errorf("removing the device plugin: %v", err)
		}
	})
	if err := demo.Install(ctx, c, "plexus-deviceplugin"); err != nil {
		t.Fatal(err)
	}

	// Every node's allocatable shows the pool with all its VFs.
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, n := range c.Nodes {
			node, err := c.Clientset.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			q := node.Status.Allocatable[sriovResource]
			if q.Value() != int64(len(n.VFs)) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("allocatable %s never reached the emulated VF count on every node: %v", sriovResource, err)
	}
	t.Logf("every node's allocatable shows %s (%d VFs each) %s after helm installed the device plugin", sriovResource, len(c.Nodes[0].VFs), time.Since(start).Round(time.Millisecond))

	// A pod limiting two VFs runs and sees their PCI addresses.
	n := c.Nodes[0]
	pod := busyboxPod("sriov-two-vfs", n.Name)
	two := resource.MustParse("2")
	pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{sriovResource: two}, Limits: corev1.ResourceList{sriovResource: two}}
	if _, err := c.Clientset.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := waitRunning(ctx, c, 2*time.Minute, pod.Name); err != nil {
		t.Fatal(err)
	}
	env, err := kubectl(ctx, c, "exec", pod.Name, "--", "env")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var info string
	for _, line := range strings.Split(env, "\n") {
		if v, ok := strings.CutPrefix(line, "PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE="); ok {
			got = strings.Split(strings.TrimSpace(v), ",")
		}
		if v, ok := strings.CutPrefix(line, "PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE_INFO="); ok {
			info = v
		}
	}
	var nodeVFs []string
	for _, vf := range n.VFs {
		nodeVFs = append(nodeVFs, vf.PCI)
	}
	if len(got) != 2 || !slices.Contains(nodeVFs, got[0]) || !slices.Contains(nodeVFs, got[1]) || got[0] == got[1] {
		t.Fatalf("PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE = %v, want two of %v; env:\n%s", got, nodeVFs, env)
	}
	var infoMap map[string]map[string]map[string]string
	if err := json.Unmarshal([]byte(info), &infoMap); err != nil || infoMap[got[0]]["generic"]["deviceID"] != got[0] {
		t.Errorf("PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE_INFO = %q (%v)", info, err)
	}
	t.Logf("pod %s on %s got VFs %v", pod.Name, n.Name, got)
	// kubelet asked GetPreferredAllocation: both VFs on one NUMA node (each emulated NUMA node
	// has one PF here, so they cannot also be on two PFs).
	numa := map[string]int{}
	for _, vf := range n.VFs {
		numa[vf.PCI] = vf.NUMANode
	}
	if numa[got[0]] != numa[got[1]] {
		t.Errorf("VFs %v are on NUMA nodes %d and %d; the preferred allocation keeps them on one", got, numa[got[0]], numa[got[1]])
	}

	// Kubelet's PodResources API lists those two devices for the pod.
	listed := podResourceDevices(ctx, t, n.HostPath("/var/lib/kubelet/pod-resources/kubelet.sock"), pod.Name)
	slices.Sort(listed)
	want := slices.Clone(got)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("PodResources lists %v for %s, want %v", listed, pod.Name, want)
	}

	// The device-info files exist, with the PCI and PF addresses.
	store := devinfo.Store{Dir: n.HostPath("/run/k8s.cni.cncf.io/devinfo/dp")}
	for _, id := range got {
		di, err := store.Read(sriovResource, id)
		if err != nil {
			t.Errorf("device-info file of %s: %v", id, err)
			continue
		}
		if di.Pci == nil || di.Pci.PciAddress != id || di.Pci.PfPciAddress == "" || di.Version != "1.1.0" {
			t.Errorf("device-info of %s = %+v", id, di)
		}
	}

	// The Node carries the capacity annotation the extender reads.
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		node, err := c.Clientset.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		nc, ok, err := capacity.FromNode(node)
		if !ok || err != nil {
			return false, nil
		}
		p := nc.Pools[sriovResource]
		return p.Healthy == len(n.VFs) && p.Free == len(n.VFs)-2 && len(p.NUMA) == 2 && len(p.PFs) == 2, nil
	})
	if err != nil {
		t.Errorf("capacity annotation %s on %s never showed %d healthy, %d free VFs on 2 NUMA nodes and 2 PFs: %v", capacity.Annotation, n.Name, len(n.VFs), len(n.VFs)-2, err)
	}

	// Deleting the pod releases the devices: their device-info files go.
	if err := c.Clientset.CoreV1().Pods("default").Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		for _, id := range got {
			if _, err := os.Stat(store.Path(sriovResource, id)); err == nil {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Errorf("device-info files of %v still there after the pod was deleted: %v", got, err)
	}
}

// podResourceDevices asks a node's kubelet (through its PodResources socket, seen from the
// host) which devices of sriovResource the pod holds.
func podResourceDevices(ctx context.Context, t *testing.T, socket, pod string) []string {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := podresourcesapi.NewPodResourcesListerClient(conn).List(ctx, &podresourcesapi.ListPodResourcesRequest{})
	if err != nil {
		t.Fatalf("PodResources List at %s: %v", socket, err)
	}
	var ids []string
	for _, p := range resp.PodResources {
		if p.Name != pod {
			continue
		}
		for _, ctr := range p.Containers {
			for _, d := range ctr.Devices {
				if d.ResourceName == sriovResource {
					ids = append(ids, d.DeviceIds...)
				}
			}
		}
	}
	return ids
}

// waitAllocatable waits until no node's allocatable counts more than max VFs of sriovResource.
func waitAllocatable(ctx context.Context, t *testing.T, c *cluster.Cluster, max int64) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, n := range c.Nodes {
			node, err := c.Clientset.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			if q := node.Status.Allocatable[sriovResource]; q.Value() > max {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("a device plugin that is gone still counts in allocatable %s: %v", sriovResource, err)
	}
}
