package nadcache

import (
	"fmt"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/plexus-project/plexus/cni/network"
)

// NAD is one NetworkAttachmentDefinition as the cache holds it: parsed once when it changes,
// not per admission.
type NAD struct {
	// Namespace and Name of the NetworkAttachmentDefinition.
	Namespace, Name string
	// Network is the parsed NAD; nil when Err is set.
	Network *network.Network
	// Err is why the NAD does not parse (bad CNI config, resourceName, nodeSelector).
	Err error
	// Annotations are the NAD's annotations, for resource name keys other than the standard one.
	Annotations map[string]string
}

// Key is "namespace/name".
func (n *NAD) Key() string { return n.Namespace + "/" + n.Name }

// Parse builds the cache entry of a NetworkAttachmentDefinition.
func Parse(nad *nadv1.NetworkAttachmentDefinition) *NAD {
	n, err := network.FromNAD(nad)
	return &NAD{Namespace: nad.Namespace, Name: nad.Name, Network: n, Err: err, Annotations: nad.Annotations}
}

// Lookup reads NADs and the pods using them from memory.
type Lookup interface {
	// NAD returns the NetworkAttachmentDefinition namespace/name, or a *NotFoundError.
	NAD(namespace, name string) (*NAD, error)
	// PodsUsing returns up to limit running (not finished) pods whose networks annotations
	// select the NAD key ("namespace/name"), as "namespace/name", sorted, and how many
	// there are in all.
	PodsUsing(key string, limit int) (pods []string, total int, err error)
}

// NotFoundError says a NetworkAttachmentDefinition does not exist.
type NotFoundError struct{ Namespace, Name string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("NetworkAttachmentDefinition %s/%s not found", e.Namespace, e.Name)
}
