package network

import nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

// Annotation keys of the NPWG multi-network specification (as Multus reads them) and Plexus's
// own.
const (
	// NetworksAnnotation on a pod selects its additional networks.
	NetworksAnnotation = nadv1.NetworkAttachmentAnnot
	// NetworkStatusAnnotation on a pod reports the attached networks.
	NetworkStatusAnnotation = nadv1.NetworkStatusAnnot
	// DefaultNetworkAnnotation on a pod replaces the cluster default network.
	DefaultNetworkAnnotation = "v1.multus-cni.io/default-network"
	// ResourceNameAnnotation on a NAD names the device resource (e.g. intel.com/sriov_netdevice)
	// a pod needs one of per attachment.
	ResourceNameAnnotation = "k8s.v1.cni.cncf.io/resourceName"
	// NodeSelectorAnnotation on a NAD restricts the nodes the network exists on
	// ("key=value,key2=value2" or a JSON object).
	NodeSelectorAnnotation = "k8s.v1.cni.cncf.io/nodeSelector"
)
