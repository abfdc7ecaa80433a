// Command plexus-webhook is Plexus's admission webhook: it injects the device resources of a
// pod's networks and validates pods and NetworkAttachmentDefinitions. See docs/webhook.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/plexus-project/plexus/webhook/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Main(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "plexus-webhook:", err)
		os.Exit(1)
	}
}
