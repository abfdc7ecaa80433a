package chart

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/plexus-project/plexus/test/repo"
)

const namespace = "plexus-system"

// mode is one combination of the chart's scheduler and certificate modes.
type mode struct{ scheduler, certs string }

func (m mode) String() string { return m.scheduler + "+" + m.certs }

func (m mode) args() []string {
	return []string{"--set", "scheduler.mode=" + m.scheduler, "--set", "certs.mode=" + m.certs}
}

var modes = []mode{
	{"secondary", "self-managed"}, {"secondary", "cert-manager"},
	{"extender-only", "self-managed"}, {"extender-only", "cert-manager"},
	{"none", "self-managed"}, {"none", "cert-manager"},
}

// TestSandboxValues: ci/sandbox-values.yaml (the sandbox's install) passes lint and names the
// images the sandbox imports.
func TestSandboxValues(t *testing.T) {
	values := filepath.Join(chartDir(t), "ci", "sandbox-values.yaml")
	if out, err := helm(t, "lint", chartDir(t), "--strict", "-f", values); err != nil {
		t.Fatalf("helm lint -f %s: %v\n%s", values, err, out)
	}
	objs := objects(t, render(t, "-f", values))
	for _, img := range podImages(objs) {
		if !strings.HasPrefix(img, "localhost/plexus/") || !strings.HasSuffix(img, ":dev") {
			t.Errorf("the sandbox install runs %s, which the sandbox does not build", img)
		}
	}
	for _, o := range objs {
		cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range cs {
			if p := c.(map[string]any)["imagePullPolicy"]; p != "Never" {
				t.Errorf("%s/%s pulls %v", o.GetName(), c.(map[string]any)["name"], p)
			}
		}
	}
	checkDevicePlugin(t, objs)
}

// clis are the Helm CLIs the chart must work with: Helm 3 (helm) and Helm 4 (helm4).
var clis = []string{"helm", "helm4"}

// cachedBin is the CLI name `make helm` installs; the test fails, never skips, without it.
func cachedBin(t *testing.T, name string) string {
	t.Helper()
	cache := os.Getenv("PLEXUS_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "plexus")
	}
	bin := filepath.Join(cache, "bin", name)
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no %s CLI at %s: run `make helm`", name, bin)
	}
	return bin
}

func chartDir(t *testing.T) string {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "charts", "plexus")
}

// helm runs the Helm 3 CLI with an empty home (no repositories, no plugins).
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return helmCLI(t, "helm", args...)
}

// helmCLI runs the cached Helm CLI cli with an empty home.
func helmCLI(t *testing.T, cli string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(cachedBin(t, cli), args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String() + errOut.String(), errors.New(strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

// render runs helm template for the release "plexus" in namespace with extra args.
func render(t *testing.T, extra ...string) string {
	t.Helper()
	args := append([]string{"template", "plexus", chartDir(t), "--namespace", namespace, "--kube-version", "1.33.13"}, extra...)
	out, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// objects decodes a multi-document YAML stream.
func objects(t *testing.T, y string) []*unstructured.Unstructured {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(y)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading the rendered chart: %v", err)
		}
		j, err := sigsyaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("decoding the rendered chart: %v\n%s", err, doc)
		}
		if string(j) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			t.Fatalf("decoding the rendered chart: %v\n%s", err, doc)
		}
		out = append(out, u)
	}
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// TestLint: helm lint --strict passes with Helm 3 and Helm 4 in every mode, and both render the
// same objects.
func TestLint(t *testing.T) {
	for _, cli := range clis {
		for _, m := range modes {
			t.Run(cli+" "+m.String(), func(t *testing.T) {
				args := append([]string{"lint", chartDir(t), "--strict", "--namespace", namespace}, m.args()...)
				if out, err := helmCLI(t, cli, args...); err != nil {
					t.Fatalf("%s lint: %v\n%s", cli, err, out)
				}
			})
		}
	}
	for _, m := range modes {
		t.Run("helm4 renders as helm "+m.String(), func(t *testing.T) {
			args := append([]string{"template", "plexus", chartDir(t), "--namespace", namespace, "--kube-version", "1.33.13"}, m.args()...)
			out4, err := helmCLI(t, "helm4", args...)
			if err != nil {
				t.Fatalf("helm4 template: %v", err)
			}
			o3, o4 := objects(t, render(t, m.args()...)), objects(t, out4)
			if len(o3) != len(o4) {
				t.Fatalf("helm renders %d objects, helm4 %d", len(o3), len(o4))
			}
			// The order of the documents may differ; each object must not.
			for _, a := range o3 {
				b := find(o4, a.GetKind(), a.GetName())
				if b == nil || !equality.Semantic.DeepEqual(a.Object, b.Object) {
					t.Errorf("%s %s differs between Helm 3 and Helm 4", a.GetKind(), a.GetName())
				}
			}
		})
	}
}

// TestBadValues: each bad value fails helm template with the schema's message naming it.
func TestBadValues(t *testing.T) {
	tests := []struct {
		name string
		set  string
		want string
	}{
		{"unknown scheduler mode", "scheduler.mode=primary", "at '/scheduler/mode': value must be one of 'secondary', 'extender-only', 'none'"},
		{"resource name with a space", "devicePlugin.resourceList[0].resourceName=sriov net", "at '/devicePlugin/resourceList/0/resourceName': 'sriov net' does not match pattern"},
		{"zero webhook replicas", "webhook.replicas=0", "at '/webhook/replicas': minimum: got 0, want 1"},
		{"unknown cert mode", "certs.mode=manual", "at '/certs/mode': value must be one of 'self-managed', 'cert-manager'"},
		{"failure policy", "webhook.failurePolicy=Maybe", "at '/webhook/failurePolicy'"},
		{"misspelt value", "webhook.replica=2", "additional properties 'replica' not allowed"},
		{"IPAM flush delay not a duration", "daemon.ipamFlushAfter=soon", "at '/daemon/ipamFlushAfter': 'soon' does not match pattern"},
		{"negative IPAM holds", "daemon.ipamHolds=-1", "at '/daemon/ipamHolds': minimum: got -1, want 0"},
	}
	for _, cli := range clis {
		for _, tt := range tests {
			t.Run(cli+" "+tt.name, func(t *testing.T) {
				out, err := helmCLI(t, cli, "template", "plexus", chartDir(t), "--namespace", namespace, "--set", tt.set)
				if err == nil {
					t.Fatalf("--set %s rendered:\n%.300s", tt.set, out)
				}
				if !strings.Contains(err.Error(), "values don't meet the specifications of the schema") || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("%s --set %s: %v\nwant the schema's message %q", cli, tt.set, err, tt.want)
				}
			})
		}
	}
}
