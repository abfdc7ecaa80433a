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

// helmBin is the helm CLI `make helm` installs; the test fails, never skips, without it.
func helmBin(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("PLEXUS_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "plexus")
	}
	bin := filepath.Join(cache, "bin", "helm")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no helm CLI at %s: run `make helm`", bin)
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

// helm runs the helm CLI with an empty home (no repositories, no plugins).
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
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

func TestLint(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			args := append([]string{"lint", chartDir(t), "--strict", "--namespace", namespace}, m.args()...)
			if out, err := helm(t, args...); err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := helm(t, "template", "plexus", chartDir(t), "--namespace", namespace, "--set", tt.set)
			if err == nil {
				t.Fatalf("--set %s rendered:\n%.300s", tt.set, out)
			}
			if !strings.Contains(err.Error(), "values don't meet the specifications of the schema") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("--set %s: %v\nwant the schema's message %q", tt.set, err, tt.want)
			}
		})
	}
}
