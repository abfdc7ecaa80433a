// Command plexus-deviceplugin serves SR-IOV VFs to kubelet: see package deviceplugin.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"

	"github.com/plexus-project/plexus/deviceplugin"
)

func main() {
	var opts deviceplugin.Options
	opts.AddFlags(flag.CommandLine)
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, nil))
	ctx = logr.NewContext(ctx, log)

	deps, err := deviceplugin.NewDeps(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plexus-deviceplugin:", err)
		os.Exit(1)
	}
	if err := deviceplugin.NewManager(opts, deps).Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "plexus-deviceplugin:", err)
		os.Exit(1)
	}
}
