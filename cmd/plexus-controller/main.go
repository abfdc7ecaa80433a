// Command plexus-controller hosts Plexus's leader-elected reconcilers on one controller-runtime
// manager: today the IPAM leak reclaimer and pool counters (ipam/reconciler). Add a component by
// appending its SetupWithManager to the setups list.
package main

import (
	"flag"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	certsreconciler "github.com/plexus-project/plexus/certs/reconciler"
	ipamv1alpha1 "github.com/plexus-project/plexus/ipam/api/v1alpha1"
	ipamreconciler "github.com/plexus-project/plexus/ipam/reconciler"
)

func main() {
	leaderElect := flag.Bool("leader-elect", true, "elect a leader among replicas; only the leader reconciles")
	leaseNamespace := flag.String("leader-election-namespace", "", "namespace of the leader election Lease (default: the pod's namespace)")
	metricsAddr := flag.String("metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	probeAddr := flag.String("health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	interval := flag.Duration("ipam-reclaim-interval", 0, "how often every IP block is re-examined for leaks (default 15s)")
	var certFlags certsreconciler.Flags
	certFlags.AddFlags(flag.CommandLine)
	klog.InitFlags(flag.CommandLine)
	flag.Parse() // --kubeconfig is registered by controller-runtime's config loader
	ctrl.SetLogger(klog.NewKlogr())

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(ipamv1alpha1.AddToScheme(scheme))
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                  scheme,
		LeaderElection:          *leaderElect,
		LeaderElectionID:        "plexus-controller",
		LeaderElectionNamespace: *leaseNamespace,
		Metrics:                 metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress:  *probeAddr,
	})
	if err != nil {
		fail(fmt.Errorf("creating the manager: %w", err))
	}
	setups := []func(ctrl.Manager) error{
		func(m ctrl.Manager) error {
			return ipamreconciler.SetupWithManager(m, ipamreconciler.Options{Interval: *interval})
		},
		func(m ctrl.Manager) error {
			opts, enabled, err := certFlags.Options()
			if !enabled || err != nil {
				return err
			}
			return certsreconciler.SetupWithManager(m, opts)
		},
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		fail(err)
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		fail(err)
	}
	for _, setup := range setups {
		if err := setup(mgr); err != nil {
			fail(err)
		}
	}
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "plexus-controller:", err)
	os.Exit(1)
}
