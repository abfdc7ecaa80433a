// Package config builds the MutatingWebhookConfiguration and ValidatingWebhookConfiguration
// that make the API server call plexus-webhook. The Helm chart renders the same objects, and the
// certs component uses SetCABundle to inject the serving CA; tests create them directly.
//
// Every webhook excludes kube-system and Plexus's own namespace (namespaceSelector), so that the
// webhook can never block the pods that run it; pod webhooks carry a matchCondition, so that only
// pods with a networks or default-network annotation reach it at all; sideEffects is None (the
// webhook writes nothing, so dry-run requests are safe) and the mutating webhook is reinvoked
// IfNeeded (its patch is idempotent).
package config
