package config

import (
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-project/plexus/cni/network"
)

// Names of the webhooks inside the configurations (the API server prefixes refusals with them).
const (
	MutatePods   = "pods.mutate.plexus.io"
	ValidatePods = "pods.validate.plexus.io"
	// ValidatePodUpdates judges updates that change a pod's networks annotations.
	ValidatePodUpdates = "pod-updates.validate.plexus.io"
	ValidateNADs       = "nads.validate.plexus.io"
)

// HasNetworksExpression is the CEL expression of the pod webhooks' matchCondition: the pod has a
// networks or a default-network annotation.
const HasNetworksExpression = `has(object.metadata.annotations) && ('` + network.NetworksAnnotation +
	`' in object.metadata.annotations || '` + network.DefaultNetworkAnnotation + `' in object.metadata.annotations)`

// NetworksChangedExpression is the CEL expression of the pod-update webhook's matchCondition:
// the update changes the networks or the default-network annotation. Other pod updates (status,
// the CNI's network-status annotation, labels) never reach the webhook, so an outage of it cannot
// block them.
var NetworksChangedExpression = changed(network.NetworksAnnotation) + " || " + changed(network.DefaultNetworkAnnotation)

func changed(key string) string {
	get := func(obj string) string {
		return `(has(` + obj + `.metadata.annotations) && '` + key + `' in ` + obj + `.metadata.annotations ? ` +
			obj + `.metadata.annotations['` + key + `'] : '<absent>')`
	}
	return get("object") + " != " + get("oldObject")
}

// Options describe where the webhook is and how the API server should call it.
type Options struct {
	// Name of both configurations; default "plexus-webhook".
	Name string
	// Namespace Plexus runs in: excluded besides kube-system, and the Service's namespace;
	// default "plexus-system".
	Namespace string
	// ServiceName and ServicePort reach the webhook inside the cluster; default
	// "plexus-webhook" and 443. Ignored when URL is set.
	ServiceName string
	ServicePort int32
	// URL reaches the webhook directly (out of cluster, tests), e.g. https://127.0.0.1:8443;
	// the paths /mutate and /validate are appended.
	URL string
	// CABundle is the PEM CA that signed the serving certificate; empty when the certs component
	// or cert-manager injects it later.
	CABundle []byte
	// TimeoutSeconds bounds one call (1-30); default 5.
	TimeoutSeconds int32
	// FailurePolicy when the webhook cannot be reached; default Fail (a pod is never admitted
	// without the devices its networks need).
	FailurePolicy admissionregistrationv1.FailurePolicyType
	// ExcludedNamespaces are excluded besides kube-system and Namespace.
	ExcludedNamespaces []string
	// ObjectSelector optionally narrows the pods further by label (e.g. an opt-in label).
	ObjectSelector *metav1.LabelSelector
}

func (o *Options) setDefaults() {
	if o.Name == "" {
		o.Name = "plexus-webhook"
	}
	if o.Namespace == "" {
		o.Namespace = "plexus-system"
	}
	if o.ServiceName == "" {
		o.ServiceName = "plexus-webhook"
	}
	if o.ServicePort == 0 {
		o.ServicePort = 443
	}
	if o.TimeoutSeconds == 0 {
		o.TimeoutSeconds = 5
	}
	if o.FailurePolicy == "" {
		o.FailurePolicy = admissionregistrationv1.Fail
	}
}

// Mutating returns the MutatingWebhookConfiguration: pods, CREATE, to /mutate.
func Mutating(o Options) *admissionregistrationv1.MutatingWebhookConfiguration {
	o.setDefaults()
	reinvoke := admissionregistrationv1.IfNeededReinvocationPolicy
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Labels: labels()},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    MutatePods,
			ClientConfig:            o.clientConfig("/mutate"),
			Rules:                   []admissionregistrationv1.RuleWithOperations{podCreate()},
			FailurePolicy:           &o.FailurePolicy,
			MatchPolicy:             ptr(admissionregistrationv1.Equivalent),
			NamespaceSelector:       o.namespaceSelector(),
			ObjectSelector:          o.ObjectSelector,
			MatchConditions:         hasNetworks(),
			SideEffects:             ptr(admissionregistrationv1.SideEffectClassNone),
			TimeoutSeconds:          &o.TimeoutSeconds,
			AdmissionReviewVersions: []string{"v1"},
			ReinvocationPolicy:      &reinvoke,
		}},
	}
}

// Validating returns the ValidatingWebhookConfiguration: pods (CREATE, and UPDATEs that change
// their networks annotations) and NetworkAttachmentDefinitions (CREATE, UPDATE, DELETE), to
// /validate.
func Validating(o Options) *admissionregistrationv1.ValidatingWebhookConfiguration {
	o.setDefaults()
	common := func(name string, rules []admissionregistrationv1.RuleWithOperations) admissionregistrationv1.ValidatingWebhook {
		return admissionregistrationv1.ValidatingWebhook{
			Name:                    name,
			ClientConfig:            o.clientConfig("/validate"),
			Rules:                   rules,
			FailurePolicy:           &o.FailurePolicy,
			MatchPolicy:             ptr(admissionregistrationv1.Equivalent),
			NamespaceSelector:       o.namespaceSelector(),
			SideEffects:             ptr(admissionregistrationv1.SideEffectClassNone),
			TimeoutSeconds:          &o.TimeoutSeconds,
			AdmissionReviewVersions: []string{"v1"},
		}
	}
	pods := common(ValidatePods, []admissionregistrationv1.RuleWithOperations{podCreate()})
	pods.ObjectSelector = o.ObjectSelector
	pods.MatchConditions = hasNetworks()
	podUpdates := common(ValidatePodUpdates, []admissionregistrationv1.RuleWithOperations{podRule(admissionregistrationv1.Update)})
	podUpdates.ObjectSelector = o.ObjectSelector
	podUpdates.MatchConditions = []admissionregistrationv1.MatchCondition{{Name: "networks-changed", Expression: NetworksChangedExpression}}
	nads := common(ValidateNADs, []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete},
		Rule: admissionregistrationv1.Rule{
			APIGroups: []string{"k8s.cni.cncf.io"}, APIVersions: []string{"v1"},
			Resources: []string{"network-attachment-definitions"}, Scope: ptr(admissionregistrationv1.NamespacedScope),
		},
	}})
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Labels: labels()},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{pods, nads, podUpdates},
	}
}

// SetCABundle sets the CA bundle of every webhook of the given configurations (the certs
// component's injection).
func SetCABundle(bundle []byte, m *admissionregistrationv1.MutatingWebhookConfiguration, v *admissionregistrationv1.ValidatingWebhookConfiguration) {
	if m != nil {
		for i := range m.Webhooks {
			m.Webhooks[i].ClientConfig.CABundle = bundle
		}
	}
	if v != nil {
		for i := range v.Webhooks {
			v.Webhooks[i].ClientConfig.CABundle = bundle
		}
	}
}

func (o *Options) clientConfig(path string) admissionregistrationv1.WebhookClientConfig {
	cc := admissionregistrationv1.WebhookClientConfig{CABundle: o.CABundle}
	if o.URL != "" {
		u := strings.TrimSuffix(o.URL, "/") + path
		cc.URL = &u
		return cc
	}
	port := o.ServicePort
	cc.Service = &admissionregistrationv1.ServiceReference{Namespace: o.Namespace, Name: o.ServiceName, Path: &path, Port: &port}
	return cc
}

func (o *Options) namespaceSelector() *metav1.LabelSelector {
	excluded := append([]string{"kube-system", o.Namespace}, o.ExcludedNamespaces...)
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: excluded,
	}}}
}

func podCreate() admissionregistrationv1.RuleWithOperations {
	return podRule(admissionregistrationv1.Create)
}

func podRule(op admissionregistrationv1.OperationType) admissionregistrationv1.RuleWithOperations {
	return admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{op},
		Rule: admissionregistrationv1.Rule{
			APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
			Scope: ptr(admissionregistrationv1.NamespacedScope),
		},
	}
}

func hasNetworks() []admissionregistrationv1.MatchCondition {
	return []admissionregistrationv1.MatchCondition{{Name: "has-networks", Expression: HasNetworksExpression}}
}

func labels() map[string]string {
	return map[string]string{"app.kubernetes.io/name": "plexus", "app.kubernetes.io/component": "webhook"}
}

func ptr[T any](v T) *T { return &v }
