package health

import (
	"fmt"

	"github.com/plexus-project/plexus/deviceplugin/sysfs"
)

// Source is the sysfs state the checker reads; *sysfs.FS implements it.
type Source interface {
	PFState(addr, netName string) sysfs.PFState
	NetdevPresent(addr, netName string) bool
}

var _ Source = (*sysfs.FS)(nil)

// Checker checks VFs against a Source.
type Checker struct {
	Src Source
}

// Result of a check: why each unhealthy VF is unhealthy, and the PFs whose sriov_numvfs now
// exceeds the VFs known for them (new VFs to discover).
type Result struct {
	Unhealthy map[string]string
	Grown     []string
}

// Check looks at every VF of pfs (as discovered); inUse tells whether a VF is allocated.
func (c *Checker) Check(pfs []sysfs.PF, inUse func(id string) bool) Result {
	res := Result{Unhealthy: map[string]string{}}
	for p := range pfs {
		pf := &pfs[p]
		st := c.Src.PFState(pf.Address, pf.NetName)
		if st.Present && st.NumVFs > len(pf.VFs) && st.NumVFs > pf.NumVFs {
			res.Grown = append(res.Grown, pf.Address)
		}
		for v := range pf.VFs {
			vf := &pf.VFs[v]
			switch {
			case !st.Present:
				res.Unhealthy[vf.Address] = fmt.Sprintf("PF %s is gone", pf.Address)
			case vf.Index >= st.NumVFs:
				res.Unhealthy[vf.Address] = fmt.Sprintf("PF %s has sriov_numvfs %d, VF index %d is disabled", pf.NetName, st.NumVFs, vf.Index)
			case !st.LinkUp:
				res.Unhealthy[vf.Address] = fmt.Sprintf("PF %s link is down", pf.NetName)
			case vf.NetName != "" && !inUse(vf.Address) && !c.Src.NetdevPresent(vf.Address, vf.NetName):
				res.Unhealthy[vf.Address] = fmt.Sprintf("netdev %s is gone", vf.NetName)
			}
		}
	}
	return res
}
