package config

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/plexus-project/plexus/ipam/ranges"
)

// Defaults used when a field is absent.
const (
	// DefaultKubeconfig is where the plugin's kubeconfig is installed on every node.
	DefaultKubeconfig = "/etc/cni/net.d/plexus-ipam.d/plexus-ipam.kubeconfig"
	// DefaultLockDir holds the node-local lock files.
	DefaultLockDir = "/run/plexus-ipam"
	// DefaultTimeout bounds one ADD or DEL, API retries included.
	DefaultTimeout = 30 * time.Second
	// DefaultStickyTTL is how long a sticky address waits for its pod to come back.
	DefaultStickyTTL = 10 * time.Minute
)

// FlatFilePaths are read, first found wins, when configuration_path is not set (Whereabouts'
// locations, so an existing installation's flat file keeps working).
var FlatFilePaths = []string{
	"/etc/kubernetes/cni/net.d/whereabouts.d/whereabouts.conf",
	"/etc/cni/net.d/whereabouts.d/whereabouts.conf",
}

// NetConf is the part of the network configuration the plugin reads.
type NetConf struct {
	CNIVersion    string `json:"cniVersion"`
	Name          string `json:"name"`
	IPAM          IPAM   `json:"ipam"`
	RuntimeConfig struct {
		IPs []string `json:"ips,omitempty"`
	} `json:"runtimeConfig"`
	Args struct {
		CNI struct {
			IPs []string `json:"ips,omitempty"`
		} `json:"cni"`
	} `json:"args"`
}

// IPAM is the "ipam" object, field names as Whereabouts spells them.
type IPAM struct {
	Type                    string         `json:"type"`
	Range                   string         `json:"range,omitempty"`
	RangeStart              string         `json:"range_start,omitempty"`
	RangeEnd                string         `json:"range_end,omitempty"`
	Exclude                 []string       `json:"exclude,omitempty"`
	Gateway                 string         `json:"gateway,omitempty"`
	IPRanges                []RangeConf    `json:"ipRanges,omitempty"`
	Routes                  []*types.Route `json:"routes,omitempty"`
	DNS                     types.DNS      `json:"dns"`
	NetworkName             string         `json:"network_name,omitempty"`
	EnableOverlappingRanges *bool          `json:"enable_overlapping_ranges,omitempty"`
	Kubernetes              struct {
		Kubeconfig string `json:"kubeconfig,omitempty"`
	} `json:"kubernetes"`
	LogLevel          string `json:"log_level,omitempty"`
	LogFile           string `json:"log_file,omitempty"`
	ConfigurationPath string `json:"configuration_path,omitempty"`

	// NodeName names the node whose blocks this call allocates from. Default: the node
	// daemon's (NODE_NAME / KUBERNETES_NODE_NAME in the plugin's environment), else the host name.
	NodeName string `json:"node_name,omitempty"`
	// StickyIPs keeps a pod's address reserved for its namespace/name after DEL, so a
	// StatefulSet pod re-created under the same name gets the same address back.
	StickyIPs bool `json:"sticky_ips,omitempty"`
	// StickyTTL is how long such a reservation waits (Go duration, default 10m).
	StickyTTL string `json:"sticky_ttl,omitempty"`
	// LockDir holds the node-local lock files (default /run/plexus-ipam).
	LockDir string `json:"lock_dir,omitempty"`
	// Timeout bounds one call (Go duration, default 30s).
	Timeout string `json:"timeout,omitempty"`
}

// RangeConf is one entry of ipRanges.
type RangeConf struct {
	Range      string   `json:"range"`
	RangeStart string   `json:"range_start,omitempty"`
	RangeEnd   string   `json:"range_end,omitempty"`
	Exclude    []string `json:"exclude,omitempty"`
}

// Pod identifies the pod of a call, from CNI_ARGS.
type Pod struct {
	Namespace, Name, UID string
}

// Config is a parsed, validated configuration for one call.
type Config struct {
	CNIVersion string
	// NetworkName is network_name: ranges of different networks may hand out the same address.
	NetworkName string
	// Ranges hands out one address each (dual-stack: one IPv4 and one IPv6 range).
	Ranges []*ranges.Range
	Routes []*types.Route
	DNS    types.DNS

	Kubeconfig string
	NodeName   string
	Sticky     bool
	StickyTTL  time.Duration
	LockDir    string
	Timeout    time.Duration
	LogLevel   string
	LogFile    string

	// Requested are the addresses the pod asks for, at most one per range, each inside one.
	Requested []netip.Addr
	Pod       Pod

	// Warnings are what was ignored (a kubeconfig outside the allowed places, a node_name the
	// node overrides), for the plugin's log.
	Warnings []string
}

// ConfigurationPath returns the flat file the configuration names, if any, so the caller can read
// it before calling Parse.
func ConfigurationPath(stdin []byte) string {
	var c struct {
		IPAM struct {
			ConfigurationPath string `json:"configuration_path"`
		} `json:"ipam"`
	}
	_ = json.Unmarshal(stdin, &c)
	return c.IPAM.ConfigurationPath
}

// Parse reads the network configuration from stdin, the flat file's content (nil when there is
// none; the ipam section wins over it, as in Whereabouts) and CNI_ARGS, with no node settings.
func Parse(stdin, flat []byte, cniArgs string) (*Config, error) {
	return ParseForNode(stdin, flat, nil, cniArgs)
}

// ParseForNode is Parse on a node whose own settings are node (nil: none): the node's name,
// kubeconfig and lock_dir win over the network configuration's. The host paths and node name of
// the network configuration are checked by ValidateHostPaths: one outside the node's Plexus
// directories is a *HostPathError, a kubeconfig outside them is ignored with a warning.
func ParseForNode(stdin, flat []byte, node *NodeConfig, cniArgs string) (*Config, error) {
	ipamJSON, n, warnings, err := mergeFlat(stdin, flat)
	if err != nil {
		return nil, err
	}
	var ipam IPAM
	if err := json.Unmarshal(ipamJSON, &ipam); err != nil {
		return nil, fmt.Errorf("parsing the ipam section of network %q: %w", n.Name, err)
	}
	c := &Config{
		CNIVersion:  n.CNIVersion,
		NetworkName: ipam.NetworkName,
		Routes:      ipam.Routes,
		DNS:         ipam.DNS,
		Kubeconfig:  ipam.Kubernetes.Kubeconfig,
		NodeName:    ipam.NodeName,
		Sticky:      ipam.StickyIPs,
		LockDir:     ipam.LockDir,
		LogLevel:    ipam.LogLevel,
		LogFile:     ipam.LogFile,
		StickyTTL:   DefaultStickyTTL,
		Timeout:     DefaultTimeout,
		Warnings:    warnings,
	}
	c.applyNode(node)
	if c.StickyTTL, err = duration("sticky_ttl", ipam.StickyTTL, DefaultStickyTTL); err != nil {
		return nil, err
	}
	if c.Timeout, err = duration("timeout", ipam.Timeout, DefaultTimeout); err != nil {
		return nil, err
	}
	if c.Ranges, err = parseRanges(&ipam); err != nil {
		return nil, fmt.Errorf("network %q: %w", n.Name, err)
	}
	args := parseCNIArgs(cniArgs)
	c.Pod = Pod{Namespace: args["K8S_POD_NAMESPACE"], Name: args["K8S_POD_NAME"], UID: args["K8S_POD_UID"]}

	requested := append(append([]string{}, n.RuntimeConfig.IPs...), n.Args.CNI.IPs...)
	if ip := args["IP"]; ip != "" {
		requested = append(requested, strings.Split(ip, ",")...)
	}
	if c.Requested, err = matchRequested(requested, c.Ranges); err != nil {
		return nil, fmt.Errorf("network %q: %w", n.Name, err)
	}
	return c, nil
}

// mergeFlat returns the ipam section with the flat file's fields filled in where absent, after
// checking the host paths the network configuration itself sets (the flat file is the node's).
func mergeFlat(stdin, flat []byte) ([]byte, *NetConf, []string, error) {
	var n NetConf
	if err := json.Unmarshal(stdin, &n); err != nil {
		return nil, nil, nil, fmt.Errorf("parsing the network configuration: %w", err)
	}
	var raw struct {
		IPAM map[string]json.RawMessage `json:"ipam"`
	}
	if err := json.Unmarshal(stdin, &raw); err != nil || raw.IPAM == nil {
		return nil, nil, nil, fmt.Errorf("network %q has no ipam section", n.Name)
	}
	errs, warnings := ValidateHostPaths(&n.IPAM, field.NewPath("ipam"))
	if len(errs) > 0 {
		return nil, nil, nil, &HostPathError{Errs: errs}
	}
	if k := n.IPAM.Kubernetes.Kubeconfig; k != "" && !KubeconfigAllowed(k) {
		delete(raw.IPAM, "kubernetes") // the flat file's or the node's is used instead
	}
	merged := map[string]json.RawMessage{}
	if len(flat) > 0 {
		if err := json.Unmarshal(flat, &merged); err != nil {
			return nil, nil, nil, fmt.Errorf("parsing the flat configuration file %q: %w", n.IPAM.ConfigurationPath, err)
		}
	}
	for k, v := range raw.IPAM {
		merged[k] = v
	}
	b, err := json.Marshal(merged)
	return b, &n, warnings, err
}

func parseRanges(ipam *IPAM) ([]*ranges.Range, error) {
	var specs []ranges.Spec
	if ipam.Range != "" {
		specs = append(specs, ranges.Spec{Range: ipam.Range, RangeStart: ipam.RangeStart, RangeEnd: ipam.RangeEnd, Exclude: ipam.Exclude})
	}
	for _, r := range ipam.IPRanges {
		specs = append(specs, ranges.Spec{Range: r.Range, RangeStart: r.RangeStart, RangeEnd: r.RangeEnd, Exclude: r.Exclude})
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("the ipam section has neither \"range\" nor \"ipRanges\": set one")
	}
	var gw netip.Addr
	if ipam.Gateway != "" {
		var err error
		if gw, err = netip.ParseAddr(strings.TrimSpace(ipam.Gateway)); err != nil {
			return nil, fmt.Errorf("gateway %q is not an IP address: %w", ipam.Gateway, err)
		}
	}
	var out []*ranges.Range
	for i, s := range specs {
		r, err := ranges.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("range %d: %w", i, err)
		}
		// One gateway field, as in Whereabouts: it applies to the ranges of its family.
		if gw.IsValid() && gw.Unmap().Is4() == r.Is4() {
			s.Gateway = gw.String()
			if r, err = ranges.Parse(s); err != nil {
				return nil, fmt.Errorf("range %d: %w", i, err)
			}
		}
		for j, o := range out {
			if o.Overlaps(r) {
				return nil, fmt.Errorf("ranges %d (%s) and %d (%s) overlap: one call hands out one address per range", j, o.Subnet(), i, r.Subnet())
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func matchRequested(requested []string, rs []*ranges.Range) ([]netip.Addr, error) {
	var out []netip.Addr
	used := make([]bool, len(rs))
	for _, s := range requested {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			p, perr := netip.ParsePrefix(s)
			if perr != nil {
				return nil, fmt.Errorf("requested address %q is not an IP address: %w", s, err)
			}
			a = p.Addr()
		}
		a = a.Unmap()
		found := false
		for i, r := range rs {
			if r.Subnet().Contains(a) {
				if !r.Contains(a) {
					return nil, fmt.Errorf("requested address %s is outside the usable addresses of range %s (excluded, the gateway, or outside range_start..range_end): ask for another", a, r)
				}
				if used[i] {
					return nil, fmt.Errorf("two requested addresses fall in range %s: ask for at most one per range", r.Subnet())
				}
				used[i], found = true, true
				out = append(out, a)
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("requested address %s is outside every configured range: ask for an address inside one of them", a)
		}
	}
	return out, nil
}

func duration(field, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s %q is not a positive Go duration (e.g. \"30s\")", field, s)
	}
	return d, nil
}

// parseCNIArgs splits "K1=V1;K2=V2"; malformed pairs are ignored, as runtimes add their own.
func parseCNIArgs(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}
