package extender

import (
	"fmt"
	"testing"

	"github.com/plexus-project/plexus/deviceplugin/capacity"
)

// benchCluster is n nodes with the published layout (two NUMA nodes of 4 VFs, 2 PFs each)
// and bound one-VF pods on each, and their names.
func benchCluster(n, podsPerNode int) (*Cluster, []string) {
	c := NewCluster(Options{})
	c.SetNAD(testNAD("net", vf, "net=true", ""))
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("node-%d", i)
		c.SetNode(withNUMA(testNode(names[i], 8, map[string]string{"net": "true"}), map[string]capacity.Count{"0": {Healthy: 4, Free: 4}, "1": {Healthy: 4, Free: 4}}, 2))
		for j := range podsPerNode {
			c.SetPod(bound(testPod(fmt.Sprintf("p-%d-%d", i, j), "net", 1), names[i]))
		}
	}
	return c, names
}

// BenchmarkFilter is one filter call over 500 and 5,000 nodes, 2 bound pods each, as the
// scheduler makes it (names only): the decision alone, without HTTP.
func BenchmarkFilter(b *testing.B) {
	for _, n := range []int{500, 5000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			c, names := benchCluster(n, 2)
			pod := testPod("probe", "net", 1)
			b.ResetTimer()
			for b.Loop() {
				a := namesArgs(names)
				a.Pod = pod
				if r, _ := c.Filter(b.Context(), a); len(*r.NodeNames) != n {
					b.Fatalf("fit %d of %d", len(*r.NodeNames), n)
				}
			}
		})
	}
}

// BenchmarkPrioritize is one prioritize call over 500 and 5,000 nodes, 1 bound pod each,
// after the pod's filter call, as the scheduler makes them.
func BenchmarkPrioritize(b *testing.B) {
	for _, n := range []int{500, 5000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			c, names := benchCluster(n, 1)
			a := namesArgs(names)
			a.Pod = testPod("probe", "net", 1)
			c.Filter(b.Context(), a)
			b.ResetTimer()
			for b.Loop() {
				if l, err := c.Prioritize(b.Context(), a); err != nil || len(l) != n {
					b.Fatalf("scored %d of %d: %v", len(l), n, err)
				}
			}
		})
	}
}
