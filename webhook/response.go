package webhook

import (
	"errors"
	"fmt"

	"gomodules.xyz/jsonpatch/v2"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// ReasonKey is the audit annotation holding the reason of a decision. The API server records it
// as "<webhook name>/reason"; the server counts decisions by it.
const ReasonKey = "reason"

// Reasons of decisions, as counted in the metrics.
const (
	// ReasonNoNetworks: the pod selects no secondary network; nothing to do.
	ReasonNoNetworks = "NoNetworks"
	// ReasonUnchanged: the pod already has everything the injector would add, or an update
	// leaves its networks as they were.
	ReasonUnchanged = "Unchanged"
	// ReasonInjected: the injector patched the pod.
	ReasonInjected = "Injected"
	// ReasonValid: the object passed validation.
	ReasonValid = "Valid"
	// ReasonBadAnnotation: a networks annotation does not parse.
	ReasonBadAnnotation = "BadAnnotation"
	// ReasonUnknownNetwork: a selected NetworkAttachmentDefinition does not exist.
	ReasonUnknownNetwork = "UnknownNetwork"
	// ReasonInvalidNetwork: a selected or submitted NetworkAttachmentDefinition is invalid.
	ReasonInvalidNetwork = "InvalidNetwork"
	// ReasonBadContainer: the container chosen for the devices does not exist or is an init container.
	ReasonBadContainer = "BadContainer"
	// ReasonNodeSelectorConflict: a network's node selector contradicts the pod's.
	ReasonNodeSelectorConflict = "NodeSelectorConflict"
	// ReasonIPOutOfRange: a requested IP is outside the network's range.
	ReasonIPOutOfRange = "IPOutOfRange"
	// ReasonNamespaceIsolation: a pod selects a network of another, not shared, namespace.
	ReasonNamespaceIsolation = "NamespaceIsolation"
	// ReasonNetworksImmutable: an update changes the networks of a pod already on a node.
	ReasonNetworksImmutable = "NetworksImmutable"
	// ReasonInUse: a NetworkAttachmentDefinition being deleted is used by running pods.
	ReasonInUse = "InUse"
	// ReasonBadRequest: the AdmissionReview could not be decoded.
	ReasonBadRequest = "BadRequest"
	// ReasonInternalError: the webhook could not judge the request (e.g. its cache failed).
	ReasonInternalError = "InternalError"
	// ReasonIgnored: the request is for a kind or operation this endpoint does not judge.
	ReasonIgnored = "Ignored"
)

// Refusal is why an object is not admitted: a reason (one of the Reason constants) and a
// message naming the element at fault and the fix.
type Refusal struct {
	Reason  string
	Message string
}

func (r *Refusal) Error() string { return r.Message }

// Refuse builds a Refusal with a formatted message.
func Refuse(reason, format string, args ...any) *Refusal {
	return &Refusal{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Allowed admits the request, recording reason.
func Allowed(reason string) admission.Response {
	return withReason(admission.Allowed(""), reason)
}

// Denied refuses the request with a message (Allowed false, code 403), recording reason.
func Denied(reason, message string) admission.Response {
	return withReason(admission.Denied(message), reason)
}

// Patched admits the request with the given JSON Patch, recording reason. Without operations
// it is Allowed.
func Patched(reason string, ops []jsonpatch.Operation) admission.Response {
	return withReason(admission.Patched("", ops...), reason)
}

// FromError turns an error into a response: a *Refusal is Denied with its reason and message;
// any other error also denies (never an HTTP error), under ReasonInternalError.
func FromError(err error) admission.Response {
	var r *Refusal
	if errors.As(err, &r) {
		return Denied(r.Reason, r.Message)
	}
	return Denied(ReasonInternalError, err.Error())
}

// ReasonOf returns the reason a response was recorded under.
func ReasonOf(resp admission.Response) string {
	if r := resp.AuditAnnotations[ReasonKey]; r != "" {
		return r
	}
	if resp.Allowed {
		return "Allowed"
	}
	return "Denied"
}

func withReason(resp admission.Response, reason string) admission.Response {
	resp.AuditAnnotations = map[string]string{ReasonKey: reason}
	return resp
}
