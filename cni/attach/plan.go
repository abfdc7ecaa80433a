package attach

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/plexus-project/plexus/cni/cache"
	"github.com/plexus-project/plexus/cni/network"
)

// shimConf is what the server reads of the shim's stdin config.
type shimConf struct {
	CNIVersion    string         `json:"cniVersion"`
	Name          string         `json:"name"`
	RuntimeConfig map[string]any `json:"runtimeConfig,omitempty"`
}

func parseShimConf(b []byte) (*shimConf, error) {
	var c shimConf
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "plexus: cannot parse the network configuration the runtime passed", err.Error())
	}
	if c.CNIVersion == "" {
		c.CNIVersion = "0.3.1"
	}
	return &c, nil
}

// podRef is the pod a call is for, from CNI_ARGS.
type podRef struct {
	Namespace, Name, UID string
	// Args are all CNI_ARGS pairs, passed on to the delegates.
	Args [][2]string
}

func parseArgs(s string) podRef {
	var p podRef
	hasIgnore := false
	for _, kv := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		p.Args = append(p.Args, [2]string{k, v})
		switch k {
		case "K8S_POD_NAMESPACE":
			p.Namespace = v
		case "K8S_POD_NAME":
			p.Name = v
		case "K8S_POD_UID":
			p.UID = v
		case "IgnoreUnknown":
			hasIgnore = true
		}
	}
	if !hasIgnore {
		p.Args = append([][2]string{{"IgnoreUnknown", "true"}}, p.Args...)
	}
	return p
}

// delegate is one network to attach: its cache record and its parsed conflist.
type delegate struct {
	att  cache.Attachment
	list *libcni.NetworkConfigList
	// sel is the pod's selection (nil for the default network).
	sel *network.Selection
	// types are the plugin types, for messages and metrics ("macvlan", "bridge+tuning").
	types string
}

// planError is a problem with what the pod asks for: a CNI error, nothing attached yet.
func planError(code uint, format string, args ...any) error {
	return types.NewError(code, fmt.Sprintf(format, args...), "")
}

// plan resolves the pod's networks into delegates: the default network as ifName, then each
// selected network.
func (a *Attacher) plan(ctx context.Context, c *Call, conf *shimConf, ref podRef, pod *corev1.Pod, turn *deviceTurn) ([]*delegate, error) {
	def, err := a.defaultDelegate(c, conf, ref, pod)
	if err != nil {
		return nil, err
	}
	out := []*delegate{def}
	sels, err := network.ParseSelections(pod.Annotations[network.NetworksAnnotation], pod.Namespace)
	if err != nil {
		return nil, planError(types.ErrInvalidNetworkConfig, "pod %s/%s: annotation %s: %v", pod.Namespace, pod.Name, network.NetworksAnnotation, err)
	}
	devices := map[string][]string{} // resource -> device IDs not yet given
	for i, sel := range sels {
		n, err := a.resolve(pod, sel.Namespace, sel.Name)
		if err != nil {
			return nil, err
		}
		ifName := sel.InterfaceRequest
		if ifName == "" {
			ifName = fmt.Sprintf("net%d", i+1)
		}
		if ifName == c.IfName {
			return nil, planError(types.ErrInvalidNetworkConfig, "pod %s/%s: network %s asks for interface %s, which is the default network's: choose another name", pod.Namespace, pod.Name, sel.Key(), ifName)
		}
		d := &delegate{sel: sel, types: strings.Join(n.Types, "+"), att: cache.Attachment{
			Network: n.Key(), IfName: ifName, Args: withCNIArgs(ref.Args), CapabilityArgs: selectionCapabilities(sel),
		}}
		if n.ResourceName != "" {
			turn.take()
			id, err := a.takeDevice(ctx, pod, n, devices)
			if err != nil {
				return nil, err
			}
			d.att.Resource, d.att.DeviceID = n.ResourceName, id
			d.att.CapabilityArgs["deviceID"] = id
		}
		cfg, err := delegateConfig(n.Config, conf.CNIVersion, d.att.DeviceID, sel.CNIArgs)
		if err != nil {
			return nil, planError(types.ErrInvalidNetworkConfig, "network %s: its CNI config: %v", n.Key(), err)
		}
		d.att.Config, d.list = cfg.Bytes, cfg
		out = append(out, d)
	}
	return out, nil
}

// defaultDelegate is the pod's default network: the one its default-network annotation names,
// else the cluster network.
func (a *Attacher) defaultDelegate(c *Call, conf *shimConf, ref podRef, pod *corev1.Pod) (*delegate, error) {
	d := &delegate{att: cache.Attachment{Default: true, IfName: c.IfName, Args: ref.Args, CapabilityArgs: conf.RuntimeConfig}}
	var list *libcni.NetworkConfigList
	if ann := pod.Annotations[network.DefaultNetworkAnnotation]; ann != "" {
		sel, err := network.ParseDefaultNetwork(ann, pod.Namespace)
		if err != nil {
			return nil, planError(types.ErrInvalidNetworkConfig, "pod %s/%s: annotation %s: %v", pod.Namespace, pod.Name, network.DefaultNetworkAnnotation, err)
		}
		n, err := a.resolve(pod, sel.Namespace, sel.Name)
		if err != nil {
			return nil, err
		}
		list, d.att.Network, d.types = n.Config, n.Key(), strings.Join(n.Types, "+")
	} else {
		cluster := a.host.Cluster.Current()
		if cluster == nil {
			return nil, planError(types.ErrTryAgainLater, "plexus-daemon on node %s does not know the cluster network yet: no CNI config besides its own in the conf dir", a.opts.NodeName)
		}
		list, d.att.Network = cluster.Config, cluster.Config.Name
		for _, p := range list.Plugins {
			d.types += "+" + p.Network.Type
		}
		d.types = strings.TrimPrefix(d.types, "+")
	}
	cfg, err := delegateConfig(list, conf.CNIVersion, "", nil)
	if err != nil {
		return nil, planError(types.ErrInvalidNetworkConfig, "default network %s: %v", d.att.Network, err)
	}
	d.att.Config, d.list = cfg.Bytes, cfg
	return d, nil
}

// resolve reads and parses the NAD namespace/name a pod selected, applying namespace isolation.
func (a *Attacher) resolve(pod *corev1.Pod, namespace, name string) (*network.Network, error) {
	if a.opts.NamespaceIsolation && namespace != pod.Namespace && !slices.Contains(a.opts.GlobalNamespaces, namespace) {
		return nil, planError(types.ErrInvalidNetworkConfig,
			"pod %s/%s selects network %s/%s of another namespace, which namespace isolation refuses: use a NetworkAttachmentDefinition in namespace %s, or ask the cluster admin to list %s in --cni-global-namespaces",
			pod.Namespace, pod.Name, namespace, name, pod.Namespace, namespace)
	}
	nad, err := a.host.NADs.NAD(namespace, name)
	if apierrors.IsNotFound(err) {
		return nil, planError(types.ErrInvalidNetworkConfig,
			"pod %s/%s selects network %s/%s, but there is no NetworkAttachmentDefinition %s in namespace %s: create it or fix the pod's %s annotation",
			pod.Namespace, pod.Name, namespace, name, name, namespace, network.NetworksAnnotation)
	}
	if err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("reading NetworkAttachmentDefinition %s/%s", namespace, name), err.Error())
	}
	n, err := network.FromNAD(nad)
	if err != nil {
		return nil, planError(types.ErrInvalidNetworkConfig, "pod %s/%s selects network %s/%s, whose config is invalid: %v", pod.Namespace, pod.Name, namespace, name, err)
	}
	if allowed := a.opts.AllowedPlugins; len(allowed) > 0 {
		for _, t := range n.Types {
			if !slices.Contains(allowed, t) {
				return nil, planError(types.ErrInvalidNetworkConfig,
					"network %s/%s uses plugin type %q, which the cluster admin does not allow on node %s (--cni-allowed-plugins=%s): use an allowed plugin",
					namespace, name, t, a.opts.NodeName, strings.Join(allowed, ","))
			}
		}
	}
	return n, nil
}

// takeDevice gives the next device of n's resource that kubelet allocated to the pod.
func (a *Attacher) takeDevice(ctx context.Context, pod *corev1.Pod, n *network.Network, left map[string][]string) (string, error) {
	ids, seen := left[n.ResourceName]
	if !seen {
		if a.host.Devices == nil {
			return "", planError(types.ErrInternal, "network %s needs a device of %s, but plexus-daemon on node %s has no PodResources client", n.Key(), n.ResourceName, a.opts.NodeName)
		}
		all, err := a.host.Devices.PodDevices(ctx, pod.Namespace, pod.Name, n.ResourceName)
		if err != nil {
			if all, err = a.devicesFromFiles(pod, n.ResourceName, err); err != nil {
				return "", types.NewError(types.ErrTryAgainLater, fmt.Sprintf("network %s: reading the %s devices kubelet allocated to pod %s/%s", n.Key(), n.ResourceName, pod.Namespace, pod.Name), err.Error())
			}
		}
		ids = all
	}
	if len(ids) == 0 {
		return "", planError(types.ErrInvalidNetworkConfig,
			"network %s needs a device of %s, but kubelet allocated none (or too few) to pod %s/%s: the pod must request one %s per network using it (the plexus webhook adds the request)",
			n.Key(), n.ResourceName, pod.Namespace, pod.Name, n.ResourceName)
	}
	left[n.ResourceName] = ids[1:]
	return ids[0], nil
}

// selectionCapabilities are the runtimeConfig values a selection asks for, under the
// capability names of the CNI conventions.
func selectionCapabilities(sel *network.Selection) map[string]any {
	caps := map[string]any{}
	if len(sel.IPRequest) > 0 {
		caps["ips"] = sel.IPRequest
	}
	if sel.MacRequest != "" {
		caps["mac"] = sel.MacRequest
	}
	if sel.InfinibandGUIDRequest != "" {
		caps["infinibandGUID"] = sel.InfinibandGUIDRequest
	}
	if sel.BandwidthRequest != nil {
		caps["bandwidth"] = sel.BandwidthRequest
	}
	if len(sel.PortMappingsRequest) > 0 {
		caps["portMappings"] = sel.PortMappingsRequest
	}
	return caps
}

func withCNIArgs(args [][2]string) [][2]string { return slices.Clone(args) }

// delegateConfig is list as the delegates get it: with a cniVersion (the runtime's when it has
// none), deviceID and pciBusID at the top of every plugin when a device was given (as Multus
// does; sriov-cni and host-device read them there), and the selection's cni-args merged into
// every plugin's args.cni.
func delegateConfig(list *libcni.NetworkConfigList, cniVersion, deviceID string, cniArgs *map[string]any) (*libcni.NetworkConfigList, error) {
	var raw map[string]any
	if err := json.Unmarshal(list.Bytes, &raw); err != nil {
		return nil, err
	}
	if v, _ := raw["cniVersion"].(string); v == "" {
		raw["cniVersion"] = cniVersion
	}
	plugins, _ := raw["plugins"].([]any)
	for _, p := range plugins {
		plugin, ok := p.(map[string]any)
		if !ok {
			continue
		}
		if deviceID != "" {
			plugin["deviceID"] = deviceID
			plugin["pciBusID"] = deviceID
		}
		if cniArgs != nil && len(*cniArgs) > 0 {
			args, _ := plugin["args"].(map[string]any)
			if args == nil {
				args = map[string]any{}
			}
			cni, _ := args["cni"].(map[string]any)
			if cni == nil {
				cni = map[string]any{}
			}
			for k, v := range *cniArgs {
				cni[k] = v
			}
			args["cni"] = cni
			plugin["args"] = args
		}
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	return libcni.NetworkConfFromBytes(b)
}
