package deviceplugin

import (
	"errors"
	"os"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/plexus-project/plexus/deviceplugin/devinfo"
)

const res, vf = "intel.com/sriov", "0000:3b:02.0"

func newAllocations() *allocations {
	return &allocations{m: map[string]map[string]time.Time{}, owner: map[string]string{}}
}

func writeInfo(t *testing.T, store *devinfo.Store) {
	t.Helper()
	if err := store.Write(res, vf, &nadv1.DeviceInfo{Type: "pci", Version: "1.1.0", Pci: &nadv1.PciDevice{PciAddress: vf}}); err != nil {
		t.Fatal(err)
	}
}

// TestReleaseKeepsAReallocatedDevice: kubelet allocates the VF to a new pod after the release
// listed the old allocation (and after PodResources answered without it): the release must
// leave the new pod's record and device-info file alone.
func TestReleaseKeepsAReallocatedDevice(t *testing.T) {
	store := &devinfo.Store{Dir: t.TempDir()}
	a := newAllocations()
	a.add(res, []string{vf})
	writeInfo(t, store)
	candidates := a.expired(time.Now().Add(time.Second)) // the old pod's allocation, expired
	if len(candidates) != 1 {
		t.Fatalf("expired = %v", candidates)
	}

	a.add(res, []string{vf}) // kubelet's Allocate for the new pod: recorded, then the file written
	writeInfo(t, store)

	released, err := a.release(candidates[0], func() error { return store.Remove(res, vf) })
	if err != nil || released {
		t.Fatalf("release = %v, %v; want the re-allocated device kept", released, err)
	}
	if !a.has(vf) {
		t.Error("the new allocation's record is gone")
	}
	if _, err := store.Read(res, vf); err != nil {
		t.Errorf("the new pod's device-info file is gone: %v", err)
	}
}

func TestReleaseFreesAnUnchangedAllocation(t *testing.T) {
	store := &devinfo.Store{Dir: t.TempDir()}
	a := newAllocations()
	a.add(res, []string{vf})
	writeInfo(t, store)
	d := a.expired(time.Now().Add(time.Second))[0]
	if released, err := a.release(d, func() error { return store.Remove(res, vf) }); err != nil || !released {
		t.Fatalf("release = %v, %v", released, err)
	}
	if a.has(vf) {
		t.Error("record kept")
	}
	if _, err := store.Read(res, vf); !os.IsNotExist(err) {
		t.Errorf("file kept: %v", err)
	}
	// A failed removal keeps the record, to be retried.
	a.add(res, []string{vf})
	d = a.expired(time.Now().Add(time.Second))[0]
	if released, err := a.release(d, func() error { return errors.New("read-only file system") }); err == nil || released {
		t.Fatalf("release = %v, %v; want the error", released, err)
	}
	if !a.has(vf) {
		t.Error("record dropped although the file could not be removed")
	}
}
