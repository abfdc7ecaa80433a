package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/plexus-project/plexus/test/repo"
)

// Options tune the control plane a test gets. The zero value is a control plane with every CRD
// of the chart installed.
type Options struct {
	// Scheme used by the returned client. Defaults to client-go's scheme plus the NAD types;
	// tests that use Plexus's own API types pass a scheme that has them too.
	Scheme *runtime.Scheme

	// ExtraCRDDirs are installed besides charts/plexus/crds.
	ExtraCRDDirs []string

	// APIServerArgs are added to kube-apiserver's flags, e.g. {"enable-admission-plugins": "..."}.
	APIServerArgs map[string]string
}

// ControlPlane is a running etcd and kube-apiserver.
type ControlPlane struct {
	// Env is the underlying envtest environment.
	Env *envtest.Environment
	// Config reaches the API server as a cluster admin.
	Config *rest.Config
	// Client is a controller-runtime client over Config.
	Client client.Client
	// BinDir holds the Kubernetes and etcd binaries in use.
	BinDir string
	// RepoRoot is the root of the Plexus module.
	RepoRoot string
}

// Start brings up etcd and kube-apiserver, installs the CRDs and registers a cleanup that stops
// them. It fails the test (never skips it) when the binaries are missing, saying how to build
// them.
func Start(t testing.TB, opts Options) *ControlPlane {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	scheme := opts.Scheme
	if scheme == nil {
		scheme = DefaultScheme()
	}

	env := &envtest.Environment{
		BinaryAssetsDirectory:    bin,
		CRDDirectoryPaths:        append([]string{filepath.Join(root, "charts", "plexus", "crds")}, opts.ExtraCRDDirs...),
		ErrorIfCRDPathMissing:    true,
		Scheme:                   scheme,
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	args := env.ControlPlane.GetAPIServer().Configure()
	for k, v := range opts.APIServerArgs {
		args.Set(k, v)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting kube-apiserver and etcd from %s: %v", bin, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("stopping the control plane: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("creating a client: %v", err)
	}
	return &ControlPlane{Env: env, Config: cfg, Client: c, BinDir: bin, RepoRoot: root}
}

// DefaultScheme is client-go's scheme plus the NetworkAttachmentDefinition types.
func DefaultScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(nadv1.AddToScheme(s))
	return s
}

// Kubeconfig writes a kubeconfig for a new cluster-admin user named user into dir and returns
// its path, for binaries (kube-scheduler, CNI plugins) that take a --kubeconfig.
func (cp *ControlPlane) Kubeconfig(t testing.TB, user string) string {
	t.Helper()
	u, err := cp.Env.AddUser(envtest.User{Name: user, Groups: []string{"system:masters"}}, cp.Config)
	if err != nil {
		t.Fatalf("adding user %s: %v", user, err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		t.Fatalf("kubeconfig for %s: %v", user, err)
	}
	path := filepath.Join(t.TempDir(), user+".kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// CreateNode creates a Ready, schedulable Node whose status advertises capacity (and the same
// allocatable), since no kubelet runs in an envtest control plane.
func (cp *ControlPlane) CreateNode(ctx context.Context, t testing.TB, node *corev1.Node, capacity corev1.ResourceList) *corev1.Node {
	t.Helper()
	// TaintNodesByCondition adds node.kubernetes.io/not-ready on creation; only
	// kube-controller-manager would remove it, and none runs here.
	node.Spec.Taints = nil
	if err := cp.Client.Create(ctx, node); err != nil {
		t.Fatalf("creating node %s: %v", node.Name, err)
	}
	node.Spec.Taints = nil
	if err := cp.Client.Update(ctx, node); err != nil {
		t.Fatalf("clearing the taints of node %s: %v", node.Name, err)
	}
	node.Status.Capacity = capacity
	node.Status.Allocatable = capacity
	node.Status.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
	}}
	if err := cp.Client.Status().Update(ctx, node); err != nil {
		t.Fatalf("setting the status of node %s: %v", node.Name, err)
	}
	return node
}

// RepoRoot is the directory holding Plexus's go.mod, found from the working directory up.

// BinDir is where kube-apiserver, etcd and kube-scheduler are: KUBEBUILDER_ASSETS if set, else
// $PLEXUS_CACHE/bin, else $HOME/.cache/plexus/bin.
func BinDir() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		cache := os.Getenv("PLEXUS_CACHE")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", err
			}
			cache = filepath.Join(home, ".cache", "plexus")
		}
		dir = filepath.Join(cache, "bin")
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("%s not found in %s: run `make test-bins` (it builds the Kubernetes test binaries from the Go module proxy): %w", b, dir, err)
		}
	}
	return dir, nil
}
