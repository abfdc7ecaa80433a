package validate

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/ipam/config"
	"github.com/plexus-project/plexus/webhook"
	"github.com/plexus-project/plexus/webhook/nadcache"
)

// Pod checks the networks a pod (created in namespace) selects: the annotations parse, each
// NAD exists and parses, and requested IPs lie in the network's range. The error is a
// *webhook.Refusal.
func (v *Validator) Pod(pod *corev1.Pod, namespace string) error {
	atts, err := nadcache.Resolve(v.lookup, pod, namespace, v.opts.Isolation)
	if err != nil {
		return err
	}
	for _, a := range atts {
		if len(a.Selection.IPRequest) == 0 {
			continue
		}
		if err := RequestedIPs(a.NAD, a.Selection.IPRequest); err != nil {
			return webhook.Refuse(webhook.ReasonIPOutOfRange, "%s: %v", nadcache.Where(a.Index, a.Selection), err)
		}
	}
	return nil
}

// NetworksChanged reports whether an update changes the networks or default-network annotation.
func NetworksChanged(old, pod *corev1.Pod) bool {
	for _, k := range []string{network.NetworksAnnotation, network.DefaultNetworkAnnotation} {
		o, oldHas := old.Annotations[k]
		n, newHas := pod.Annotations[k]
		if o != n || oldHas != newHas {
			return true
		}
	}
	return false
}

// PodUpdate judges an update that changes a pod's networks annotations: refused once the pod is
// on a node (its interfaces and devices were set up from the old ones and cannot follow), and
// otherwise checked as a new pod is, isolation included, so that an update cannot select what a
// create could not.
func (v *Validator) PodUpdate(old, pod *corev1.Pod, namespace string) error {
	if old.Spec.NodeName != "" {
		return webhook.Refuse(webhook.ReasonNetworksImmutable,
			"pod %s/%s runs on node %s: the networks of a scheduled pod cannot change (annotations %s and %s); delete the pod and create it with the new networks",
			namespace, old.Name, old.Spec.NodeName, network.NetworksAnnotation, network.DefaultNetworkAnnotation)
	}
	if !nadcache.HasNetworks(pod) {
		return nil
	}
	return v.Pod(pod, namespace)
}

// RequestedIPs checks that ips lie inside the ranges of the NAD's IPAM section, when that section
// is one plexus-ipam reads (types plexus-ipam and whereabouts, with the ranges inline). Other
// IPAM plugins check their own requests when the pod is attached.
func RequestedIPs(nad *nadcache.NAD, ips []string) error {
	plugin, ok := rangedIPAM(nad)
	if !ok {
		return nil
	}
	var conf map[string]any
	if err := json.Unmarshal(plugin, &conf); err != nil {
		return err
	}
	conf["name"] = nad.Network.Config.Name
	conf["runtimeConfig"] = map[string]any{"ips": ips}
	stdin, err := json.Marshal(conf)
	if err != nil {
		return err
	}
	if _, err := config.Parse(stdin, nil, ""); err != nil {
		return fmt.Errorf("NetworkAttachmentDefinition %s: %w", nad.Key(), err)
	}
	return nil
}

// readsIPAM reports whether ipam/config parses the IPAM configuration of this type.
func readsIPAM(ipamType string) bool { return ipamType == "plexus-ipam" || ipamType == "whereabouts" }

// rangedIPAM returns the configuration of the plugin holding a plexus-ipam-readable IPAM
// section with inline ranges (a section that only names a flat file on the nodes is skipped).
func rangedIPAM(nad *nadcache.NAD) ([]byte, bool) {
	n := nad.Network
	if n == nil || n.IPAM == nil || !readsIPAM(n.IPAM.Type) {
		return nil, false
	}
	var ranges struct {
		Range    string            `json:"range"`
		IPRanges []json.RawMessage `json:"ipRanges"`
	}
	if err := json.Unmarshal(n.IPAM.Raw, &ranges); err == nil && ranges.Range == "" && len(ranges.IPRanges) == 0 {
		return nil, false
	}
	for _, p := range n.Config.Plugins {
		if p.Network.IPAM.Type == n.IPAM.Type && p.Network.Type == n.IPAM.Plugin {
			return p.Bytes, true
		}
	}
	return nil, false
}
