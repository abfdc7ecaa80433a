package chart

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"text/template"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/plexus-project/plexus/internal/images"
	"github.com/plexus-project/plexus/test/repo"
)

// skaffoldConfig is the part of skaffold.yaml the test reads.
type skaffoldConfig struct {
	Build struct {
		Artifacts []struct {
			Image string `json:"image"`
			Ko    *struct {
				Main string `json:"main"`
			} `json:"ko"`
		} `json:"artifacts"`
	} `json:"build"`
	Deploy struct {
		Helm struct {
			Releases []struct {
				Name              string            `json:"name"`
				ChartPath         string            `json:"chartPath"`
				SetValueTemplates map[string]string `json:"setValueTemplates"`
			} `json:"releases"`
		} `json:"helm"`
	} `json:"deploy"`
	Profiles []struct {
		Name    string `json:"name"`
		Patches []struct {
			Path  string `json:"path"`
			Value any    `json:"value"`
		} `json:"patches"`
	} `json:"profiles"`
}

// kubeScheduler is the one image the chart runs that the project does not build (outside the
// sandbox): the cluster's own kube-scheduler release.
const kubeScheduler = "registry.k8s.io/kube-scheduler:"

// TestSkaffold: skaffold.yaml builds, with ko, the images `make images` builds, and its Helm
// release installs charts/plexus with every image the chart runs set to an artifact it built.
func TestSkaffold(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "skaffold.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg skaffoldConfig
	if err := sigsyaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("skaffold.yaml: %v", err)
	}

	vars := map[string]string{}
	var built []string
	for _, a := range cfg.Build.Artifacts {
		if a.Ko == nil {
			t.Errorf("artifact %s is not built by ko", a.Image)
			continue
		}
		if _, err := os.Stat(filepath.Join(root, a.Ko.Main, "main.go")); err != nil {
			t.Errorf("artifact %s: ko main %s: %v", a.Image, a.Ko.Main, err)
		}
		key := regexp.MustCompile(`[^A-Za-z0-9]`).ReplaceAllString(a.Image, "_")
		vars["IMAGE_REPO_"+key] = "skaffold.test/" + a.Image
		vars["IMAGE_TAG_"+key] = "t1"
		built = append(built, a.Image)
	}
	var suite []string
	for _, c := range images.Suite() {
		suite = append(suite, c.Name)
	}
	sort.Strings(built)
	sort.Strings(suite)
	if !slices.Equal(built, suite) {
		t.Errorf("skaffold builds %v, make images builds %v: they must be the same images", built, suite)
	}

	if len(cfg.Deploy.Helm.Releases) != 1 {
		t.Fatalf("%d Helm releases, want 1", len(cfg.Deploy.Helm.Releases))
	}
	rel := cfg.Deploy.Helm.Releases[0]
	if filepath.Clean(rel.ChartPath) != "charts/plexus" {
		t.Errorf("the Helm release installs %q, want charts/plexus", rel.ChartPath)
	}
	var set []string
	for k, v := range rel.SetValueTemplates {
		tmpl, err := template.New(k).Option("missingkey=error").Parse(v)
		if err != nil {
			t.Fatalf("setValueTemplates %s: %v", k, err)
		}
		var out strings.Builder
		if err := tmpl.Execute(&out, vars); err != nil {
			t.Fatalf("setValueTemplates %s names no artifact: %v", k, err)
		}
		set = append(set, "--set", k+"="+out.String())
	}

	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			objs := objects(t, render(t, append(m.args(), set...)...))
			for _, img := range podImages(objs) {
				if !strings.HasPrefix(img, kubeScheduler) && !strings.HasPrefix(img, "skaffold.test/") {
					t.Errorf("the chart runs %s, which no skaffold artifact builds", img)
				}
			}
		})
	}

	// Each profile's values are ones the chart accepts.
	for _, p := range cfg.Profiles {
		t.Run("profile "+p.Name, func(t *testing.T) {
			args := slices.Clone(set)
			for _, patch := range p.Patches {
				switch {
				case strings.HasSuffix(patch.Path, "/setValues"):
					for k, v := range patch.Value.(map[string]any) {
						args = append(args, "--set", fmt.Sprintf("%s=%v", k, v))
					}
				case strings.HasSuffix(patch.Path, "/valuesFiles"):
					for _, f := range patch.Value.([]any) {
						args = append(args, "-f", filepath.Join(root, f.(string)))
					}
				}
			}
			objs := objects(t, render(t, args...))
			if len(podImages(objs)) == 0 {
				t.Error("nothing rendered")
			}
		})
	}
}

// podImages are the images of every container and init container the objects run.
func podImages(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		for _, field := range []string{"containers", "initContainers"} {
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", field)
			for _, c := range cs {
				out = append(out, c.(map[string]any)["image"].(string))
			}
		}
	}
	return out
}
