// Package app is plexus-controller: one leader-elected controller-runtime manager hosting
// Plexus's reconcilers (today the IPAM leak reclaimer and pool counters of ipam/reconciler).
// Main wires the command line (pflag --long-flags, internal/cli logging) to the manager, whose
// metrics are served over HTTPS to callers the API server authenticates and authorizes
// (TokenReview and SubjectAccessReview on GET /metrics) and whose probes bind where configured.
// Add a component by appending its SetupWithManager to the setups list.
package app
