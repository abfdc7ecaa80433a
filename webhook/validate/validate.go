package validate

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/go-logr/logr"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/plexus-project/plexus/webhook"
	"github.com/plexus-project/plexus/webhook/nadcache"
)

// AllowDeleteInUseAnnotation on a NAD set to "true" lets it be deleted while pods use it.
const AllowDeleteInUseAnnotation = "plexus.io/allow-delete-in-use"

// MaxListedPods is how many of the pods using a NAD a refused deletion names.
const MaxListedPods = 5

// Options tune a Validator.
type Options struct {
	// Isolation, when set, refuses pods selecting NADs of other namespaces than their own and
	// the shared ones. Default nil: no isolation.
	Isolation *nadcache.Isolation
}

// Validator judges pods (CREATE, and UPDATEs of their networks) and NetworkAttachmentDefinitions
// (CREATE, UPDATE, DELETE).
type Validator struct {
	lookup nadcache.Lookup
	opts   Options
}

var _ admission.Handler = (*Validator)(nil)

// New returns a Validator reading NADs and their users from lookup.
func New(lookup nadcache.Lookup, opts Options) *Validator {
	return &Validator{lookup: lookup, opts: opts}
}

// Handle dispatches on the request's kind and operation.
func (v *Validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	var err error
	switch {
	case req.Kind.Kind == "Pod" && req.Operation == admissionv1.Create && req.SubResource == "":
		pod := &corev1.Pod{}
		if err := json.Unmarshal(req.Object.Raw, pod); err != nil {
			return webhook.Denied(webhook.ReasonBadRequest, fmt.Sprintf("decoding the pod: %v", err))
		}
		if !nadcache.HasNetworks(pod) {
			return webhook.Allowed(webhook.ReasonNoNetworks)
		}
		err = v.Pod(pod, req.Namespace)
	case req.Kind.Kind == "Pod" && req.Operation == admissionv1.Update && req.SubResource == "":
		pod, old := &corev1.Pod{}, &corev1.Pod{}
		if err := json.Unmarshal(req.Object.Raw, pod); err != nil {
			return webhook.Denied(webhook.ReasonBadRequest, fmt.Sprintf("decoding the pod: %v", err))
		}
		if err := json.Unmarshal(req.OldObject.Raw, old); err != nil {
			return webhook.Denied(webhook.ReasonBadRequest, fmt.Sprintf("decoding the old pod: %v", err))
		}
		if !NetworksChanged(old, pod) {
			return webhook.Allowed(webhook.ReasonUnchanged)
		}
		err = v.PodUpdate(old, pod, req.Namespace)
	case req.Kind.Kind == "NetworkAttachmentDefinition" && (req.Operation == admissionv1.Create || req.Operation == admissionv1.Update):
		nad := &nadv1.NetworkAttachmentDefinition{}
		if err := json.Unmarshal(req.Object.Raw, nad); err != nil {
			return webhook.Denied(webhook.ReasonBadRequest, fmt.Sprintf("decoding the NetworkAttachmentDefinition: %v", err))
		}
		if nad.Namespace == "" {
			nad.Namespace = req.Namespace
		}
		var warnings []string
		warnings, err = NAD(nad)
		resp := webhook.Allowed(webhook.ReasonValid)
		if err != nil {
			logr.FromContextOrDiscard(ctx).V(1).Info("refusing", "kind", req.Kind.Kind, "operation", req.Operation, "namespace", req.Namespace, "name", req.Name, "reason", err)
			resp = webhook.FromError(err)
		}
		resp.Warnings = warnings
		return resp
	case req.Kind.Kind == "NetworkAttachmentDefinition" && req.Operation == admissionv1.Delete:
		nad := &nadv1.NetworkAttachmentDefinition{}
		if len(req.OldObject.Raw) > 0 {
			if err := json.Unmarshal(req.OldObject.Raw, nad); err != nil {
				return webhook.Denied(webhook.ReasonBadRequest, fmt.Sprintf("decoding the NetworkAttachmentDefinition: %v", err))
			}
		}
		nad.Namespace, nad.Name = req.Namespace, req.Name
		err = v.Delete(nad)
	default:
		return webhook.Allowed(webhook.ReasonIgnored)
	}
	if err != nil {
		logr.FromContextOrDiscard(ctx).V(1).Info("refusing", "kind", req.Kind.Kind, "operation", req.Operation, "namespace", req.Namespace, "name", req.Name, "reason", err)
		return webhook.FromError(err)
	}
	return webhook.Allowed(webhook.ReasonValid)
}
