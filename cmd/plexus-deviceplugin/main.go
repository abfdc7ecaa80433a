// Command plexus-deviceplugin serves SR-IOV VFs to kubelet: see package deviceplugin.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"

	"github.com/plexus-project/plexus/deviceplugin"
	"github.com/plexus-project/plexus/internal/cli"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "plexus-deviceplugin:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := pflag.NewFlagSet("plexus-deviceplugin", pflag.ContinueOnError)
	var opts deviceplugin.Options
	var logging cli.Logging
	opts.AddFlags(fs)
	logging.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	log, err := logging.Logger(os.Stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	deps, err := deviceplugin.NewDeps(opts, log)
	if err != nil {
		return err
	}
	return deviceplugin.NewManager(opts, deps).Run(logr.NewContext(ctx, log))
}
