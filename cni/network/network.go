package network

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Network is what a NetworkAttachmentDefinition describes, parsed once: its CNI configuration
// (always as a conflist; a single-plugin config is wrapped, as libcni does), the plugin types
// in order, the device resource a pod needs per attachment, the IPAM section and the nodes the
// network exists on.
type Network struct {
	// Namespace and Name of the NetworkAttachmentDefinition.
	Namespace, Name string

	// Config is the CNI configuration list. Its name is the NAD's when the config has none.
	Config *libcni.NetworkConfigList

	// Types are the plugin types, in the order the plugins run.
	Types []string

	// ResourceName is the device resource (e.g. intel.com/sriov_netdevice) from the
	// k8s.v1.cni.cncf.io/resourceName annotation; "" when the network needs no device.
	ResourceName string

	// IPAM is the first plugin's "ipam" section that has a type; nil when no plugin has one.
	IPAM *IPAM

	// NodeSelector is the k8s.v1.cni.cncf.io/nodeSelector annotation: the labels a node needs
	// to be attached to this network; empty means every node.
	NodeSelector map[string]string
}

// IPAM is the IPAM section of one plugin of a Network.
type IPAM struct {
	// Type is the IPAM plugin, e.g. plexus-ipam, whereabouts or host-local.
	Type string
	// Plugin is the type of the plugin whose config holds this section.
	Plugin string
	// Raw is the section as written, for the IPAM plugin's own parser.
	Raw json.RawMessage
}

// Key is "namespace/name".
func (n *Network) Key() string { return n.Namespace + "/" + n.Name }

// Selector is NodeSelector as a label selector (labels.Everything when empty).
func (n *Network) Selector() labels.Selector {
	return labels.SelectorFromSet(n.NodeSelector)
}

// FromNAD parses a NetworkAttachmentDefinition into a Network. Its error lists every problem,
// each on the field path that has it.
func FromNAD(nad *nadv1.NetworkAttachmentDefinition) (*Network, error) {
	n, errs := parseNAD(nad)
	if len(errs) > 0 {
		return nil, fmt.Errorf("NetworkAttachmentDefinition %s/%s: %w", nad.Namespace, nad.Name, errs.ToAggregate())
	}
	return n, nil
}

// ValidateNAD returns the problems of a NetworkAttachmentDefinition: an empty or unparseable
// CNI configuration, a plugin without a type, a malformed resourceName or nodeSelector.
func ValidateNAD(nad *nadv1.NetworkAttachmentDefinition) field.ErrorList {
	_, errs := parseNAD(nad)
	return errs
}

func parseNAD(nad *nadv1.NetworkAttachmentDefinition) (*Network, field.ErrorList) {
	var errs field.ErrorList
	n := &Network{Namespace: nad.Namespace, Name: nad.Name}
	annotations := field.NewPath("metadata", "annotations")

	config, err := ParseConfig(nad.Spec.Config, nad.Name)
	if err != nil {
		errs = append(errs, field.Invalid(field.NewPath("spec", "config"), field.OmitValueType{}, err.Error()))
	} else {
		n.Config = config
		for _, p := range config.Plugins {
			n.Types = append(n.Types, p.Network.Type)
			if n.IPAM == nil && p.Network.IPAM.Type != "" {
				n.IPAM = &IPAM{Type: p.Network.IPAM.Type, Plugin: p.Network.Type, Raw: ipamSection(p.Bytes)}
			}
		}
	}

	if rn, ok := nad.Annotations[ResourceNameAnnotation]; ok {
		if msgs := ValidateResourceName(rn); len(msgs) > 0 {
			errs = append(errs, field.Invalid(annotations.Key(ResourceNameAnnotation), rn, strings.Join(msgs, "; ")))
		} else {
			n.ResourceName = rn
		}
	}

	if sel, ok := nad.Annotations[NodeSelectorAnnotation]; ok {
		m, err := ParseNodeSelector(sel)
		if err != nil {
			errs = append(errs, field.Invalid(annotations.Key(NodeSelectorAnnotation), sel, err.Error()))
		} else {
			n.NodeSelector = m
		}
	}
	return n, errs
}

// ParseConfig parses a NAD's spec.config: a CNI conflist (with "plugins") or a single plugin
// config, which is wrapped into a list. A config without "name" is given defaultName, as Multus
// does. Every plugin needs a "type".
func ParseConfig(config, defaultName string) (*libcni.NetworkConfigList, error) {
	if strings.TrimSpace(config) == "" {
		return nil, fmt.Errorf("empty CNI configuration: put a CNI config or conflist JSON in spec.config")
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(config), &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if raw == nil {
		return nil, fmt.Errorf("not a JSON object: put a CNI config or conflist JSON in spec.config")
	}
	if _, ok := raw["name"]; !ok {
		raw["name"] = defaultName
	}
	if plugins, ok := raw["plugins"]; ok {
		list, ok := plugins.([]any)
		if !ok || len(list) == 0 {
			return nil, fmt.Errorf(`"plugins" must be a non-empty list of plugin configs`)
		}
		for i, p := range list {
			obj, ok := p.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("plugin %d is not a JSON object", i+1)
			}
			if typ, _ := obj["type"].(string); typ == "" {
				return nil, fmt.Errorf(`plugin %d has no "type": name the CNI plugin, e.g. "type": "tuning"`, i+1)
			}
		}
	} else {
		if typ, _ := raw["type"].(string); typ == "" {
			return nil, fmt.Errorf(`the config has neither "type" nor "plugins": name the CNI plugin, e.g. "type": "macvlan"`)
		}
		name, version := raw["name"], raw["cniVersion"]
		delete(raw, "name")
		delete(raw, "cniVersion")
		raw = map[string]any{"name": name, "cniVersion": version, "plugins": []any{raw}}
		if version == nil {
			delete(raw, "cniVersion")
		}
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	list, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		return nil, err
	}
	return list, nil
}

// ValidateResourceName checks that name is an extended resource name, domain/name, outside the
// kubernetes.io domain (e.g. intel.com/sriov_netdevice). It returns what is wrong, if anything.
func ValidateResourceName(name string) []string {
	if !strings.Contains(name, "/") {
		return []string{"must be <domain>/<name>, e.g. intel.com/sriov_netdevice"}
	}
	msgs := validation.IsQualifiedName(name)
	domain, _, _ := strings.Cut(name, "/")
	if domain == "kubernetes.io" || strings.HasSuffix(domain, ".kubernetes.io") {
		msgs = append(msgs, "the kubernetes.io domain is reserved; use your device's vendor domain, e.g. intel.com")
	}
	return msgs
}

// ParseNodeSelector reads the nodeSelector annotation: "key=value,key2=value2" or a JSON object
// of label keys to values.
func ParseNodeSelector(s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var m map[string]string
	if strings.HasPrefix(s, "{") {
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return nil, fmt.Errorf("not a JSON object of label keys to values: %w", err)
		}
	} else {
		set, err := labels.ConvertSelectorToLabelsMap(s)
		if err != nil {
			return nil, fmt.Errorf("write key=value pairs separated by commas: %w", err)
		}
		m = set
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			return nil, fmt.Errorf("label key %q: %s", k, strings.Join(msgs, "; "))
		}
		if msgs := validation.IsValidLabelValue(m[k]); len(msgs) > 0 {
			return nil, fmt.Errorf("label %q value %q: %s", k, m[k], strings.Join(msgs, "; "))
		}
	}
	return m, nil
}

func ipamSection(plugin []byte) json.RawMessage {
	var p struct {
		IPAM json.RawMessage `json:"ipam"`
	}
	if err := json.Unmarshal(plugin, &p); err != nil {
		return nil
	}
	return p.IPAM
}
