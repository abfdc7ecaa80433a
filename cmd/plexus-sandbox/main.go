// Command plexus-sandbox brings up a local Kubernetes cluster of real kubelets for Plexus's
// e2e tests and `make demo`: plexus-sandbox up|down|demo.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/plexus-project/plexus/test/cluster/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	log := funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{Verbosity: verbosity()})
	code := demo.Main(logr.NewContext(ctx, log), os.Args[1:], os.Stdout)
	stop()
	os.Exit(code)
}

// verbosity is $PLEXUS_V (0 when unset).
func verbosity() int {
	v, _ := strconv.Atoi(os.Getenv("PLEXUS_V"))
	return v
}
