package cni

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

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

	// A delegate that records the config it was given and reports an interface.
	seen := t.TempDir()
	pluginDir := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\nif [ \"$CNI_COMMAND\" = ADD ]; then cat > %s/$CNI_IFNAME.json; "+
		"echo '{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"'$CNI_IFNAME'\",\"sandbox\":\"'$CNI_NETNS'\"}]}'; fi\nexit 0\n", seen)
	if err := os.WriteFile(filepath.Join(pluginDir, "devcni"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e.pluginDirs = append(e.pluginDirs, pluginDir)
	e.createNAD(ctx, "dev-net", `{"cniVersion":"1.0.0","type":"devcni","capabilities":{"deviceID":true}}`,
		map[string]string{network.ResourceNameAnnotation: resource})
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
