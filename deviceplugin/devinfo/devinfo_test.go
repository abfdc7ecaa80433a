package devinfo_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadutils "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/utils"

	"github.com/plexus-project/plexus/deviceplugin/devinfo"
)

func info(addr string) *nadv1.DeviceInfo {
	return &nadv1.DeviceInfo{Type: nadv1.DeviceInfoTypePCI, Version: nadv1.DeviceInfoVersion,
		Pci: &nadv1.PciDevice{PciAddress: addr, PfPciAddress: "0000:3b:00.0"}}
}

func TestWriteReadListRemove(t *testing.T) {
	s := &devinfo.Store{Dir: t.TempDir() + "/dp"}
	const res = "intel.com/sriov_netdevice"
	for _, id := range []string{"0000:3b:02.0", "0000:3b:02.1"} {
		if err := s.Write(res, id, info(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Write(res, "0000:3b:02.0", info("0000:3b:02.0")); err != nil {
		t.Fatalf("rewriting an existing (read-only) file: %v", err)
	}
	if got := devinfo.FileName(res, "0000:3b:02.0"); got != "intel.com-sriov_netdevice-0000:3b:02.0-device.json" {
		t.Errorf("file name %s", got)
	}
	ids, err := s.List(res)
	if err != nil || len(ids) != 2 {
		t.Fatalf("List = %v, %v", ids, err)
	}
	got, err := s.Read(res, "0000:3b:02.1")
	if err != nil || got.Pci.PciAddress != "0000:3b:02.1" || got.Version != "1.1.0" {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	if err := s.Remove(res, "0000:3b:02.1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(res, "0000:3b:02.1"); err != nil {
		t.Errorf("removing twice: %v", err)
	}
	if ids, _ := s.List(res); len(ids) != 1 {
		t.Errorf("after Remove: %v", ids)
	}
}

// TestReadableByTheNADClient writes to the default directory and reads the file back with the
// NAD client library's own loader (what Multus and CNIs call), proving the layout matches.
func TestReadableByTheNADClient(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("writes to /var/run/k8s.cni.cncf.io/devinfo/dp: needs root")
	}
	s := &devinfo.Store{Dir: devinfo.DefaultDir}
	// Leave the host as it was: remove the directories this test creates (a local cluster may
	// use /var/run/k8s.cni.cncf.io as a mount point it removes when empty).
	var created []string // innermost first
	for dir := devinfo.DefaultDir; dir != "/var/run"; dir = filepath.Dir(dir) {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			created = append(created, dir)
		}
	}
	t.Cleanup(func() {
		for _, dir := range created {
			if err := os.Remove(dir); err != nil {
				t.Errorf("restoring the host: %v", err)
			}
		}
	})
	res := fmt.Sprintf("plexus-test.io/devinfo%d", os.Getpid())
	const id = "0000:3b:02.5"
	if err := s.Write(res, id, info(id)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Remove(res, id) })
	got, err := nadutils.LoadDeviceInfoFromDP(res, id)
	if err != nil {
		t.Fatalf("the NAD client cannot load what Plexus wrote: %v", err)
	}
	if got.Pci == nil || got.Pci.PciAddress != id || got.Pci.PfPciAddress != "0000:3b:00.0" {
		t.Errorf("NAD client read %+v", got)
	}
	if err := nadutils.CleanDeviceInfoForDP(res, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(res, id); !os.IsNotExist(err) {
		t.Errorf("the NAD client's clean left the file: %v", err)
	}
}
