package chart

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-project/plexus/test/controlplane"
)

// certManagerVersion is the cert-manager whose API the chart's cert-manager mode renders.
const certManagerVersion = "v1.21.2"

// certManagerCRDs is deploy/crds of the cert-manager module (fetched into the module cache by
// the go command; the module is not a dependency of Plexus: its Kubernetes libraries are newer).
func certManagerCRDs(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", "github.com/cert-manager/cert-manager@"+certManagerVersion)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	var mod struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &mod); err != nil || jerr != nil || mod.Dir == "" {
		t.Fatalf("fetching cert-manager %s's CRDs through the module proxy: %v %s %s", certManagerVersion, err, mod.Error, out)
	}
	dir := filepath.Join(mod.Dir, "deploy", "crds")
	if _, err := os.Stat(filepath.Join(dir, "cert-manager.io_certificates.yaml")); err != nil {
		t.Fatalf("cert-manager %s has no CRDs in deploy/crds: %v", certManagerVersion, err)
	}
	return dir
}

// serverDryRun applies the rendered objects with kubectl apply --dry-run=server: all must be
// accepted.
func serverDryRun(t *testing.T, kubectl, kubeconfig, rendered string) {
	t.Helper()
	want := len(objects(t, rendered))
	cmd := exec.Command(kubectl, "--kubeconfig", kubeconfig, "apply", "--dry-run=server", "-f", "-")
	cmd.Stdin = strings.NewReader(rendered)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl apply --dry-run=server: %v\n%s\n%s", err, errOut.String(), out.String())
	}
	if got := strings.Count(out.String(), "(server dry run)"); got != want {
		t.Fatalf("the API server accepted %d objects, the chart renders %d:\n%s", got, want, out.String())
	}
}

// TestServerDryRun applies every object the chart renders (its CRDs included) in every mode
// with `kubectl apply --dry-run=server` against a real kube-apiserver that has cert-manager's
// CRDs: the API server's validation and admission accept each one.
func TestServerDryRun(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{ExtraCRDDirs: []string{certManagerCRDs(t)}})
	ctx := context.Background()
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}
	kubeconfig := cp.Kubeconfig(t, "chart-installer")
	kubectl := filepath.Join(cp.BinDir, "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Fatalf("no kubectl in %s: run `make test-bins`", cp.BinDir)
	}
	t.Run("sandbox values", func(t *testing.T) {
		serverDryRun(t, kubectl, kubeconfig, render(t, "--include-crds", "-f", filepath.Join(chartDir(t), "ci", "sandbox-values.yaml")))
	})
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			serverDryRun(t, kubectl, kubeconfig, render(t, append(m.args(), "--include-crds")...))

			// helm install against the same API server (dry run) renders NOTES.txt for the mode.
			notes, err := helm(t, append([]string{"install", "plexus", chartDir(t), "--namespace", namespace,
				"--kubeconfig", kubeconfig, "--dry-run=server", "--skip-crds"}, m.args()...)...)
			if err != nil {
				t.Fatalf("helm install --dry-run=server: %v\n%s", err, notes)
			}
			wantNotes := map[string]string{
				"secondary":     `scheduled by "plexus-scheduler"`,
				"extender-only": "filterVerb: filter",
				"none":          "No extender",
				"self-managed":  "plexus-controller keeps Secret plexus-system/plexus-webhook-tls",
				"cert-manager":  "cert-manager issues Secret plexus-system/plexus-webhook-tls",
			}
			for _, key := range []string{m.scheduler, m.certs} {
				if !strings.Contains(notes, "NOTES:") || !strings.Contains(notes, wantNotes[key]) {
					t.Errorf("NOTES.txt in mode %s lacks %q:\n%s", m, wantNotes[key], notes[strings.Index(notes, "NOTES:")+1:])
				}
			}
		})
	}
}
