// Package webhook tests plexus-webhook against a real kube-apiserver: the API server calls the
// webhook over TLS (a test CA) through real Mutating/ValidatingWebhookConfigurations built by
// webhook/config, for kubectl and client requests alike, dry-run included.
package webhook
