// Package metricsauth guards the /metrics endpoints of Plexus's servers with the API server's own
// authentication and authorization (what controller-runtime's metrics filter does, with two
// plain requests: a TokenReview of the caller's bearer token, then a SubjectAccessReview of
// "get" on the non-resource URL /metrics),
// and gives the hostNetwork components a self-signed TLS configuration, so that a scraper's
// token never crosses the network in clear and nobody without RBAC reads the metrics.
//
// The caller's identity needs create on tokenreviews.authentication.k8s.io and
// subjectaccessreviews.authorization.k8s.io; a scraper needs get on the nonResourceURL /metrics.
package metricsauth
