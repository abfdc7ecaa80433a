package extender

import (
	"encoding/json"
	"fmt"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/ipam/allocator"
	"github.com/plexus-project/plexus/ipam/config"
)

// PlexusIPAM is the IPAM plugin type whose pools the extender counts.
const PlexusIPAM = "plexus-ipam"

// nadState is one NetworkAttachmentDefinition as the extender uses it.
type nadState struct {
	key string
	// net is the parsed Network; nil when the NAD is invalid (err says why).
	net *network.Network
	err error
	// pools are the plexus-ipam pools of the network, one address each per attachment; none
	// when the network uses another IPAM or its ranges live in a node-local file.
	pools []allocator.Pool
	// selector is net.Selector(), nil when the network is on every node; selectorText is it
	// written as key=value pairs, for messages.
	selector     labels.Selector
	selectorText string
	// slot is the NAD's bit in each node's presence set; -1 without a selector.
	slot int
}

func newNADState(nad *nadv1.NetworkAttachmentDefinition) *nadState {
	ns := &nadState{key: nad.Namespace + "/" + nad.Name, slot: -1}
	n, err := network.FromNAD(nad)
	if err != nil {
		ns.err = err
		return ns
	}
	ns.net = n
	if len(n.NodeSelector) > 0 {
		ns.selector = n.Selector()
		ns.selectorText = ns.selector.String()
	}
	if n.IPAM == nil || n.IPAM.Type != PlexusIPAM {
		return ns
	}
	pools, err := ipamPools(n)
	if err != nil {
		ns.err = fmt.Errorf("NetworkAttachmentDefinition %s: the %s section: %w", ns.key, PlexusIPAM, err)
		ns.net = nil
		return ns
	}
	ns.pools = pools
	return ns
}

// ipamPools are the pools plexus-ipam hands a network's addresses from, named as the plugin
// names them (ipam/config parses the section, ipam/allocator names the pools). A section whose
// ranges come from a node-local file (configuration_path) has none the extender can see.
func ipamPools(n *network.Network) ([]allocator.Pool, error) {
	var probe struct {
		ConfigurationPath string            `json:"configuration_path"`
		Range             string            `json:"range"`
		IPRanges          []json.RawMessage `json:"ipRanges"`
	}
	_ = json.Unmarshal(n.IPAM.Raw, &probe)
	if probe.ConfigurationPath != "" && probe.Range == "" && len(probe.IPRanges) == 0 {
		return nil, nil
	}
	stdin, err := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": n.Config.Name, "ipam": n.IPAM.Raw})
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse(stdin, nil, "")
	if err != nil {
		return nil, err
	}
	pools := make([]allocator.Pool, 0, len(cfg.Ranges))
	for _, r := range cfg.Ranges {
		pools = append(pools, allocator.NewPool(cfg.NetworkName, r))
	}
	return pools, nil
}
