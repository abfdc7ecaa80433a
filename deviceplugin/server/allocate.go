package server

import (
	"encoding/json"
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
	resp := &pluginapi.ContainerAllocateResponse{Envs: map[string]string{}}
	ids := make([]string, len(devs))
	info := make(map[string]map[string]map[string]string, len(devs))
	specs := map[string]bool{}
	addSpec := func(path string) {
		if !specs[path] {
			specs[path] = true
			resp.Devices = append(resp.Devices, &pluginapi.DeviceSpec{HostPath: path, ContainerPath: path, Permissions: "rw"})
		}
	}
	vhost := cfg.NeedVhostNet()
	for i, vf := range devs {
		ids[i] = vf.Address
		entry := map[string]map[string]string{"generic": {"deviceID": vf.Address}}
		if vf.Driver == sysfs.VFIODriver {
			addSpec(VFIOContainerDev)
			vfio := map[string]string{"mount": VFIOContainerDev}
			if vf.VFIOGroup != "" {
				dev := "/dev/vfio/" + vf.VFIOGroup
				addSpec(dev)
				vfio["dev-mount"] = dev
			}
			entry["vfio"] = vfio
		}
		if vhost {
			addSpec(VhostNetDev)
			addSpec(TunDev)
			entry["vhost"] = map[string]string{"net-mount": VhostNetDev, "tun-mount": TunDev}
		}
		if vf.RDMA && (cfg.IsRdma || anyRdma(cfg)) {
			rdma := map[string]string{"rdma_cm": RDMACMDev}
			addSpec(RDMACMDev)
			for _, d := range vf.RDMADevices {
				p := "/dev/infiniband/" + d
				addSpec(p)
				if strings.HasPrefix(d, "uverbs") {
					rdma["uverbs"] = p
				}
			}
			entry["rdma"] = rdma
		}
		if extra := additionalInfo(cfg, vf.Address); len(extra) > 0 {
			entry["extra"] = extra
		}
		info[vf.Address] = entry
	}
	b, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	name := EnvName(resource)
	resp.Envs[name] = strings.Join(ids, ",")
	resp.Envs[name+"_INFO"] = string(b)
	return resp, nil
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
