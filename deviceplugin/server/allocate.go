package server

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/plexus-project/plexus/deviceplugin/config"
	"github.com/plexus-project/plexus/deviceplugin/sysfs"
)

// Device paths a container gets besides the VF's own.
const (
	VFIOContainerDev = "/dev/vfio/vfio"
	VhostNetDev      = "/dev/vhost-net"
	TunDev           = "/dev/net/tun"
	RDMACMDev        = "/dev/infiniband/rdma_cm"
)

// EnvName is the variable holding the allocated PCI addresses of resource, as upstream names
// it: "PCIDEVICE_" + the resource name in upper case with every other character as "_"
// (intel.com/sriov_netdevice -> PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE). The _INFO variable is
// EnvName + "_INFO".
func EnvName(resource string) string {
	var b strings.Builder
	b.WriteString("PCIDEVICE_")
	for _, r := range strings.ToUpper(resource) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// ContainerResponse is the Allocate answer for one container given devs of the pool cfg.
func ContainerResponse(cfg *config.ResourceConfig, resource string, devs []*sysfs.VF) (*pluginapi.ContainerAllocateResponse, error) {
	resp := &pluginapi.ContainerAllocateResponse{Envs: make(map[string]string, 2)}
	var specs []string
	addSpec := func(path string) {
		if !slices.Contains(specs, path) {
			specs = append(specs, path)
			resp.Devices = append(resp.Devices, &pluginapi.DeviceSpec{HostPath: path, ContainerPath: path, Permissions: "rw"})
		}
	}
	vhost := cfg.NeedVhostNet()
	rdmaWanted := cfg.IsRdma || anyRdma(cfg)
	var ids, info strings.Builder
	sorted := slices.Clone(devs)
	slices.SortFunc(sorted, func(a, b *sysfs.VF) int { return strings.Compare(a.Address, b.Address) })
	info.WriteByte('{')
	for i, vf := range sorted {
		if i > 0 {
			info.WriteByte(',')
		}
		// Providers and their keys in sorted order, as encoding/json writes maps (upstream's
		// format), without building the maps.
		writeString(&info, vf.Address)
		info.WriteString(":{")
		first := true
		provider := func(name string, kv ...string) {
			if !first {
				info.WriteByte(',')
			}
			first = false
			writeString(&info, name)
			info.WriteString(":{")
			for k := 0; k < len(kv); k += 2 {
				if k > 0 {
					info.WriteByte(',')
				}
				writeString(&info, kv[k])
				info.WriteByte(':')
				writeString(&info, kv[k+1])
			}
			info.WriteByte('}')
		}
		if extra := additionalInfo(cfg, vf.Address); len(extra) > 0 {
			keys := slices.Sorted(maps.Keys(extra))
			kv := make([]string, 0, 2*len(keys))
			for _, k := range keys {
				kv = append(kv, k, extra[k])
			}
			provider("extra", kv...)
		}
		provider("generic", "deviceID", vf.Address)
		if vf.RDMA && rdmaWanted {
			addSpec(RDMACMDev)
			kv := []string{"rdma_cm", RDMACMDev}
			for _, d := range vf.RDMADevices {
				p := "/dev/infiniband/" + d
				addSpec(p)
				if strings.HasPrefix(d, "uverbs") && len(kv) == 2 {
					kv = append(kv, "uverbs", p)
				}
			}
			provider("rdma", kv...)
		}
		if vf.Driver == sysfs.VFIODriver {
			addSpec(VFIOContainerDev)
			if vf.VFIOGroup != "" {
				dev := "/dev/vfio/" + vf.VFIOGroup
				addSpec(dev)
				provider("vfio", "dev-mount", dev, "mount", VFIOContainerDev)
			} else {
				provider("vfio", "mount", VFIOContainerDev)
			}
		}
		if vhost {
			addSpec(VhostNetDev)
			addSpec(TunDev)
			provider("vhost", "net-mount", VhostNetDev, "tun-mount", TunDev)
		}
		info.WriteByte('}')
	}
	info.WriteByte('}')
	for i, vf := range devs {
		if i > 0 {
			ids.WriteByte(',')
		}
		ids.WriteString(vf.Address)
	}
	name := EnvName(resource)
	resp.Envs[name] = ids.String()
	resp.Envs[name+"_INFO"] = info.String()
	return resp, nil
}

// writeString writes s as a JSON string the way encoding/json does (which also escapes <, >
// and &); plain strings, the usual case, are copied as they are.
func writeString(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			b.Write(q)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}

func anyRdma(cfg *config.ResourceConfig) bool {
	for _, s := range cfg.Selectors.Items {
		if s.IsRdma {
			return true
		}
	}
	return false
}

func additionalInfo(cfg *config.ResourceConfig, addr string) map[string]string {
	out := map[string]string{}
	for _, key := range []string{"*", addr} {
		for k, v := range cfg.AdditionalInfo[key] {
			out[k] = v
		}
	}
	return out
}

// DeviceInfo is the device-info file content for vf.
func DeviceInfo(cfg *config.ResourceConfig, vf *sysfs.VF) *nadv1.DeviceInfo {
	pci := &nadv1.PciDevice{PciAddress: vf.Address, PfPciAddress: vf.PFAddress}
	if cfg.NeedVhostNet() {
		pci.Vhostnet = VhostNetDev
	}
	if vf.RDMA && len(vf.RDMADevices) > 0 {
		pci.RdmaDevice = vf.RDMADevices[0]
	}
	return &nadv1.DeviceInfo{Type: nadv1.DeviceInfoTypePCI, Version: nadv1.DeviceInfoVersion, Pci: pci}
}
