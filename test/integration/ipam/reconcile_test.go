package ipam

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// reclaimBound is the bound on how long a leaked address may stay allocated.
const reclaimBound = 60 * time.Second

func (e *env) createPod(ctx context.Context, t *testing.T, name, node string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if err := e.cp.Client.Create(ctx, p); err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
	return p
}

func (e *env) deletePod(ctx context.Context, t *testing.T, p *corev1.Pod) {
	t.Helper()
	if err := e.cp.Client.Delete(ctx, p, client.GracePeriodSeconds(0)); err != nil {
		t.Fatalf("deleting pod %s: %v", p.Name, err)
	}
}

// createStaticPod creates the mirror pod of a static pod, as the kubelet does: its own API UID,
// and the kubelet's UID of the pod (what the runtime passes as K8S_POD_UID) in its
// kubernetes.io/config.mirror annotation.
func (e *env) createStaticPod(ctx context.Context, t *testing.T, name, node, kubeletUID string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: map[string]string{
			corev1.MirrorPodAnnotationKey: kubeletUID, "kubernetes.io/config.source": "file", "kubernetes.io/config.hash": kubeletUID}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if err := e.cp.Client.Create(ctx, p); err != nil {
		t.Fatalf("creating mirror pod %s: %v", name, err)
	}
	if string(p.UID) == kubeletUID {
		t.Fatalf("mirror pod %s got the kubelet's UID as its API UID", name)
	}
	return p
}

// kubeletUID is the K8S_POD_UID the runtime passes for p: a mirror pod's annotation, else its UID.
func kubeletUID(p *corev1.Pod) string {
	if uid := p.Annotations[corev1.MirrorPodAnnotationKey]; uid != "" {
		return uid
	}
	return string(p.UID)
}

// addFor runs ADD for a pod's sandbox on its node.
func (e *env) addFor(ctx context.Context, t *testing.T, p *corev1.Pod, containerID string, ipam map[string]any) netip.Addr {
	t.Helper()
	ipam["node_name"] = p.Spec.NodeName
	r, err := call{Command: "ADD", ContainerID: containerID, Args: podArgs(p.Namespace, p.Name, kubeletUID(p)), Conf: e.netconf(t, ipam, nil)}.run(ctx)
	if err != nil {
		t.Fatalf("ADD for pod %s: %v", p.Name, err)
	}
	return addrOf(t, r)
}

// waitFreed polls until the sandbox no longer holds addr, within reclaimBound. (The address
// itself may be handed to another pod right away.)
func waitFreed(ctx context.Context, t *testing.T, e *env, addr netip.Addr, sandbox string, since time.Time) time.Duration {
	t.Helper()
	for time.Since(since) < reclaimBound {
		if al, held := allocations(ctx, t, e.cp.Client)[addr]; !held || al.ContainerID != sandbox {
			return time.Since(since)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s still allocated to %s %s after its pod went away", addr, sandbox, reclaimBound)
	return 0
}

func TestReconcilerFreesLeaksNeverLivePods(t *testing.T) {
	e := start(t)
	ctx := ctxT(t, 5*time.Minute)
	for _, n := range []string{"node-a", "node-b"} {
		e.cp.CreateNode(ctx, t, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, corev1.ResourceList{})
	}
	e.startController(t)
	ipam := func() map[string]any { return map[string]any{"range": "10.6.0.0/24"} }

	live := e.createPod(ctx, t, "live", "node-a")
	liveAddr := e.addFor(ctx, t, live, "sandbox-live", ipam())

	// Static pods: K8S_POD_UID is the kubelet's UID (the mirror pod's kubernetes.io/config.mirror
	// annotation), not the mirror pod's API UID. A live static pod keeps its address; a static pod
	// whose manifest changed (a new kubelet UID, same mirror name) frees the old sandbox's.
	static := e.createStaticPod(ctx, t, "etcd-node-a", "node-a", "0f3c2b9e4d1a")
	staticAddr := e.addFor(ctx, t, static, "sandbox-static", ipam())
	changed := e.createStaticPod(ctx, t, "web-node-a", "node-a", "7a1b2c3d4e5f")
	before := changed.DeepCopy()
	before.Annotations[corev1.MirrorPodAnnotationKey] = "11aa22bb33cc" // the manifest's previous version
	changedAddr := e.addFor(ctx, t, before, "sandbox-static-old", ipam())

	// Pod deleted without a DEL (force delete, crashed runtime): freed.
	gone := e.createPod(ctx, t, "gone", "node-a")
	goneAddr := e.addFor(ctx, t, gone, "sandbox-gone", ipam())

	// StatefulSet: web-0 is deleted without a DEL and re-created under the same name with a new
	// UID; the new pod gets an address. The old address is freed, the new pod's never is.
	web0 := e.createPod(ctx, t, "web-0", "node-a")
	oldWebAddr := e.addFor(ctx, t, web0, "sandbox-web0-old", ipam())

	// A node that is gone: its pod is deleted too (the pod GC's job) and its block goes away.
	lost := e.createPod(ctx, t, "on-lost-node", "node-b")
	lostAddr := e.addFor(ctx, t, lost, "sandbox-lost", ipam())

	begin := time.Now()
	e.deletePod(ctx, t, gone)
	e.deletePod(ctx, t, web0)
	web0new := e.createPod(ctx, t, "web-0", "node-a")
	newWebAddr := e.addFor(ctx, t, web0new, "sandbox-web0-new", ipam())
	if err := e.cp.Client.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}}); err != nil {
		t.Fatal(err)
	}
	e.deletePod(ctx, t, lost)

	t.Logf("pod gone: %s freed after %s", goneAddr, waitFreed(ctx, t, e, goneAddr, "sandbox-gone", begin).Round(time.Millisecond))
	t.Logf("StatefulSet pod re-created (new UID): old %s freed after %s", oldWebAddr, waitFreed(ctx, t, e, oldWebAddr, "sandbox-web0-old", begin).Round(time.Millisecond))
	t.Logf("static pod changed (new kubelet UID): old %s freed after %s", changedAddr, waitFreed(ctx, t, e, changedAddr, "sandbox-static-old", begin).Round(time.Millisecond))
	t.Logf("node gone: %s freed after %s", lostAddr, waitFreed(ctx, t, e, lostAddr, "sandbox-lost", begin).Round(time.Millisecond))
	for time.Since(begin) < reclaimBound {
		blocks := blocks2(ctx, t, e)
		onB := 0
		for _, b := range blocks {
			if b.Spec.Node == "node-b" {
				onB++
			}
		}
		if onB == 0 {
			t.Logf("node gone: its blocks deleted after %s", time.Since(begin).Round(time.Millisecond))
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Watch a full reclaim interval more: the live pods keep their addresses.
	time.Sleep(16 * time.Second)
	held := allocations(ctx, t, e.cp.Client)
	for name, a := range map[string]netip.Addr{"live": liveAddr, "web-0 (new UID)": newWebAddr, "static etcd-node-a": staticAddr} {
		al, ok := held[a]
		if !ok {
			t.Fatalf("the address %s of live pod %s was freed", a, name)
		}
		if name == "static etcd-node-a" && (al.ContainerID != "sandbox-static" || al.PodUID != kubeletUID(static)) {
			t.Fatalf("the static pod's address is held by %+v", al)
		}
		if name == "web-0 (new UID)" && al.PodUID != string(web0new.UID) {
			t.Fatalf("web-0's address is held by UID %s, want %s", al.PodUID, web0new.UID)
		}
	}
	for _, b := range blocks2(ctx, t, e) {
		if b.Spec.Node == "node-b" {
			t.Fatalf("block %s of the gone node is still there", b.Name)
		}
	}

	// Pool status counts, as kubectl shows them.
	var pools v1alpha1.IPPoolList
	if err := e.cp.Client.List(ctx, &pools); err != nil || len(pools.Items) != 1 {
		t.Fatalf("pools: %v %v", pools.Items, err)
	}
	if st := pools.Items[0].Status; st.Size != "254" || st.Used != "3" || st.Free != "251" {
		t.Fatalf("pool status %+v, want size 254 used 3 free 251", st)
	}
	if out, err := exec.Command(e.cp.BinDir+"/kubectl", "--kubeconfig", e.cp.Kubeconfig(t, "admin"), "get", "ippools,ipblocks").CombinedOutput(); err == nil {
		t.Logf("kubectl get ippools,ipblocks:\n%s", out)
		if !strings.Contains(string(out), "USED") || !strings.Contains(string(out), "251") {
			t.Errorf("kubectl columns missing: %s", out)
		}
	} else {
		t.Logf("kubectl: %v %s", err, out)
	}
}

func TestStickyStatefulSetAddress(t *testing.T) {
	e := start(t)
	ctx := ctxT(t, 3*time.Minute)
	e.cp.CreateNode(ctx, t, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, corev1.ResourceList{})
	e.cp.CreateNode(ctx, t, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}}, corev1.ResourceList{})
	e.startController(t)
	sticky := func(ttl string) map[string]any {
		return map[string]any{"range": "10.7.0.0/24", "sticky_ips": true, "sticky_ttl": ttl}
	}
	// Fill a few addresses so the sticky one is not simply the lowest free.
	for i := 0; i < 3; i++ {
		p := e.createPod(ctx, t, fmt.Sprintf("filler-%d", i), "node-a")
		e.addFor(ctx, t, p, fmt.Sprintf("sandbox-filler-%d", i), sticky("1m"))
	}
	db0 := e.createPod(ctx, t, "db-0", "node-a")
	first := e.addFor(ctx, t, db0, "sandbox-db0-1", sticky("1m"))
	// Normal StatefulSet restart: DEL, pod deleted, re-created with a new UID on another node.
	if _, err := (call{Command: "DEL", ContainerID: "sandbox-db0-1", Args: podArgs("default", "db-0", string(db0.UID)), Conf: e.netconf(t, sticky("1m"), nil)}).run(ctx); err != nil {
		t.Fatal(err)
	}
	e.deletePod(ctx, t, db0)
	other := e.createPod(ctx, t, "other", "node-a")
	otherAddr := e.addFor(ctx, t, other, "sandbox-other", sticky("1m"))
	if otherAddr == first {
		t.Fatalf("another pod got db-0's reserved address %s", first)
	}
	time.Sleep(2 * time.Second) // the reconciler runs meanwhile; the reservation must survive
	db0 = e.createPod(ctx, t, "db-0", "node-b")
	if again := e.addFor(ctx, t, db0, "sandbox-db0-2", sticky("1m")); again != first {
		t.Fatalf("re-created db-0 got %s, want its address %s back", again, first)
	}
	t.Logf("db-0 got %s back after being re-created with a new UID on another node", first)

	// A reservation whose pod never comes back is freed after its TTL.
	db1 := e.createPod(ctx, t, "db-1", "node-a")
	addr1 := e.addFor(ctx, t, db1, "sandbox-db1", sticky("2s"))
	if _, err := (call{Command: "DEL", ContainerID: "sandbox-db1", Args: podArgs("default", "db-1", string(db1.UID)), Conf: e.netconf(t, sticky("2s"), nil)}).run(ctx); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	e.deletePod(ctx, t, db1)
	t.Logf("expired reservation of db-1 (%s) freed after %s", addr1, waitFreed(ctx, t, e, addr1, "", begin).Round(time.Millisecond))
}

var _ = types.UID("")
