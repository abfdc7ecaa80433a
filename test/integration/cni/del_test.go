package cni

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/testutils"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// addTwoNetworks creates macvlan-conf (plexus-ipam) and bridge-conf (host-local), a pod with
// both, and ADDs it; it returns the sandbox once every network holds an address.
func addTwoNetworks(ctx context.Context, t *testing.T, e *env, rt *cniRuntime, name string) *sandbox {
	t.Helper()
	sb := e.newSandbox(ctx, name, "macvlan-conf, bridge-conf")
	if _, err := rt.add(ctx, sb); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if got := e.allocatedTo(ctx, sb.id, 1); len(got) != 1 {
		t.Fatalf("plexus-ipam allocations = %v, want one", got)
	}
	if got := e.hostLocalFiles(sb.id); len(got) != 2 {
		t.Fatalf("host-local reservations = %v, want two (eth0, net2)", got)
	}
	return sb
}

func twoNetworkNADs(ctx context.Context, e *env) {
	master := e.master()
	e.createNAD(ctx, "macvlan-conf", fmt.Sprintf(`{"cniVersion":"1.0.0","type":"macvlan","master":%q,"ipam":%s}`, master, e.ipamConf("10.97.0.0/24")), nil)
	br := "pxb" + e.suffix
	e.cleanupLink(br)
	e.createNAD(ctx, "bridge-conf", fmt.Sprintf(`{"cniVersion":"1.0.0","type":"bridge","bridge":%q,"ipam":%s}`, br, e.hostLocalConf("10.96.0.0/24")), nil)
}

func TestDelAfterNADDeletedAndNetnsGone(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 3*time.Minute)
	twoNetworkNADs(ctx, e)
	e.startDaemon()
	rt := e.runtime()

	t.Run("NAD deleted", func(t *testing.T) {
		sb := addTwoNetworks(ctx, t, e, rt, "pod-nad-gone")
		for _, n := range []string{"macvlan-conf", "bridge-conf"} {
			if err := e.cp.Client.Delete(ctx, &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: n}}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(500 * time.Millisecond) // let the daemon's cache see the deletion
		if err := rt.del(ctx, sb); err != nil {
			t.Fatalf("DEL after the NADs were deleted: %v", err)
		}
		if got := e.allocatedTo(ctx, sb.id, 0); len(got) != 0 {
			t.Errorf("plexus-ipam still holds %v", got)
		}
		if got := e.hostLocalFiles(sb.id); len(got) != 0 {
			t.Errorf("host-local still holds %v", got)
		}
		twoNetworkNADsAgain(ctx, t, e)
	})

	t.Run("netns gone", func(t *testing.T) {
		sb := addTwoNetworks(ctx, t, e, rt, "pod-netns-gone")
		path := sb.ns.Path()
		sb.ns.Close()
		if err := testutils.UnmountNS(sb.ns); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("the netns %s still exists (%v)", path, err)
		}
		if err := rt.del(ctx, sb); err != nil {
			t.Fatalf("DEL with the netns gone: %v", err)
		}
		if got := e.allocatedTo(ctx, sb.id, 0); len(got) != 0 {
			t.Errorf("plexus-ipam still holds %v", got)
		}
		if got := e.hostLocalFiles(sb.id); len(got) != 0 {
			t.Errorf("host-local still holds %v", got)
		}
		if err := rt.del(ctx, sb); err != nil {
			t.Errorf("second DEL: %v", err)
		}
	})

	t.Run("pod object gone", func(t *testing.T) {
		sb := addTwoNetworks(ctx, t, e, rt, "pod-gone")
		if err := e.cp.Client.Delete(ctx, sb.pod); err != nil {
			t.Fatal(err)
		}
		if err := rt.del(ctx, sb); err != nil {
			t.Fatalf("DEL with the pod deleted: %v", err)
		}
		if got := e.allocatedTo(ctx, sb.id, 0); len(got) != 0 {
			t.Errorf("plexus-ipam still holds %v", got)
		}
	})
}

// twoNetworkNADsAgain recreates the NADs deleted by a subtest.
func twoNetworkNADsAgain(ctx context.Context, t *testing.T, e *env) {
	master := "pxm" + e.suffix
	e.createNAD(ctx, "macvlan-conf", fmt.Sprintf(`{"cniVersion":"1.0.0","type":"macvlan","master":%q,"ipam":%s}`, master, e.ipamConf("10.97.0.0/24")), nil)
	e.createNAD(ctx, "bridge-conf", fmt.Sprintf(`{"cniVersion":"1.0.0","type":"bridge","bridge":%q,"ipam":%s}`, "pxb"+e.suffix, e.hostLocalConf("10.96.0.0/24")), nil)
	time.Sleep(500 * time.Millisecond)
}

func TestDelWithAPIServerStopped(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 3*time.Minute)
	br := "pxb" + e.suffix
	e.cleanupLink(br)
	e.createNAD(ctx, "bridge-conf", fmt.Sprintf(`{"cniVersion":"1.0.0","type":"bridge","bridge":%q,"ipam":%s}`, br, e.hostLocalConf("10.96.0.0/24")), nil)
	e.startDaemon()
	rt := e.runtime()
	sb := e.newSandbox(ctx, "pod-api-down", "bridge-conf")
	if _, err := rt.add(ctx, sb); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if got := e.hostLocalFiles(sb.id); len(got) != 2 {
		t.Fatalf("host-local reservations = %v, want two", got)
	}
	// Stop sends SIGTERM and, when the API server takes too long, SIGKILL (and says so).
	if err := e.cp.Env.ControlPlane.APIServer.Stop(); err != nil {
		t.Logf("stopping kube-apiserver: %v", err)
	}
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := e.cp.Client.Get(gctx, keyOf(sb.pod), &corev1.Pod{}); err == nil {
		t.Fatal("the API server still answers after it was stopped")
	}
	if err := rt.del(ctx, sb); err != nil {
		t.Fatalf("DEL with the API server stopped: %v", err)
	}
	if got := e.hostLocalFiles(sb.id); len(got) != 0 {
		t.Errorf("host-local still holds %v", got)
	}
	for _, ifName := range []string{"eth0", "net1"} {
		if _, _, ok := ifaceAddrs(t, sb, ifName); ok {
			t.Errorf("the pod still has %s", ifName)
		}
	}
}

func TestDaemonDownFailsClosed(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 3*time.Minute)
	twoNetworkNADs(ctx, e)
	d := e.startDaemon()
	rt := e.runtime()
	if err := rt.cni.GetStatusNetworkList(ctx, rt.list); err != nil {
		t.Fatalf("STATUS with the daemon running: %v", err)
	}
	d.stop(t)
	if _, err := os.Stat(filepath.Join(e.confDir, "00-plexus.conflist")); err != nil {
		t.Fatalf("the conflist must stay when the daemon stops (fail closed): %v", err)
	}
	sb := e.newSandbox(ctx, "pod-daemon-down", "macvlan-conf, bridge-conf")
	_, err := rt.add(ctx, sb)
	want := fmt.Sprintf("plexus-daemon is not running on node %s (socket %s): check the plexus-daemon DaemonSet", node, filepath.Join(d.socketDir, "plexus.sock"))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("ADD with the daemon stopped = %v, want %q", err, want)
	}
	var ce *types.Error
	if !errors.As(err, &ce) || ce.Code != types.ErrTryAgainLater {
		t.Errorf("ADD error %#v, want CNI code %d (try again later)", err, types.ErrTryAgainLater)
	}
	if _, _, ok := ifaceAddrs(t, sb, "eth0"); ok {
		t.Error("the pod got eth0 while the daemon was down")
	}
	err = rt.cni.GetStatusNetworkList(ctx, rt.list)
	if !errors.As(err, &ce) || ce.Code != types.ErrPluginNotAvailable || !strings.Contains(ce.Msg, "plexus-daemon is not running") {
		t.Errorf("STATUS with the daemon stopped = %v, want code %d saying the daemon is not running", err, types.ErrPluginNotAvailable)
	}
	if err := rt.del(ctx, sb); err == nil {
		t.Error("DEL with the daemon stopped succeeded; it must fail so the runtime retries")
	}

	// Back up, the same pod gets all its networks.
	d = e.startDaemon()
	if _, err := rt.add(ctx, sb); err != nil {
		t.Fatalf("ADD once the daemon is back: %v", err)
	}
	for _, ifName := range []string{"eth0", "net1", "net2"} {
		if _, _, ok := ifaceAddrs(t, sb, ifName); !ok {
			t.Errorf("the pod has no %s once the daemon is back", ifName)
		}
	}

	// Killed (SIGKILL: its socket file stays behind), the shim says the same.
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.exited
	killed := e.newSandbox(ctx, "pod-daemon-killed", "macvlan-conf")
	if _, err := rt.add(ctx, killed); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ADD with the daemon killed = %v, want %q", err, want)
	}
	if _, _, ok := ifaceAddrs(t, killed, "eth0"); ok {
		t.Error("the pod got eth0 while the daemon was killed")
	}
	// Restarted, it still knows the first pod's attachments (the cache is on disk).
	e.startDaemon()
	if err := rt.check(ctx, sb); err != nil {
		t.Errorf("CHECK after the restart: %v", err)
	}
	if err := rt.del(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if got := e.allocatedTo(ctx, sb.id, 0); len(got) != 0 {
		t.Errorf("after DEL across a daemon restart plexus-ipam still holds %v", got)
	}
}

func TestGCRemovesWhatTheRuntimeNoLongerHas(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 3*time.Minute)
	twoNetworkNADs(ctx, e)
	e.startDaemon()
	rt := e.runtime()
	keep := addTwoNetworks(ctx, t, e, rt, "pod-keep")
	stale := addTwoNetworks(ctx, t, e, rt, "pod-stale")

	// A runtime that lost track of pod-stale (its own cache empty) sends GC only.
	gc := libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), nil)
	if err := gc.GCNetworkList(ctx, rt.list, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: keep.id, IfName: "eth0"}}}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if got := e.allocatedTo(ctx, stale.id, 0); len(got) != 0 {
		t.Errorf("after GC plexus-ipam still holds %v for the stale container", got)
	}
	if got := e.hostLocalFiles(stale.id); len(got) != 0 {
		t.Errorf("after GC host-local still holds %v for the stale container", got)
	}
	if _, _, ok := ifaceAddrs(t, stale, "net1"); ok {
		t.Error("after GC the stale pod still has net1")
	}
	if got := e.allocatedTo(ctx, keep.id, 1); len(got) != 1 {
		t.Errorf("GC took the valid container's address: it holds %v", got)
	}
	if err := rt.check(ctx, keep); err != nil {
		t.Errorf("CHECK of the valid container after GC: %v", err)
	}
}

func TestQueueIsBounded(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 3*time.Minute)
	// A delegate that takes 3s, so calls pile up behind one slot.
	slowDir := t.TempDir()
	script := "#!/bin/sh\ncase \"$CNI_COMMAND\" in\nADD) sleep 3; echo '{\"cniVersion\":\"1.0.0\"}';;\n" +
		"VERSION) echo '{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"1.0.0\"]}';;\nesac\nexit 0\n"
	if err := os.WriteFile(filepath.Join(slowDir, "slowcni"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e.pluginDirs = append(e.pluginDirs, slowDir)
	e.createNAD(ctx, "slow-net", `{"cniVersion":"1.0.0","type":"slowcni"}`, nil)
	e.startDaemon("--cni-max-in-flight", "1", "--cni-max-queued", "1")
	rt := e.runtime()
	var sbs []*sandbox
	for i := range 3 {
		sbs = append(sbs, e.newSandbox(ctx, fmt.Sprintf("pod-q-%d", i), "slow-net"))
	}
	errs := make([]error, len(sbs))
	var wg sync.WaitGroup
	for i, sb := range sbs {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = rt.add(ctx, sb) }()
	}
	wg.Wait()
	busy, ok := 0, 0
	for _, err := range errs {
		var ce *types.Error
		switch {
		case err == nil:
			ok++
		case errors.As(err, &ce) && ce.Code == types.ErrTryAgainLater && strings.Contains(ce.Msg, "is busy"):
			busy++
		default:
			t.Errorf("unexpected ADD error: %v", err)
		}
	}
	if ok != 2 || busy != 1 {
		t.Errorf("3 ADDs at once with 1 slot and a queue of 1: %d succeeded, %d refused as busy; want 2 and 1 (%v)", ok, busy, errs)
	}
	for i, sb := range sbs {
		if errs[i] == nil {
			if err := rt.del(ctx, sb); err != nil {
				t.Errorf("DEL: %v", err)
			}
		}
	}
}
