package cluster

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/plexus-project/plexus/test/repo"
)

// Options describe the cluster Up brings up. The zero value is a two-node cluster named
// "plexus" with its state in $PLEXUS_CACHE/sandbox/plexus.
type Options struct {
	// Name prefixes everything the cluster creates on the host (network namespaces, links,
	// cgroups). At most 6 lowercase letters or digits, so interface names stay within 15
	// characters. Defaults to "plexus".
	Name string

	// Dir is the state directory: kubeconfig, keys, logs, node state (containerd's snapshots
	// among them, so a filesystem overlayfs accepts as upper layer). Keep it short: unix socket
	// paths below it must fit in 108 bytes. Defaults to $PLEXUS_CACHE/sandbox/<Name>
	// (PLEXUS_CACHE defaults to $HOME/.cache/plexus).
	Dir string

	// Nodes is the number of worker nodes, 0 to 15. Defaults to 2 (use NoNodes for a control
	// plane alone).
	Nodes int
	// NoNodes starts the control plane only.
	NoNodes bool

	// NetworkID (0-15) picks the cluster's address block, so clusters with different IDs can
	// run side by side: node network 198.18.<id>.0/24 on the host bridge (the bridge has .1,
	// node N has .<10+N>), pod network 198.19.<16*id+N>.0/24 on node N, services
	// 198.18.<128+id>.0/24. Defaults to 0.
	NetworkID int

	// BinDir holds etcd, kube-apiserver, kube-scheduler, kube-controller-manager and kubelet.
	// Defaults to KUBEBUILDER_ASSETS, else $PLEXUS_CACHE/bin.
	BinDir string
	// CNIBinDir holds the CNI reference plugins (bridge, host-local, loopback, macvlan, ...),
	// copied into every node's /opt/cni/bin. Defaults to $PLEXUS_CACHE/cni/bin.
	CNIBinDir string
	// CRDDirs are applied once the API server is ready. Defaults to charts/plexus/crds of the
	// module found above the working directory (none when there is no module).
	CRDDirs []string

	// Images are imported into every node's containerd besides pause and busybox.
	Images []Image
	// SecondSchedulerImage, when set, names an image of BinDir's kube-scheduler imported into
	// every node too: the chart's second scheduler (KubeSchedulerImageRef by convention).
	SecondSchedulerImage string
	// CNIPlugins are binaries copied into every node's /opt/cni/bin besides those of
	// CNIBinDir (the node image ships them, as a kind node image ships its CNI plugins).
	CNIPlugins []string

	// SRIOV, when set, gives every node emulated SR-IOV hardware.
	SRIOV *SRIOVOptions

	// SchedulerConfig, when set, is kube-scheduler's KubeSchedulerConfiguration (YAML, without
	// clientConnection and leaderElection, which Up fills), e.g. with a scheduler extender.
	SchedulerConfig string

	// Users are extra identities the API server knows by static token, e.g. the one a CNI
	// plugin uses from the nodes; their permissions come from RBAC objects the caller creates.
	Users []User
	// NodeKubeconfigs writes on every node, at each path (inside one of the node's own
	// directories, e.g. /etc/cni/net.d/...), a kubeconfig for the named user of Users.
	NodeKubeconfigs map[string]string

	// AuditUsers, when set, makes kube-apiserver write an audit log (<Dir>/logs/audit.log,
	// Cluster.AuditLogPath) of every request these users make, at the Metadata level, e.g.
	// "system:serviceaccount:kube-system:plexus-daemon" to count a component's API requests
	// (ReadAudit). Nobody else's requests are logged.
	AuditUsers []string
}

// User is an identity of the API server.
type User struct {
	Name   string
	Groups []string
}

// SRIOVOptions shape the emulated SR-IOV hardware of every node.
type SRIOVOptions struct {
	// PFs is the number of physical functions per node. Defaults to 2.
	PFs int
	// VFsPerPF is the number of virtual functions of each PF. Defaults to 4.
	VFsPerPF int
}

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9]{0,5}$`)

func (o *Options) setDefaults() error {
	if o.Name == "" {
		o.Name = "plexus"
	}
	if !namePattern.MatchString(o.Name) {
		return fmt.Errorf("cluster name %q: use 1 to 6 lowercase letters or digits, starting with a letter", o.Name)
	}
	if o.Nodes == 0 && !o.NoNodes {
		o.Nodes = 2
	}
	if o.NoNodes {
		o.Nodes = 0
	}
	if o.Nodes < 0 || o.Nodes > 15 {
		return fmt.Errorf("%d nodes: a cluster has 1 to 15 nodes", o.Nodes)
	}
	if o.NetworkID < 0 || o.NetworkID > 15 {
		return fmt.Errorf("network ID %d: use 0 to 15", o.NetworkID)
	}
	cache := os.Getenv("PLEXUS_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return fmt.Errorf("finding the cache directory (set PLEXUS_CACHE): %w", err)
		}
		cache = filepath.Join(home, ".cache", "plexus")
	}
	if o.Dir == "" {
		o.Dir = DefaultDir(cache, o.Name)
	}
	abs, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	o.Dir = abs
	if sock := len(o.Dir) + len("/nodes/"+o.Name+"-node15/root"+containerdSocket); sock > 107 {
		return fmt.Errorf("state directory %s is too long: the containerd sockets below it would take %d bytes, over the 107 a unix socket path may have", o.Dir, sock)
	}
	if o.BinDir == "" {
		o.BinDir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if o.BinDir == "" {
		o.BinDir = filepath.Join(cache, "bin")
	}
	if o.CNIBinDir == "" {
		o.CNIBinDir = filepath.Join(cache, "cni", "bin")
	}
	if o.CRDDirs == nil {
		if root, err := repo.Root(); err == nil {
			o.CRDDirs = []string{filepath.Join(root, "charts", "plexus", "crds")}
		}
	}
	for path, user := range o.NodeKubeconfigs {
		if !slices.ContainsFunc(o.Users, func(u User) bool { return u.Name == user }) {
			return fmt.Errorf("node kubeconfig %s: user %q is not in Users", path, user)
		}
		if !slices.ContainsFunc(nodeBinds, func(b string) bool { return strings.HasPrefix(path, b+"/") }) {
			return fmt.Errorf("node kubeconfig %s: not inside one of the node's own directories %v", path, nodeBinds)
		}
	}
	if o.SRIOV != nil {
		if o.SRIOV.PFs == 0 {
			o.SRIOV.PFs = 2
		}
		if o.SRIOV.VFsPerPF == 0 {
			o.SRIOV.VFsPerPF = 4
		}
	}
	return nil
}

// StateDir is the state directory these options give, defaults applied.
func (o Options) StateDir() (string, error) {
	if err := o.setDefaults(); err != nil {
		return "", err
	}
	return o.Dir, nil
}

// DefaultDir is the state directory of the cluster called name: <cache>/sandbox/<name>.
func DefaultDir(cache, name string) string {
	return filepath.Join(cache, "sandbox", name)
}

// addressing is the cluster's address plan, derived from Options.NetworkID.
type addressing struct{ id int }

// BridgeIP is the host end of the node network; the control plane listens on it.
func (a addressing) BridgeIP() netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(a.id), 1}) }

// NodePrefix is the node network.
func (a addressing) NodePrefix() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(a.id), 0}), 24)
}

// NodeIP is node n's address (n counts from 1).
func (a addressing) NodeIP(n int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, byte(a.id), byte(10 + n)})
}

// PodPrefix is node n's pod network.
func (a addressing) PodPrefix(n int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(16*a.id + n), 0}), 24)
}

// ServicePrefix is the service cluster IP range.
func (a addressing) ServicePrefix() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(128 + a.id), 0}), 24)
}

// KubernetesServiceIP is the cluster IP of the default/kubernetes service.
func (a addressing) KubernetesServiceIP() netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, byte(128 + a.id), 1})
}
