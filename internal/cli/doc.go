// Package cli holds the conventions every Plexus binary shares on its command line: the
// logging flags (--v for verbosity, --log-format text or json) and the logr logger they make.
// Each cmd/<binary>/main.go registers these on its pflag.FlagSet, so every component reads,
// logs and answers --help the same way, as Kubernetes components do.
package cli
