// Package server serves the admission concerns over HTTPS: /mutate and /validate
// (AdmissionReview v1), /healthz (the process runs), /readyz (the NAD cache has synced) and
// /metrics (Prometheus: admission latency, decisions by reason).
//
// The serving certificate and key are read from files and reloaded when either changes
// (fsnotify, plus a poll for mounts that do not raise events); a new pair that does not load
// keeps the old one in service and logs an error, so a botched rotation never takes admission
// down.
package server
