package demo

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/plexus-project/plexus/cni/network"
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

// TestManifests checks that every component manifest parses and names the locally built image.
func TestManifests(t *testing.T) {
	for _, c := range components() {
		if c.manifest == "" {
			continue
		}
		y, err := Manifest(c.bin)
		if err != nil {
			t.Fatal(err)
		}
		d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(y), 4096)
		kinds := 0
		for {
			var o map[string]any
			if err := d.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", c.manifest, err)
			}
			if o["kind"] == nil || o["apiVersion"] == nil {
				t.Errorf("%s: an object without kind or apiVersion: %v", c.manifest, o)
			}
			kinds++
		}
		if kinds == 0 {
			t.Errorf("%s is empty", c.manifest)
		}
		if !c.cni && !strings.Contains(string(y), "localhost/plexus/"+c.bin+":dev") {
			t.Errorf("%s does not run localhost/plexus/%s:dev", c.manifest, c.bin)
		}
	}
}
