package deviceplugin

import (
	"fmt"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/plexus-project/plexus/internal/metricsauth"
)

// NewDeps connects to kubelet's PodResources API and, when a node name or a metrics address is
// set, to the API server (from Kubeconfig, or in-cluster), every request bounded by APITimeout.
// Building them makes no request: an unreachable API server never stops the plugin serving
// kubelet (capacity publishing retries in the background).
func NewDeps(opts Options, log logr.Logger) (Deps, error) {
	opts.setDefaults()
	deps := Deps{InUse: &PodResources{Socket: opts.PodResourcesSocket}}
	metricsOn := opts.MetricsBindAddress != "" && opts.MetricsBindAddress != "0"
	if opts.NodeName == "" && !metricsOn {
		return deps, nil
	}
	var cfg *rest.Config
	var err error
	if opts.Kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", opts.Kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return deps, fmt.Errorf("API server configuration for publishing capacity on node %q and authenticating metrics scrapers (set --kubeconfig, or run in a pod; --metrics-bind-address=0 and no --node-name need none): %w", opts.NodeName, err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = opts.APITimeout
	cfg.UserAgent = "plexus-deviceplugin"
	if opts.NodeName != "" {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return deps, err
		}
		deps.Nodes = cs.CoreV1().Nodes()
	}
	if metricsOn {
		if deps.MetricsFilter, err = metricsauth.Filter(cfg, log.WithName("metrics")); err != nil {
			return deps, err
		}
	}
	return deps, nil
}
