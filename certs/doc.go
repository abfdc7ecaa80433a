// Package certs issues and rotates the serving certificates of the webhook and the extender and
// injects the CA bundle into the webhook configurations, or defers to cert-manager.
package certs
