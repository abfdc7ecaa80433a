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

// Checker checks VFs against a Source. PF state is read on every Check; the per-VF netdev
// checks (one system call each, the bulk of the cost on nodes with thousands of VFs) are spread
// over NetdevShards consecutive Checks, each VF keeping its last result in between.
type Checker struct {
	Src Source
	// NetdevShards is how many Checks it takes to look at every VF's netdev once. Default 1.
	NetdevShards int

	tick       int
	netdevGone map[string]bool
}

// Result of a check: why each unhealthy VF is unhealthy, and the PFs whose sriov_numvfs now
// exceeds the VFs known for them (new VFs to discover).
type Result struct {
	Unhealthy map[string]string
	Grown     []string
}

// Check looks at every VF of pfs (as discovered); inUse tells whether a VF is allocated.
// A Checker is used by one goroutine at a time.
func (c *Checker) Check(pfs []sysfs.PF, inUse func(id string) bool) Result {
	res := Result{Unhealthy: map[string]string{}}
	shards := max(c.NetdevShards, 1)
	if c.netdevGone == nil {
		c.netdevGone = map[string]bool{}
	}
	c.tick++
	k := 0
	for p := range pfs {
		pf := &pfs[p]
		st := c.Src.PFState(pf.Address, pf.NetName)
		if st.Present && st.NumVFs > len(pf.VFs) && st.NumVFs > pf.NumVFs {
			res.Grown = append(res.Grown, pf.Address)
		}
		for v := range pf.VFs {
			vf := &pf.VFs[v]
			if vf.NetName != "" && (k+c.tick)%shards == 0 {
				c.netdevGone[vf.Address] = !c.Src.NetdevPresent(vf.Address, vf.NetName)
			}
			k++
			switch {
			case !st.Present:
				res.Unhealthy[vf.Address] = fmt.Sprintf("PF %s is gone", pf.Address)
			case vf.Index >= st.NumVFs:
				res.Unhealthy[vf.Address] = fmt.Sprintf("PF %s has sriov_numvfs %d, VF index %d is disabled", pf.NetName, st.NumVFs, vf.Index)
			case !st.LinkUp:
				res.Unhealthy[vf.Address] = fmt.Sprintf("PF %s link is down", pf.NetName)
			case c.netdevGone[vf.Address] && !inUse(vf.Address):
				res.Unhealthy[vf.Address] = fmt.Sprintf("netdev %s is gone", vf.NetName)
			}
		}
	}
	return res
}
