package deviceplugin

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// NewDeps connects to kubelet's PodResources API and, when a node name is set, to the API
// server (from Kubeconfig, or in-cluster).
func NewDeps(opts Options) (Deps, error) {
	opts.setDefaults()
	deps := Deps{InUse: &PodResources{Socket: opts.PodResourcesSocket}}
	if opts.NodeName == "" {
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
		return deps, fmt.Errorf("API server configuration for publishing capacity on node %s (set --kubeconfig, or run in a pod): %w", opts.NodeName, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return deps, err
	}
	deps.Nodes = cs.CoreV1().Nodes()
	return deps, nil
}
