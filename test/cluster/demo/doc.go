// Package demo is plexus-sandbox: the `up`, `down` and `demo` commands over a local cluster of
// real kubelets (package cluster). `demo` brings a cluster up, installs the Plexus components
// that exist, applies the examples of docs/examples and prints what each pod got; it stays up
// until Ctrl-C, or, with DEMO_EXIT=1, checks the result, tears down and exits (non-zero on any
// failure), for CI.
package demo
