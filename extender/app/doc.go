// Package app is plexus-extender's command: its flags, the wiring of the informer-fed
// extender.Cluster to the HTTP server, and --print-scheduler-config, which prints the
// KubeSchedulerConfiguration stanza that points kube-scheduler at the extender.
package app
