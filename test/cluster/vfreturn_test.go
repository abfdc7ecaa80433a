package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVFReturn runs the VF return emulation in a network namespace playing a node: a VF macvlan
// moved into a pod netns comes back under its name and MAC when that netns is deleted (pinned
// under /run/netns as `ip netns` does, or elsewhere as containerd does), and is not duplicated
// when it came back before its netns died.
func TestVFReturn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	node := tempNetns(t)
	sh(t, "ip", "-n", node, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
	vfs := map[string]string{"ens1f0v0": "02:5f:0f:01:00:00", "ens1f0v1": "02:5f:0f:01:00:01"}
	args := []string{"--net=/run/netns/" + node, "--", "/bin/sh", "-c", vfReturnScript, "vf-return", t.TempDir()}
	for name, mac := range vfs {
		sh(t, "ip", "-n", node, "link", "add", name, "address", mac, "link", "eth0", "type", "macvlan", "mode", "bridge")
		args = append(args, name+"="+mac)
	}
	keeper := exec.Command("nsenter", args...)
	var out strings.Builder
	keeper.Stdout, keeper.Stderr = &out, &out
	if err := keeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = keeper.Process.Kill(); _ = keeper.Wait(); t.Logf("vf-return output:\n%s", out.String()) })
	if err := waitFile(ctx, filepath.Join(args[6], "ready"), 10*time.Second); err != nil {
		t.Fatal(err)
	}

	// Pinned outside /run/netns, as containerd pins a pod's netns.
	podFile := filepath.Join(t.TempDir(), "pod-netns")
	if err := os.WriteFile(podFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, "unshare", "--net="+podFile, "true")
	t.Cleanup(func() { _ = exec.Command("umount", podFile).Run() })
	// Into the pod as plexus-sriov moves it: renamed first, then renamed again in the pod.
	sh(t, "ip", "-n", node, "link", "set", "ens1f0v0", "name", "pxsvtmp")
	sh(t, "ip", "-n", node, "link", "set", "pxsvtmp", "netns", podFile)
	sh(t, "nsenter", "--net="+podFile, "ip", "link", "set", "pxsvtmp", "name", "net1")
	// And one into a named netns, which comes back before that netns dies.
	named := tempNetns(t)
	sh(t, "ip", "-n", node, "link", "set", "ens1f0v1", "netns", named)
	sh(t, "ip", "-n", named, "link", "set", "ens1f0v1", "netns", node)

	if err := exec.Command("umount", podFile).Run(); err != nil {
		t.Fatal(err)
	}
	sh(t, "ip", "netns", "del", named)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := exec.Command("ip", "-n", node, "-o", "link", "show", "ens1f0v0").CombinedOutput()
		if err == nil {
			if !strings.Contains(string(b), vfs["ens1f0v0"]) {
				t.Fatalf("ens1f0v0 came back with another MAC: %s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ens1f0v0 did not come back within 10s after its netns died: %s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	b, _ := exec.Command("ip", "-n", node, "-o", "link", "show", "type", "macvlan").CombinedOutput()
	if n := strings.Count(string(b), "\n"); n != 2 {
		t.Fatalf("the node has %d macvlans, want the 2 VFs:\n%s", n, b)
	}
}

func tempNetns(t *testing.T) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "pxs-vfr-" + hex.EncodeToString(b[:])
	sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	return name
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v %s", args, err, out)
	}
}
