// Package certs is the certificate math of Plexus's self-managed mode: it issues a CA and
// serving certificates (ECDSA P-256), decides when each is due for renewal, and builds the CA
// bundle clients trust. It does no I/O; the reconciler in certs/reconciler stores what it issues
// in Secrets and injects the bundle into the webhook configurations.
//
// Rotation never leaves a server untrusted: a CA is renewed by first issuing its successor and
// adding it to the bundle beside the current one; only once every client has had time to see that
// bundle does the successor sign serving certificates. A CA leaves the bundle when it expires, so
// a serving certificate it signed stays trusted for as long as it is valid.
//
// With cert-manager mode the chart's Issuer and Certificates do all of this instead, and this
// package is not used.
package certs
