// Package server is plexus-extender's HTTP layer: it decodes the kube-scheduler extender calls
// (k8s.io/kube-scheduler/extender/v1) on /filter, /prioritize and /bind, bounds each call's body and
// time, hands it to a Decider (the extender.Cluster) and encodes the answer; it serves /healthz
// and /readyz (not ready until the caches have synced) on the same listener, and /metrics
// (call latency, nodes filtered by reason) on a separate one that is loopback-only by default.
// Plain HTTP is served on loopback only; anything else needs a TLS key pair, reloaded when its
// files change.
package server
