package demo

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/test/cluster"
)

// TestExamples checks docs/examples: four NADs whose configs parse as CNI configurations, two
// of them naming the SR-IOV resource the demo's device plugin serves, one (macvlan-bad) on a
// master interface no node has, and UPF pods selecting the three good ones.
func TestExamples(t *testing.T) {
	objs, err := readExamples(filepath.Join("..", "..", "..", "docs", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	nads, resources := map[string]bool{}, 0
	var pods int
	for _, o := range objs {
		switch o.GetKind() {
		case "NetworkAttachmentDefinition":
			nads["default/"+o.GetName()] = true
			config, _, _ := unstructured.NestedString(o.Object, "spec", "config")
			if _, err := network.ParseConfig(config, o.GetName()); err != nil {
				t.Errorf("NAD %s: %v", o.GetName(), err)
			}
			if o.GetAnnotations()[network.ResourceNameAnnotation] == SRIOVResource {
				resources++
			}
			if o.GetName() == "macvlan-bad" && !strings.Contains(config, `"master": "nosuch0"`) {
				t.Errorf("NAD macvlan-bad must name a master no node has (nosuch0): %s", config)
			}
		case "Pod":
			pods++
			sels, err := network.ParseSelections(o.GetAnnotations()[network.NetworksAnnotation], "default")
			if err != nil || len(sels) != 3 {
				t.Errorf("pod %s selects %v (%v), want three networks", o.GetName(), sels, err)
			}
			for _, s := range sels {
				if !nads[s.Key()] || s.Name == "macvlan-bad" {
					t.Errorf("pod %s selects %s, which the examples do not define", o.GetName(), s.Key())
				}
			}
		}
	}
	if len(nads) != 4 || !nads["default/macvlan-bad"] || resources != 2 || pods != 2 {
		t.Errorf("examples: NADs %v (%d with %s), %d pods; want 4 with macvlan-bad (2), 2", nads, resources, SRIOVResource, pods)
	}
}

// TestParts checks how the sandbox turns the chart's parts on and off: each part's --set, and
// the sandbox values file ChartValues passes exists.
func TestParts(t *testing.T) {
	for _, tt := range []struct {
		p        part
		on       bool
		want     string
		workload string
	}{
		{partDevicePlugin, true, "devicePlugin.enabled=true", "plexus-deviceplugin"},
		{partController, false, "controller.enabled=false", "plexus-controller"},
		{partWebhook, true, "webhook.enabled=true", "plexus-webhook"},
		{partScheduler, true, "scheduler.mode=secondary", "plexus-scheduler"},
		{partScheduler, false, "scheduler.mode=none", "plexus-scheduler"},
		{partDaemon, true, "daemon.enabled=true", "plexus-daemon"},
	} {
		if got := tt.p.setValue(tt.on); got != tt.want {
			t.Errorf("%s on=%v: --set %s, want %s", tt.p, tt.on, got, tt.want)
		}
		if w := tt.p.workload(); w.Name != tt.workload || w.ServiceAccount != tt.workload {
			t.Errorf("%s runs as %+v, want %s", tt.p, w, tt.workload)
		}
	}
	if len(allParts()) != len(Workloads()) {
		t.Errorf("%d parts, %d workloads", len(allParts()), len(Workloads()))
	}
	for _, comp := range components() {
		if !allParts()[comp.part] {
			t.Errorf("%s: part %q is not one of the chart's", comp.bin, comp.part)
		}
	}
	root := filepath.Join("..", "..", "..")
	args := ChartValues(root)
	if _, err := os.Stat(args[1]); args[0] != "-f" || err != nil {
		t.Errorf("ChartValues starts with %v: %v", args[:2], err)
	}
	if !slices.Contains(args, "image.registry="+cluster.PlexusImageRegistry) {
		t.Errorf("ChartValues %v does not name the sandbox's images", args)
	}
}
