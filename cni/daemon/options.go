package daemon

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/plexus-project/plexus/cni/attach"
	"github.com/plexus-project/plexus/cni/conflist"
	"github.com/plexus-project/plexus/cni/wire"
	"github.com/plexus-project/plexus/deviceplugin/devinfo"
)

// CNIOptions configure the node CNI server. Each field's flag and default is in AddFlags.
type CNIOptions struct {
	// Enabled runs the CNI server (--cni-server). Off, the daemon is the IPAM agent alone.
	Enabled bool
	// SocketDir holds the shim's socket, plexus.sock.
	SocketDir string
	// ConfDir is the runtime's CNI conf dir, where 00-plexus.conflist is written.
	ConfDir string
	// ConflistName is the file written into ConfDir.
	ConflistName string
	// BinDirs are searched for the delegate plugins.
	BinDirs []string
	// StateDir holds the result cache (and libcni's own cache); it must survive restarts.
	StateDir string
	// ClusterNetwork is the default network: "" (the first other config in ConfDir), an
	// absolute file path, or a NAD as namespace/name.
	ClusterNetwork string
	// MaxInFlight and MaxQueued bound the calls worked on and waiting.
	MaxInFlight, MaxQueued int
	// MaxDelegates bounds the plugin executions running at once across every call of the node
	// (default 16 per CPU).
	MaxDelegates int
	// RequestTimeout bounds one call (the shim's timeout is set a little above it).
	RequestTimeout time.Duration
	// NamespaceIsolation refuses NADs of another namespace except GlobalNamespaces'.
	NamespaceIsolation bool
	GlobalNamespaces   []string
	// AllowedPlugins restricts the plugin types NADs may use (empty: any in BinDirs).
	AllowedPlugins []string
	// PodResourcesSocket is kubelet's PodResources API.
	PodResourcesSocket string
	// DevinfoDir holds the device-info files.
	DevinfoDir string
	// MetricsAddr serves /metrics; "0" disables it.
	MetricsAddr string
}

// AddFlags registers the options on fs.
func (o *CNIOptions) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.Enabled, "cni-server", false, "run the node CNI server that the plexus shim forwards to (off: the IPAM agent alone)")
	fs.StringVar(&o.SocketDir, "cni-socket-dir", wire.DefaultSocketDir, "directory (created 0700) of the CNI server's socket "+wire.SocketName)
	fs.StringVar(&o.ConfDir, "cni-conf-dir", "/etc/cni/net.d", "the container runtime's CNI conf dir, where the plexus conflist is written")
	fs.StringVar(&o.ConflistName, "cni-conflist-name", conflist.DefaultFileName, "name of the conflist written into --cni-conf-dir (it must sort first)")
	fs.StringSliceVar(&o.BinDirs, "cni-bin-dir", []string{"/opt/cni/bin"}, "directories searched for the delegate CNI plugins (comma-separated)")
	fs.StringVar(&o.StateDir, "cni-state-dir", "/var/lib/plexus/cni", "directory of the per-container result cache; keep it across restarts (a host path)")
	fs.StringVar(&o.ClusterNetwork, "cni-cluster-network", "", `the cluster default network: "" = the first other config in --cni-conf-dir, an absolute path of a .conf/.conflist, or a NetworkAttachmentDefinition as namespace/name`)
	fs.IntVar(&o.MaxInFlight, "cni-max-in-flight", 32, "CNI calls worked on at once")
	fs.IntVar(&o.MaxDelegates, "cni-max-delegates", 16*runtime.NumCPU(), "delegate plugin executions (one network's ADD, DEL, CHECK, GC or STATUS) running at once across every call of the node; the others wait for a slot")
	fs.IntVar(&o.MaxQueued, "cni-max-queued", 512, "ADD/CHECK calls waiting for a slot; beyond it they fail with try-again-later")
	fs.DurationVar(&o.RequestTimeout, "cni-request-timeout", 170*time.Second, "bound of one CNI call in the daemon, queueing included (the shim waits 10s more)")
	fs.BoolVar(&o.NamespaceIsolation, "cni-namespace-isolation", true, "refuse a pod selecting a NetworkAttachmentDefinition of another namespace unless that namespace is in --cni-global-namespaces")
	fs.StringSliceVar(&o.GlobalNamespaces, "cni-global-namespaces", []string{"default"}, "namespaces whose NetworkAttachmentDefinitions every pod may select (comma-separated)")
	fs.StringSliceVar(&o.AllowedPlugins, "cni-allowed-plugins", nil, "plugin types a NetworkAttachmentDefinition may use, comma-separated (empty: any plugin in --cni-bin-dir); NADs are written by namespace users and their plugins run as root")
	fs.StringVar(&o.PodResourcesSocket, "pod-resources-socket", attach.DefaultPodResourcesSocket, "kubelet's PodResources API socket (devices of networks with a resourceName)")
	fs.StringVar(&o.DevinfoDir, "devinfo-dir", devinfo.DefaultDir, "directory of the device-info files (device-info in network-status)")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", "127.0.0.1:8093", `address of the CNI server's Prometheus /metrics, HTTPS for callers the API server authenticates and authorizes for get /metrics ("0": none)`)
}

// Validate checks the options for a run.
func (o *CNIOptions) Validate() error {
	if !o.Enabled {
		return nil
	}
	var errs []string
	if o.ConfDir == "" || o.StateDir == "" || o.SocketDir == "" || len(o.BinDirs) == 0 {
		errs = append(errs, "--cni-conf-dir, --cni-state-dir, --cni-socket-dir and --cni-bin-dir must not be empty")
	}
	if o.MaxInFlight < 1 || o.MaxQueued < 0 || o.MaxDelegates < 1 {
		errs = append(errs, "--cni-max-in-flight and --cni-max-delegates must be at least 1 and --cni-max-queued at least 0")
	}
	if cn := o.ClusterNetwork; cn != "" && !strings.HasPrefix(cn, "/") && strings.Count(cn, "/") != 1 {
		errs = append(errs, fmt.Sprintf("--cni-cluster-network=%q: give an absolute file path or namespace/name of a NetworkAttachmentDefinition", cn))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}
