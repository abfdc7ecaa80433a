// Command plexus-sandbox brings up a local Kubernetes cluster of real kubelets for Plexus's
// e2e tests and `make demo`: plexus-sandbox up|down|demo [--flags] (see test/cluster/demo).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/plexus-project/plexus/test/cluster/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := demo.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
