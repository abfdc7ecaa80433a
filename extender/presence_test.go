package extender

import (
	"slices"
	"testing"
)

// Presence follows every change of NADs and Node labels, whatever order they come in, and a
// slot freed by one NAD and taken by another carries nothing over.
func TestPresenceFollowsChanges(t *testing.T) {
	on := map[string]string{"net": "true"}
	c := NewCluster(Options{})
	fits := func(step, networks string, want ...string) {
		t.Helper()
		r := filter(t, c, testPod("p", networks, 0), "a", "b", "c")
		if got := *r.NodeNames; !slices.Equal(got, want) {
			t.Fatalf("%s: %s fits %v, want %v (failed: %v)", step, networks, got, want, r.FailedAndUnresolvableNodes)
		}
	}
	c.SetNode(testNode("a", 4, on))
	c.SetNAD(testNAD("x", "", "net=true", ""))
	c.SetNode(testNode("b", 4, nil))
	c.SetNode(testNode("c", 4, on))
	fits("nodes before and after the NAD", "x", "a", "c")

	c.SetNode(testNode("a", 4, nil))
	c.SetNode(testNode("b", 4, on))
	fits("labels changed", "x", "b", "c")

	c.SetNAD(testNAD("x", "", "other=true", ""))
	fits("selector changed", "x")
	c.SetNAD(testNAD("x", "", "", ""))
	fits("selector removed", "x", "a", "b", "c")

	c.SetNAD(testNAD("y", "", "net=true", ""))
	c.DeleteNAD("default", "y")
	c.SetNAD(testNAD("z", "", "zone=1", "")) // takes y's slot
	c.SetNode(testNode("a", 4, map[string]string{"zone": "1"}))
	fits("a freed slot reused", "z", "a")
	c.SetNAD(testNAD("y", "", "net=true", ""))
	fits("two selectors", "y", "b", "c")
	fits("both networks", "y, z")

	c.DeleteNode("b")
	c.SetNode(testNode("b", 4, map[string]string{"zone": "1", "net": "true"}))
	fits("node re-added", "y, z", "b")
}
