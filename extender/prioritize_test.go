package extender

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/plexus-project/plexus/deviceplugin/capacity"
)

func scores(t *testing.T, c *Cluster, pod *corev1.Pod, nodes ...string) map[string]int64 {
	t.Helper()
	// The scheduler filters first; Prioritize must not count the pod's own assumption.
	filter(t, c, pod, nodes...)
	args := names(nodes...)
	args.Pod = pod
	list, err := c.Prioritize(t.Context(), args)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, hp := range list {
		if hp.Score < 0 || hp.Score > extenderv1.MaxExtenderPriority {
			t.Fatalf("score %d of %s out of 0-10", hp.Score, hp.Host)
		}
		out[hp.Host] = hp.Score
	}
	return out
}

func TestPrioritize(t *testing.T) {
	numa := func(f0, f1 int) map[string]capacity.Count {
		return map[string]capacity.Count{"0": {Healthy: 4, Free: f0}, "1": {Healthy: 4, Free: f1}}
	}
	for _, tc := range []struct {
		name      string
		placement Placement
		nodes     []*corev1.Node
		pod       *corev1.Pod
		better    string // the node that must score higher than worse
		worse     string
	}{{
		name:      "spread prefers the emptier node",
		placement: Spread,
		nodes:     []*corev1.Node{withNUMA(testNode("empty", 8, nil), numa(4, 4), 2), withNUMA(testNode("busy", 8, nil), numa(1, 2), 2)},
		pod:       testPod("p", "net", 1), better: "empty", worse: "busy",
	}, {
		name:      "pack prefers the fuller node",
		placement: Pack,
		nodes:     []*corev1.Node{withNUMA(testNode("empty", 8, nil), numa(4, 4), 2), withNUMA(testNode("busy", 8, nil), numa(1, 2), 2)},
		pod:       testPod("p", "net", 1), better: "busy", worse: "empty",
	}, {
		name:      "one NUMA node beats more free VFs split over two",
		placement: Spread,
		nodes:     []*corev1.Node{withNUMA(testNode("aligned", 8, nil), numa(3, 0), 2), withNUMA(testNode("split", 8, nil), numa(2, 2), 2)},
		pod:       testPod("p", "net", 3), better: "aligned", worse: "split",
	}, {
		name:      "VFs over distinct PFs beat one PF",
		placement: Pack,
		nodes:     []*corev1.Node{withNUMA(testNode("two-pfs", 8, nil), numa(4, 4), 2), withNUMA(testNode("one-pf", 8, nil), numa(4, 4), 1)},
		pod:       testPod("p", "net", 2), better: "two-pfs", worse: "one-pf",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCluster(Options{Placement: tc.placement})
			c.SetNAD(testNAD("net", vf, "", ""))
			var ns []string
			for _, n := range tc.nodes {
				c.SetNode(n)
				ns = append(ns, n.Name)
				// Bound pods hold what the annotation does not show free.
				var nc capacity.NodeCapacity
				nc, _, _ = capacity.FromNode(n)
				if held := int64(nc.Pools[vf].Healthy - nc.Pools[vf].Free); held > 0 {
					c.SetPod(bound(testPod("held-"+n.Name, "", held), n.Name))
				}
			}
			s := scores(t, c, tc.pod, ns...)
			if s[tc.better] <= s[tc.worse] {
				t.Fatalf("scores %v: want %s above %s", s, tc.better, tc.worse)
			}
		})
	}
}

func TestPrioritizeNoVFs(t *testing.T) {
	c := issueCluster(t)
	for n, s := range scores(t, c, testPod("p", "", 0), "n1", "n2") {
		if s != 0 {
			t.Fatalf("a pod without VFs scored %d on %s, want 0 (no preference)", s, n)
		}
	}
	s := scores(t, c, testPod("p", "sriov-n3", 4), "n1", "n2", "n3")
	if s["n2"] != 0 || s["n3"] != 0 || s["n1"] == 0 {
		t.Fatalf("scores %v: only n1 fits a 4-VF pod", s)
	}
}
