// Package server serves the admission concerns over HTTPS: /mutate and /validate
// (AdmissionReview v1), /healthz (the process runs), /readyz (the NAD cache has synced) and
// /metrics (Prometheus: admission latency, decisions by reason, certificate reads), the latter
// only through Options.MetricsFilter (the API server's authentication and authorization, see
// internal/metricsauth) and not at all without one.
//
// The serving certificate and key are read from files and reloaded when either changes
// (fsnotify on their directories, plus a poll for mounts that do not raise events); a new pair
// that does not load keeps the old one in service and logs an error, so a botched rotation never
// takes admission down. Every read is counted by result, which is how a test (or an operator)
// tells a refused pair from one not re-read yet. Every connection phase has a timeout.
package server
