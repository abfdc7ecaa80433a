package attach

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/plexus-project/plexus/cni/cache"
	"github.com/plexus-project/plexus/cni/network"
)

// downPodResources is a PodResources API that does not answer.
type downPodResources struct{}

func (downPodResources) PodDevices(context.Context, string, string, string) ([]string, error) {
	return nil, errors.New("connection refused")
}

// fakeDeviceFiles are device-info files by resource.
type fakeDeviceFiles map[string][]string

func (f fakeDeviceFiles) Read(resource, id string) (*nadv1.DeviceInfo, error) {
	if slices.Contains(f[resource], id) {
		return &nadv1.DeviceInfo{Type: nadv1.DeviceInfoTypePCI, Pci: &nadv1.PciDevice{PciAddress: id}}, nil
	}
	return nil, errors.New("no file")
}

func (f fakeDeviceFiles) List(resource string) ([]string, error) { return f[resource], nil }

func TestDevicesFromFilesWhenPodResourcesFails(t *testing.T) {
	const vf = "intel.com/vf"
	tests := []struct {
		name string
		// files have a device-info file; held are attached to another container already.
		files, held []string
		requested   string
		networks    string
		want        []string // deviceIDs given to net1, net2, ...
		wantErr     string
	}{
		{name: "exactly the pod's", files: []string{"0000:af:06.1", "0000:af:06.0"}, requested: "2", networks: "sriov, sriov",
			want: []string{"0000:af:06.0", "0000:af:06.1"}},
		{name: "others' devices are attached", files: []string{"0000:af:06.0", "0000:af:06.1", "0000:af:06.2"}, held: []string{"0000:af:06.0", "0000:af:06.2"},
			requested: "1", networks: "sriov", want: []string{"0000:af:06.1"}},
		{name: "ambiguous", files: []string{"0000:af:06.0", "0000:af:06.1"}, requested: "1", networks: "sriov",
			wantErr: "the files do not name their pod"},
		{name: "too few files", files: []string{"0000:af:06.0"}, held: []string{"0000:af:06.0"}, requested: "1", networks: "sriov",
			wantErr: "fewer than the 1 pod ns1/p requested"},
		{name: "nothing requested", files: []string{"0000:af:06.0"}, networks: "sriov", wantErr: "kubelet allocated none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, map[string]string{network.NetworksAnnotation: tt.networks})
			f.a.host.Devices = downPodResources{}
			f.a.host.DeviceInfos = fakeDeviceFiles{vf: tt.files}
			if tt.requested != "" {
				f.api.pods["ns1/p"].Spec.Containers = []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
					Limits: corev1.ResourceList{vf: resource.MustParse(tt.requested)}}}}
			}
			for i, id := range tt.held {
				if err := f.store.Put(&cache.Entry{ContainerID: "other" + string(rune('a'+i)), IfName: "eth0",
					Attachments: []cache.Attachment{{Network: "ns1/sriov", IfName: "net1", Resource: vf, DeviceID: id}}}); err != nil {
					t.Fatal(err)
				}
			}
			_, err := f.a.Add(context.Background(), addCall("c1"))
			if tt.wantErr != "" {
				var ce *types.Error
				if !errors.As(err, &ce) || !strings.Contains(ce.Msg+" "+ce.Details, tt.wantErr) {
					t.Fatalf("Add = %v, want a CNI error saying %q", err, tt.wantErr)
				}
				if len(f.dels.ops("ADD")) != 0 {
					t.Errorf("delegates ran: %v", f.dels.calls)
				}
				return
			}
			if err != nil {
				t.Fatalf("Add: %v", err)
			}
			entry, _ := f.store.Get("c1")
			var got []string
			for _, att := range entry.Attachments[1:] {
				got = append(got, att.DeviceID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("devices given = %v, want %v", got, tt.want)
			}
			if st := f.api.statuses[0]; st[1].DeviceInfo == nil || st[1].DeviceInfo.Pci.PciAddress != tt.want[0] {
				t.Errorf("network-status of net1 = %+v, want the device-info of %s", st[1], tt.want[0])
			}
		})
	}
}
