// Package webhook is Plexus's admission webhook: a mutating Injector that turns the networks a
// pod selects into the extended resources (SR-IOV VFs) it needs, and a Validator that refuses
// broken NetworkAttachmentDefinitions and pod network annotations with a message a person can
// act on.
//
// Each admission concern lives in its own package (inject, validate) and answers through the
// constructors here (Allowed, Denied, Patched), which record the reason of each decision in the
// response's audit annotations, where the server's metrics and the API server's audit log read
// it. A refusal is always an AdmissionResponse with Allowed false and a message: never an HTTP
// error, so that `failurePolicy: Ignore` cannot admit a pod without the devices it asked for.
//
// Subpackages: nadcache (the informer cache of NADs and of the pods using them), inject
// (mutating), validate (validating), server (HTTPS, TLS reload, health, metrics), config (the
// Mutating/ValidatingWebhookConfiguration objects) and app (flags to a running server).
package webhook
