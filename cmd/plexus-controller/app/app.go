package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	certsreconciler "github.com/plexus-project/plexus/certs/reconciler"
	"github.com/plexus-project/plexus/internal/cli"
	ipamv1alpha1 "github.com/plexus-project/plexus/ipam/api/v1alpha1"
	ipamreconciler "github.com/plexus-project/plexus/ipam/reconciler"
)

// Options are plexus-controller's settings.
type Options struct {
	// Kubeconfig is the kubeconfig file; "" means in-cluster (or $KUBECONFIG).
	Kubeconfig string
	// LeaderElect elects a leader among replicas; only the leader reconciles (default true).
	LeaderElect bool
	// LeaderElectionNamespace holds the Lease; "" means the pod's namespace.
	LeaderElectionNamespace string
	// MetricsAddr serves /metrics over HTTPS to authenticated, authorized callers; "0": none.
	MetricsAddr string
	// MetricsCertDir holds tls.crt and tls.key for /metrics; "" means a self-signed pair.
	MetricsCertDir string
	// ProbeAddr serves /healthz and /readyz; "0": none.
	ProbeAddr string
	// ReclaimInterval is how often every IP block is re-examined (0: ipam/reconciler's default).
	ReclaimInterval time.Duration
	// Certs are the --certs-* flags of the self-managed certificate mode (certs/reconciler).
	Certs certsreconciler.Flags
}

// AddFlags registers the options on fs with their defaults.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file; in-cluster configuration (or $KUBECONFIG) when empty")
	fs.BoolVar(&o.LeaderElect, "leader-elect", true, "elect a leader among replicas; only the leader reconciles")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: the pod's namespace)")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8443", `address of the HTTPS metrics endpoint, for callers allowed "get" on the non-resource URL /metrics ("0": none)`)
	fs.StringVar(&o.MetricsCertDir, "metrics-cert-dir", "", "directory with tls.crt and tls.key for the metrics endpoint (default: a self-signed pair)")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", `address of /healthz and /readyz ("0": none)`)
	fs.DurationVar(&o.ReclaimInterval, "ipam-reclaim-interval", 0, "how often every IP block is re-examined for leaks (default 15s)")
	o.Certs.AddFlags(fs)
}

// Main parses args (without the program name) and runs the manager until ctx ends; logs go to
// stderr.
func Main(ctx context.Context, args []string, stderr io.Writer) error {
	fs := pflag.NewFlagSet("plexus-controller", pflag.ContinueOnError)
	var o Options
	logging := cli.Logging{}
	logging.AddFlags(fs)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	log, err := logging.Logger(stderr)
	if err != nil {
		return err
	}
	ctrl.SetLogger(log)
	cfg, err := restConfig(o.Kubeconfig)
	if err != nil {
		return err
	}
	return Run(ctx, cfg, o)
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return ctrl.GetConfig()
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading --kubeconfig %s: %w", kubeconfig, err)
	}
	return cfg, nil
}

// Run runs the manager of o on cfg until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(ipamv1alpha1.AddToScheme(scheme))
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        "plexus-controller",
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		Metrics: metricsserver.Options{
			BindAddress:    o.MetricsAddr,
			SecureServing:  true,
			CertDir:        o.MetricsCertDir,
			FilterProvider: filters.WithAuthenticationAndAuthorization,
		},
		HealthProbeBindAddress: o.ProbeAddr,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	setups := []func(ctrl.Manager) error{
		func(m ctrl.Manager) error {
			return ipamreconciler.SetupWithManager(m, ipamreconciler.Options{Interval: o.ReclaimInterval})
		},
		func(m ctrl.Manager) error {
			certs, enabled, err := o.Certs.Options()
			if !enabled || err != nil {
				return err
			}
			return certsreconciler.SetupWithManager(m, certs)
		},
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	for _, setup := range setups {
		if err := setup(mgr); err != nil {
			return err
		}
	}
	return mgr.Start(ctx)
}
