package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	k8sresource "k8s.io/apimachinery/pkg/api/resource"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/deviceplugin/devinfo"
	"github.com/plexus-project/plexus/deviceplugin/kubelettest"
)

// TestDevicesFromPodResources: a network with a resourceName gets the pod's devices from
// kubelet's PodResources API, in order, as top-level deviceID and pciBusID and as the deviceID
// runtime capability; the device-info file goes into network-status.
func TestDevicesFromPodResources(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 3*time.Minute)
	const resource = "example.com/vf"
	kubelet := kubelettest.Start(t, filepath.Join(e.dir, "kubelet"))
	kubelet.SetInUse(map[string][]string{resource: {"0000:af:06.0", "0000:af:06.1"}, "example.com/other": {"0000:3b:00.0"}})
	devDir := filepath.Join(e.dir, "devinfo")
	info := &nadv1.DeviceInfo{Type: nadv1.DeviceInfoTypePCI, Version: nadv1.DeviceInfoVersion, Pci: &nadv1.PciDevice{PciAddress: "0000:af:06.0", PfPciAddress: "0000:af:00.0"}}
	if err := (&devinfo.Store{Dir: devDir}).Write(resource, "0000:af:06.0", info); err != nil {
		t.Fatal(err)
	}

	seen := e.recordingDelegate(ctx, t, "$CNI_IFNAME", resource)
	e.startDaemon("--pod-resources-socket", kubelet.PodResourcesSocket)
	rt := e.runtime()
	// kubelettest reports its devices for pod default/pod.
	sb := e.newSandbox(ctx, "pod", "dev-net, dev-net")
	if _, err := rt.add(ctx, sb); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	for ifName, want := range map[string]string{"net1": "0000:af:06.0", "net2": "0000:af:06.1"} {
		b, err := os.ReadFile(filepath.Join(seen, ifName+".json"))
		if err != nil {
			t.Fatalf("the delegate was not called for %s: %v", ifName, err)
		}
		var got struct {
			DeviceID      string `json:"deviceID"`
			PCIBusID      string `json:"pciBusID"`
			RuntimeConfig struct {
				DeviceID string `json:"deviceID"`
			} `json:"runtimeConfig"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got.DeviceID != want || got.PCIBusID != want || got.RuntimeConfig.DeviceID != want {
			t.Errorf("%s got deviceID %q, pciBusID %q, runtimeConfig.deviceID %q; want %s in all three (config %s)", ifName, got.DeviceID, got.PCIBusID, got.RuntimeConfig.DeviceID, want, b)
		}
	}
	st := e.networkStatus(ctx, sb)
	if len(st) != 3 || st[1].DeviceInfo == nil || st[1].DeviceInfo.Pci == nil || st[1].DeviceInfo.Pci.PciAddress != "0000:af:06.0" {
		t.Errorf("network-status = %s, want net1 with the device-info of 0000:af:06.0", mustJSON(st))
	}
	if err := rt.del(ctx, sb); err != nil {
		t.Fatal(err)
	}
}

// TestDevicesFromDeviceInfoFilesWithoutPodResources: with kubelet's PodResources API not
// answering, a network with a resourceName gets the device whose device-info file no other
// container holds, when that is exactly as many as the pod requested; when the files cannot
// tell (more unattached devices than requested) ADD fails with try-again naming the cause and
// runs no delegate, and succeeds once only the pod's device is left.
func TestDevicesFromDeviceInfoFilesWithoutPodResources(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 3*time.Minute)
	const resource = "example.com/vf"
	files := &devinfo.Store{Dir: filepath.Join(e.dir, "devinfo")}
	write := func(id string) {
		t.Helper()
		if err := files.Write(resource, id, &nadv1.DeviceInfo{Type: nadv1.DeviceInfoTypePCI, Version: nadv1.DeviceInfoVersion, Pci: &nadv1.PciDevice{PciAddress: id}}); err != nil {
			t.Fatal(err)
		}
	}
	seen := e.recordingDelegate(ctx, t, "$CNI_CONTAINERID-$CNI_IFNAME", resource)
	// The harness's --pod-resources-socket names a socket nobody listens on.
	e.startDaemon()
	rt := e.runtime()
	oneVF := func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{resource: k8sresource.MustParse("1")}
	}
	deviceOf := func(sb *sandbox) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(seen, sb.id+"-net1.json"))
		if err != nil {
			t.Fatalf("the delegate was not called for %s: %v", sb.pod.Name, err)
		}
		var got struct {
			DeviceID string `json:"deviceID"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		return got.DeviceID
	}

	write("0000:af:06.0")
	a := e.newSandbox(ctx, "pod-a", "dev-net", oneVF)
	if _, err := rt.add(ctx, a); err != nil {
		t.Fatalf("ADD of pod-a, its device's file the only one: %v", err)
	}
	if got := deviceOf(a); got != "0000:af:06.0" {
		t.Errorf("pod-a got device %q, want 0000:af:06.0", got)
	}
	if st := e.networkStatus(ctx, a); len(st) != 2 || st[1].DeviceInfo == nil || st[1].DeviceInfo.Pci.PciAddress != "0000:af:06.0" {
		t.Errorf("network-status of pod-a = %s, want net1 with the device-info of 0000:af:06.0", mustJSON(st))
	}

	// Two unattached devices for pod-b's one: pod-a's is attached, the others' pods unknown.
	write("0000:af:06.1")
	write("0000:af:06.2")
	b := e.newSandbox(ctx, "pod-b", "dev-net", oneVF)
	_, err := rt.add(ctx, b)
	var ce *types.Error
	if !errors.As(err, &ce) || ce.Code != types.ErrTryAgainLater || !strings.Contains(ce.Msg+ce.Details, "do not name their pod") ||
		!strings.Contains(ce.Msg+ce.Details, "PodResources") {
		t.Fatalf("ADD of pod-b with two candidate devices = %v, want try-again naming PodResources and the ambiguity", err)
	}
	if _, err := os.Stat(filepath.Join(seen, b.id+"-net1.json")); err == nil {
		t.Error("a delegate ran for pod-b although its device was not known")
	}
	// The other pod's device is released (the device plugin removes its file): pod-b's is left.
	if err := files.Remove(resource, "0000:af:06.2"); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.add(ctx, b); err != nil {
		t.Fatalf("ADD of pod-b once its device is the only unattached one: %v", err)
	}
	if got := deviceOf(b); got != "0000:af:06.1" {
		t.Errorf("pod-b got device %q, want 0000:af:06.1", got)
	}
	for _, sb := range []*sandbox{a, b} {
		if err := rt.del(ctx, sb); err != nil {
			t.Errorf("DEL of %s: %v", sb.pod.Name, err)
		}
	}
}

// recordingDelegate installs a delegate, devcni, that writes the config it is given on ADD to
// <dir>/<file>.json (file a shell word such as $CNI_IFNAME) and reports one interface, and
// creates NAD dev-net using it for resource; it returns dir.
func (e *env) recordingDelegate(ctx context.Context, t *testing.T, file, resource string) string {
	t.Helper()
	seen, pluginDir := t.TempDir(), t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\nif [ \"$CNI_COMMAND\" = ADD ]; then cat > %s/%s.json; "+
		"echo '{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"'$CNI_IFNAME'\",\"sandbox\":\"'$CNI_NETNS'\"}]}'; fi\nexit 0\n", seen, file)
	if err := os.WriteFile(filepath.Join(pluginDir, "devcni"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e.pluginDirs = append(e.pluginDirs, pluginDir)
	e.createNAD(ctx, "dev-net", `{"cniVersion":"1.0.0","type":"devcni","capabilities":{"deviceID":true}}`,
		map[string]string{network.ResourceNameAnnotation: resource})
	return seen
}
