// Package reconciler is the self-managed certificate mode of plexus-controller: one leader-elected
// reconciler keeps a CA in a Secret, a serving certificate per component (the webhook, the
// extender) in a Secret of type kubernetes.io/tls with the trusted CA bundle beside it as ca.crt,
// and that bundle in the caBundle of the webhook configurations. It renews every certificate
// well before it expires and rotates the CA as package certs describes, so admission never sees
// a server it does not trust. The components read their Secrets as mounted files and reload
// them when they change.
package reconciler
