// Command plexus-extender is Plexus's kube-scheduler extender: it keeps pods off nodes where
// their networks are absent, their VFs do not fit or their IP pools are empty. See
// docs/extender.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/plexus-project/plexus/extender/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Main(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "plexus-extender:", err)
		os.Exit(1)
	}
}
