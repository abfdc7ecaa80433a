package attach

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-project/plexus/cni/cache"
	"github.com/plexus-project/plexus/cni/conflist"
	"github.com/plexus-project/plexus/cni/network"
)

// Delegates runs CNI plugins (libcni's *CNIConfig is one, over the node's CNI bin dir).
type Delegates interface {
	AddNetworkList(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (types.Result, error)
	DelNetworkList(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error
	CheckNetworkList(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error
	GCNetworkList(ctx context.Context, list *libcni.NetworkConfigList, args *libcni.GCArgs) error
	GetStatusNetworkList(ctx context.Context, list *libcni.NetworkConfigList) error
}

var _ Delegates = (*libcni.CNIConfig)(nil)

// Pods reads the pods of this node. Pod returns an error satisfying apierrors.IsNotFound when
// the pod does not exist.
type Pods interface {
	Pod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
}

// NADs reads NetworkAttachmentDefinitions. NAD returns an error satisfying apierrors.IsNotFound
// when there is none.
type NADs interface {
	NAD(namespace, name string) (*nadv1.NetworkAttachmentDefinition, error)
}

// Reporter writes what the server has to say about a pod to the API.
type Reporter interface {
	// WriteStatus sets the pod's network-status annotation (one patch of pods/status).
	WriteStatus(ctx context.Context, pod *corev1.Pod, statuses []network.Status) error
	// Warn records a Warning Event on the pod.
	Warn(pod *corev1.Pod, reason, message string)
}

// Devices says which devices kubelet allocated to a pod (kubelet's PodResources API).
type Devices interface {
	// PodDevices returns the device IDs of resource allocated to the pod, in kubelet's order.
	PodDevices(ctx context.Context, namespace, name, resource string) ([]string, error)
}

// DeviceInfos reads the device-info files the device plugin writes when kubelet allocates a
// device (deviceplugin/devinfo's Store is one).
type DeviceInfos interface {
	// Read returns the device-info of a device.
	Read(resource, deviceID string) (*nadv1.DeviceInfo, error)
	// List returns the devices of resource that have a file: the ones allocated to some pod of
	// the node, which the files do not name.
	List(resource string) ([]string, error)
}

// Netns does the work inside a pod's network namespace the plugins do not.
type Netns interface {
	// SetDefaultRoute makes gws (via ifName) the namespace's default routes, replacing the
	// default routes of the same IP families.
	SetDefaultRoute(netns, ifName string, gws []net.IP) error
	// CheckInterfaces verifies that each interface exists with its addresses.
	CheckInterfaces(netns string, want []Interface) error
}

// Interface is an interface of a CNI result and the addresses it should have.
type Interface struct {
	Name  string
	Addrs []net.IPNet
}

// ClusterNetworks gives the cluster default network (conflist.Writer is one).
type ClusterNetworks interface {
	Current() *conflist.ClusterNetwork
}

// Metrics observe the server's work (nil: none).
type Metrics interface {
	// Attached observes one delegate ADD of the given plugin type.
	Attached(delegateType string, d time.Duration, err error)
	// Failed counts a failed call by reason.
	Failed(command, reason string)
}

// Options configure an Attacher.
type Options struct {
	// NodeName is this node, for messages.
	NodeName string
	// BinDirs are the CNI bin dirs searched for plugins, for messages.
	BinDirs []string
	// NamespaceIsolation refuses a pod selecting a NAD of another namespace unless that
	// namespace is in GlobalNamespaces (as Multus's namespaceIsolation).
	NamespaceIsolation bool
	// GlobalNamespaces hold NADs any pod may select when NamespaceIsolation is on.
	GlobalNamespaces []string
	// AllowedPlugins, when not empty, are the only plugin types a NetworkAttachmentDefinition
	// may use (its config is written by namespace users and its plugins run as root).
	AllowedPlugins []string
	// PodWait bounds how long ADD waits for the pod to reach the cache before reading it from
	// the API (default 5s).
	PodWait time.Duration
}

// Host bundles the Attacher's access to the node and the API.
type Host struct {
	Delegates   Delegates
	Pods        Pods
	NADs        NADs
	Reporter    Reporter
	Devices     Devices
	DeviceInfos DeviceInfos
	Netns       Netns
	Cluster     ClusterNetworks
	Cache       *cache.Store
	Metrics     Metrics
}

// Attacher serves the CNI commands of one node.
type Attacher struct {
	opts Options
	host Host

	mu    sync.Mutex
	locks map[string]*containerLock
	// devices is held by an ADD from its first device until its cache entry records the devices
	// it took, so no other ADD sees them as unattached in between (see devicesFromFiles).
	devices sync.Mutex
}

type containerLock struct {
	sync.Mutex
	refs int
}

// New returns an Attacher.
func New(opts Options, host Host) *Attacher {
	if opts.PodWait <= 0 {
		opts.PodWait = 5 * time.Second
	}
	return &Attacher{opts: opts, host: host, locks: map[string]*containerLock{}}
}

// lock serializes the calls of one container (an ADD and the DEL of a timed-out ADD must not
// run at once); the returned func unlocks.
func (a *Attacher) lock(containerID string) func() {
	a.mu.Lock()
	l := a.locks[containerID]
	if l == nil {
		l = &containerLock{}
		a.locks[containerID] = l
	}
	l.refs++
	a.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		a.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(a.locks, containerID)
		}
		a.mu.Unlock()
	}
}

// Call is one CNI call as the shim forwarded it.
type Call struct {
	Command     string
	ContainerID string
	Netns       string
	IfName      string
	// Args is CNI_ARGS.
	Args string
	// Config is the shim's network configuration (with the runtime's runtimeConfig).
	Config []byte
}
