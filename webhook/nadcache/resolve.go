package nadcache

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/webhook"
)

// Attachment is one network a pod selects, resolved to its NAD.
type Attachment struct {
	// Index is the element's position in the networks annotation (0-based); -1 for the
	// default network.
	Index int
	// Selection is the element as parsed.
	Selection *network.Selection
	// NAD is the selected NetworkAttachmentDefinition, valid (NAD.Err is nil).
	NAD *NAD
}

// HasNetworks reports whether a pod selects secondary networks or replaces its default one.
func HasNetworks(pod *corev1.Pod) bool {
	_, n := pod.Annotations[network.NetworksAnnotation]
	_, d := pod.Annotations[network.DefaultNetworkAnnotation]
	return n || d
}

// Selections parses the pod's networks and default-network annotations; elements without a
// namespace get namespace (the pod's, which a CREATE request carries even when the object does
// not). The default network, if any, comes last with Index -1.
func Selections(pod *corev1.Pod, namespace string) ([]*network.Selection, *network.Selection, error) {
	sels, err := network.ParseSelections(pod.Annotations[network.NetworksAnnotation], namespace)
	if err != nil {
		return nil, nil, webhook.Refuse(webhook.ReasonBadAnnotation, "pod annotation %s: %v", network.NetworksAnnotation, err)
	}
	var def *network.Selection
	if a, ok := pod.Annotations[network.DefaultNetworkAnnotation]; ok {
		if def, err = network.ParseDefaultNetwork(a, namespace); err != nil {
			return nil, nil, webhook.Refuse(webhook.ReasonBadAnnotation, "pod annotation %s: %v", network.DefaultNetworkAnnotation, err)
		}
	}
	return sels, def, nil
}

// Isolation is namespace isolation (Multus' namespaceIsolation): a pod may select only the NADs
// of its own namespace and of the Shared ones. A nil *Isolation allows every namespace.
type Isolation struct {
	// Shared are the namespaces whose NADs pods of every namespace may select (e.g. "default").
	Shared []string
}

// Check refuses a selection s of a pod in podNamespace that crosses namespaces; i is the
// element's index (-1: the default network), for the message.
func (iso *Isolation) Check(podNamespace string, i int, s *network.Selection) error {
	if iso == nil || s.Namespace == podNamespace || slices.Contains(iso.Shared, s.Namespace) {
		return nil
	}
	return webhook.Refuse(webhook.ReasonNamespaceIsolation,
		"%s: pods of namespace %q may not select NetworkAttachmentDefinitions of namespace %q (namespace isolation; shared namespaces: %s); create the NAD in %q, or ask the cluster admin to share %q (--shared-namespaces)",
		Where(i, s), podNamespace, s.Namespace, sharedList(iso.Shared), podNamespace, s.Namespace)
}

func sharedList(ns []string) string {
	if len(ns) == 0 {
		return "none"
	}
	return strings.Join(ns, ", ")
}

// Resolve returns the networks a pod (in namespace) selects, each with its NAD, from the lookup,
// after checking namespace isolation (iso nil: none). The error is a *webhook.Refusal naming the
// first element that does not parse, crosses namespaces, does not exist or selects an invalid
// NAD, and the fix. Isolation is checked before any lookup, so a refusal never tells whether a
// NAD of another namespace exists.
func Resolve(lookup Lookup, pod *corev1.Pod, namespace string, iso *Isolation) ([]Attachment, error) {
	sels, def, err := Selections(pod, namespace)
	if err != nil {
		return nil, err
	}
	for i, s := range sels {
		if err := iso.Check(namespace, i, s); err != nil {
			return nil, err
		}
	}
	if def != nil {
		if err := iso.Check(namespace, -1, def); err != nil {
			return nil, err
		}
	}
	out := make([]Attachment, 0, len(sels)+1)
	for i, s := range sels {
		a, err := resolveOne(lookup, i, s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if def != nil {
		a, err := resolveOne(lookup, -1, def)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func resolveOne(lookup Lookup, i int, s *network.Selection) (Attachment, error) {
	nad, err := lookup.NAD(s.Namespace, s.Name)
	where := Where(i, s)
	var nf *NotFoundError
	switch {
	case errors.As(err, &nf):
		return Attachment{}, webhook.Refuse(webhook.ReasonUnknownNetwork,
			"%s: NetworkAttachmentDefinition %s/%s does not exist; create it, or fix the name (kubectl get network-attachment-definitions -n %s lists the ones that exist)",
			where, s.Namespace, s.Name, s.Namespace)
	case err != nil:
		return Attachment{}, fmt.Errorf("%s: looking up NetworkAttachmentDefinition %s/%s: %w", where, s.Namespace, s.Name, err)
	case nad.Err != nil:
		return Attachment{}, webhook.Refuse(webhook.ReasonInvalidNetwork,
			"%s: %v; fix the NetworkAttachmentDefinition", where, nad.Err)
	}
	return Attachment{Index: i, Selection: s, NAD: nad}, nil
}

// Where names an element of the networks annotation in messages: `network 2 ("ns1/net1@eth0")`,
// or the default-network annotation for index -1.
func Where(i int, s *network.Selection) string {
	if i < 0 {
		return fmt.Sprintf("%s %q", network.DefaultNetworkAnnotation, s.Key())
	}
	el := s.Key()
	if s.InterfaceRequest != "" {
		el += "@" + s.InterfaceRequest
	}
	return fmt.Sprintf("network %d (%q)", i+1, el)
}
