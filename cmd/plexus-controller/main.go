// Command plexus-controller hosts Plexus's leader-elected reconcilers on one controller-runtime
// manager (see cmd/plexus-controller/app).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/plexus-project/plexus/cmd/plexus-controller/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Main(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "plexus-controller:", err)
		os.Exit(1)
	}
}
