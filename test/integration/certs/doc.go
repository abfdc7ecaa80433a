// Package certs tests the self-managed certificate mode against a real kube-apiserver: the
// certs reconciler (certs/reconciler) on a controller-runtime manager, the real webhook
// (webhook/app) serving the Secret's certificate from files the way a mounted Secret appears,
// and the API server calling that webhook through the injected caBundle while the certificates
// rotate.
package certs
