package pool

import (
	"context"
	"slices"
	"strings"

	"github.com/go-logr/logr"

	"github.com/plexus-project/plexus/deviceplugin/config"
	"github.com/plexus-project/plexus/deviceplugin/sysfs"
)

// Pool is one resource of the node: its configuration and the VFs it owns.
type Pool struct {
	// Name is the full resource name, e.g. intel.com/sriov_netdevice.
	Name string
	// Config is the resourceList entry.
	Config config.ResourceConfig
	// Devices are the VFs of the pool, ordered by PCI address.
	Devices []sysfs.VF
}

// IDs returns the device IDs (PCI addresses) of the pool.
func (p *Pool) IDs() []string {
	ids := make([]string, len(p.Devices))
	for i := range p.Devices {
		ids[i] = p.Devices[i].Address
	}
	return ids
}

// Build returns one pool per resourceList entry, in the order of the file, each with the VFs
// that match it and no earlier entry. Conflicts are logged through the context's logger.
func Build(ctx context.Context, cfg *config.Config, defaultPrefix string, pfs []sysfs.PF) []Pool {
	log := logr.FromContextOrDiscard(ctx)
	pools := make([]Pool, len(cfg.ResourceList))
	for i := range cfg.ResourceList {
		pools[i] = Pool{Name: cfg.ResourceList[i].FullName(defaultPrefix), Config: cfg.ResourceList[i]}
	}
	for p := range pfs {
		for v := range pfs[p].VFs {
			vf := &pfs[p].VFs[v]
			owner := -1
			for i := range pools {
				if !Matches(&pools[i].Config, vf) {
					continue
				}
				if owner >= 0 {
					log.Info("device matches several pools; it stays in the first (first match in resourceList wins)",
						"device", vf.Address, "pool", pools[owner].Name, "alsoMatches", pools[i].Name)
					continue
				}
				owner = i
				pools[i].Devices = append(pools[i].Devices, *vf)
			}
		}
	}
	for i := range pools {
		slices.SortFunc(pools[i].Devices, func(a, b sysfs.VF) int { return strings.Compare(a.Address, b.Address) })
	}
	return pools
}

// Matches reports whether vf belongs to the entry r: the right device class and any selector.
func Matches(r *config.ResourceConfig, vf *sysfs.VF) bool {
	if !classMatches(r.Type(), vf.Class) {
		return false
	}
	if len(r.Selectors.Items) == 0 { // as upstream: no selectors, every device of the type
		return !r.IsRdma || vf.RDMA
	}
	for i := range r.Selectors.Items {
		if selectorMatches(&r.Selectors.Items[i], r.IsRdma, vf) {
			return true
		}
	}
	return false
}

func classMatches(t config.DeviceType, class string) bool {
	if class == "" {
		return t == config.NetDevice // unknown class: assume a NIC
	}
	switch t {
	case config.Accelerator:
		return strings.HasPrefix(class, "0x12")
	default:
		return strings.HasPrefix(class, "0x02")
	}
}

func selectorMatches(s *config.Selector, rdma bool, vf *sysfs.VF) bool {
	if len(s.Vendors) > 0 && !containsFold(s.Vendors, vf.Vendor) {
		return false
	}
	if len(s.Devices) > 0 && !containsFold(s.Devices, vf.Device) {
		return false
	}
	if len(s.Drivers) > 0 && !slices.Contains(s.Drivers, vf.Driver) {
		return false
	}
	if len(s.PciAddresses) > 0 && !containsPCI(s.PciAddresses, vf.Address) {
		return false
	}
	if len(s.RootDevices) > 0 && !containsPCI(s.RootDevices, vf.PFAddress) {
		return false
	}
	if len(s.PfNames) > 0 && !pfNameMatches(s.PfNames, vf) {
		return false
	}
	if len(s.LinkTypes) > 0 && !containsFold(s.LinkTypes, vf.LinkType) {
		return false
	}
	if (s.IsRdma || rdma) && !vf.RDMA {
		return false
	}
	return true
}

func pfNameMatches(names []string, vf *sysfs.VF) bool {
	for _, n := range names {
		p, err := config.ParsePFName(n) // validated at parse time
		if err == nil && p.Contains(vf.PFName, vf.Index) {
			return true
		}
	}
	return false
}

func containsFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

func containsPCI(list []string, addr string) bool {
	for _, x := range list {
		if config.NormalizePCI(x) == addr {
			return true
		}
	}
	return false
}
