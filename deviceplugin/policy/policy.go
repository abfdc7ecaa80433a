package policy

import (
	"cmp"
	"slices"
)

// Device is what the policy knows of a VF.
type Device struct {
	// ID is the device ID (PCI address).
	ID string
	// NUMA is the NUMA node, -1 when unknown (treated as one more node).
	NUMA int
	// PF is the parent PF's PCI address.
	PF string
}

// Preferred picks size devices from available, including mustInclude (IDs that must be part of
// the answer). It returns fewer than size only when available has fewer devices.
func Preferred(available []Device, mustInclude []string, size int) []string {
	chosen := make([]string, 0, size)
	taken := map[string]bool{}
	byID := make(map[string]Device, len(available))
	for _, d := range available {
		byID[d.ID] = d
	}
	mustNUMA := map[int]bool{}
	perPF := map[string]int{}
	for _, id := range mustInclude {
		if len(chosen) == size {
			break
		}
		if taken[id] {
			continue
		}
		chosen = append(chosen, id)
		taken[id] = true
		if d, ok := byID[id]; ok {
			mustNUMA[d.NUMA] = true
			perPF[d.PF]++
		}
	}
	need := size - len(chosen)
	if need <= 0 {
		return chosen
	}
	free := map[int][]Device{}
	for _, d := range available {
		if !taken[d.ID] {
			free[d.NUMA] = append(free[d.NUMA], d)
		}
	}
	for _, numa := range numaOrder(free, mustNUMA, need) {
		picked := roundRobin(free[numa], perPF, need)
		chosen = append(chosen, picked...)
		need -= len(picked)
		if need == 0 {
			break
		}
	}
	return chosen
}

// numaOrder returns the NUMA nodes to draw from: the single best node that fits the request
// first, then the others from the fullest down.
func numaOrder(free map[int][]Device, mustNUMA map[int]bool, need int) []int {
	nodes := make([]int, 0, len(free))
	for n := range free {
		nodes = append(nodes, n)
	}
	pfCount := func(n int) int {
		pfs := map[string]bool{}
		for _, d := range free[n] {
			pfs[d.PF] = true
		}
		return min(len(pfs), need)
	}
	slices.SortFunc(nodes, func(a, b int) int {
		fitA, fitB := len(free[a]) >= need, len(free[b]) >= need
		if fitA != fitB {
			return boolFirst(fitA)
		}
		if fitA {
			if len(mustNUMA) == 1 && mustNUMA[a] != mustNUMA[b] {
				return boolFirst(mustNUMA[a])
			}
			if c := cmp.Compare(pfCount(b), pfCount(a)); c != 0 {
				return c
			}
			if c := cmp.Compare(len(free[a]), len(free[b])); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		}
		if c := cmp.Compare(len(free[b]), len(free[a])); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return nodes
}

func boolFirst(a bool) int {
	if a {
		return -1
	}
	return 1
}

// roundRobin takes up to need devices from devs, one PF at a time. perPF counts devices
// already chosen per PF; PFs with fewer chosen go first, then those with more free devices.
func roundRobin(devs []Device, perPF map[string]int, need int) []string {
	byPF := map[string][]Device{}
	var pfs []string
	for _, d := range devs {
		if _, ok := byPF[d.PF]; !ok {
			pfs = append(pfs, d.PF)
		}
		byPF[d.PF] = append(byPF[d.PF], d)
	}
	for _, pf := range pfs {
		slices.SortFunc(byPF[pf], func(a, b Device) int { return cmp.Compare(a.ID, b.ID) })
	}
	var out []string
	for need > 0 {
		slices.SortFunc(pfs, func(a, b string) int {
			if c := cmp.Compare(perPF[a], perPF[b]); c != 0 {
				return c
			}
			if c := cmp.Compare(len(byPF[b]), len(byPF[a])); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		progressed := false
		for _, pf := range pfs {
			if len(byPF[pf]) == 0 {
				continue
			}
			out = append(out, byPF[pf][0].ID)
			byPF[pf] = byPF[pf][1:]
			perPF[pf]++
			need--
			progressed = true
			break
		}
		if !progressed {
			break
		}
	}
	return out
}
