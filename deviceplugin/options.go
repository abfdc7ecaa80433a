package deviceplugin

import (
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/plexus-project/plexus/deviceplugin/config"
	"github.com/plexus-project/plexus/deviceplugin/devinfo"
)

// Options configure the plugin. AddFlags binds them to command-line flags; zero fields get the
// defaults documented on each.
type Options struct {
	// ConfigFile is the resourceList JSON file. Default /etc/pcidp/config.json.
	ConfigFile string
	// ResourcePrefix is used by entries without resourcePrefix. Default intel.com.
	ResourcePrefix string
	// SysfsRoot is where sysfs is mounted. Default /sys.
	SysfsRoot string
	// DevicePluginDir holds kubelet.sock and the plugin's sockets. Default
	// /var/lib/kubelet/device-plugins.
	DevicePluginDir string
	// PodResourcesSocket is kubelet's PodResources API socket, used to find released devices.
	// Default /var/lib/kubelet/pod-resources/kubelet.sock.
	PodResourcesSocket string
	// DevInfoDir receives the device-info files. Default /var/run/k8s.cni.cncf.io/devinfo/dp.
	DevInfoDir string
	// NodeName is the Node whose capacity annotation is written; empty disables publishing.
	// Default $NODE_NAME.
	NodeName string
	// Kubeconfig reaches the API server; empty means in-cluster configuration.
	Kubeconfig string
	// HealthInterval is the health poll period. Default 250ms (changes show within 1s).
	HealthInterval time.Duration
	// KubeletCheckInterval is how often the plugin checks that kubelet.sock and its own sockets
	// are unchanged, besides watching the directory. Default 1s.
	KubeletCheckInterval time.Duration
	// ConfigCheckInterval is how often the configuration file is re-read, besides watching it.
	// Default 2s.
	ConfigCheckInterval time.Duration
	// ReleaseInterval is how often PodResources is asked which devices are still in use.
	// Default 5s.
	ReleaseInterval time.Duration
	// ReleaseGrace is how long an allocated device counts as in use before PodResources must
	// list it. Default 30s.
	ReleaseGrace time.Duration
	// HealthProbeBindAddress serves /healthz and /readyz (plain HTTP); empty or "0": none.
	// The flag's default is 127.0.0.1:8094: the plugin runs in the host's network, so it
	// listens on the node's loopback unless told otherwise (e.g. the node's address).
	HealthProbeBindAddress string
	// MetricsBindAddress serves /metrics over HTTPS (a self-signed certificate) to callers the
	// API server authenticates and authorizes for it; empty or "0": none. The flag's default is
	// 127.0.0.1:8095.
	MetricsBindAddress string
	// APITimeout bounds every API server request (the capacity annotation, metrics
	// authentication). Default 10s.
	APITimeout time.Duration
}

// AddFlags binds o to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.ConfigFile, "config-file", "/etc/pcidp/config.json", "sriov-network-device-plugin resourceList JSON file")
	fs.StringVar(&o.ResourcePrefix, "resource-prefix", config.DefaultResourcePrefix, "resource prefix of entries that set no resourcePrefix")
	fs.StringVar(&o.SysfsRoot, "sysfs-root", "/sys", "where sysfs is mounted")
	fs.StringVar(&o.DevicePluginDir, "device-plugin-dir", "/var/lib/kubelet/device-plugins", "kubelet device plugin directory (holds kubelet.sock)")
	fs.StringVar(&o.PodResourcesSocket, "pod-resources-socket", "/var/lib/kubelet/pod-resources/kubelet.sock", "kubelet PodResources API socket")
	fs.StringVar(&o.DevInfoDir, "devinfo-dir", devinfo.DefaultDir, "directory for device-info files")
	fs.StringVar(&o.NodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name, for the capacity annotation (empty: do not publish)")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file (empty: in-cluster)")
	fs.DurationVar(&o.HealthInterval, "health-interval", 250*time.Millisecond, "health poll period")
	fs.DurationVar(&o.ReleaseInterval, "release-interval", 5*time.Second, "how often kubelet's PodResources API is asked which devices are still in use")
	fs.DurationVar(&o.ReleaseGrace, "release-grace", 30*time.Second, "how long an allocated device counts as in use before kubelet's PodResources API must list it")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", "127.0.0.1:8094", `address of /healthz and /readyz ("0": none); the plugin runs in the host's network`)
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", "127.0.0.1:8095", `address of /metrics over HTTPS, authenticated and authorized by the API server ("0": none)`)
	fs.DurationVar(&o.APITimeout, "api-timeout", 10*time.Second, "bound on every API server request")
}

func (o *Options) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.ConfigFile, "/etc/pcidp/config.json")
	def(&o.ResourcePrefix, config.DefaultResourcePrefix)
	def(&o.SysfsRoot, "/sys")
	def(&o.DevicePluginDir, "/var/lib/kubelet/device-plugins")
	def(&o.PodResourcesSocket, "/var/lib/kubelet/pod-resources/kubelet.sock")
	def(&o.DevInfoDir, devinfo.DefaultDir)
	dur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	dur(&o.HealthInterval, 250*time.Millisecond)
	dur(&o.KubeletCheckInterval, time.Second)
	dur(&o.ConfigCheckInterval, 2*time.Second)
	dur(&o.ReleaseInterval, 5*time.Second)
	dur(&o.ReleaseGrace, 30*time.Second)
	dur(&o.APITimeout, 10*time.Second)
}
