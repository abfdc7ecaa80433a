// Command plexus-install-cni copies the Plexus CNI binaries (plexus, plexus-sriov, plexus-ipam)
// from its image onto the node, as the node DaemonSet's init container: see internal/cniinstall.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"

	"github.com/plexus-project/plexus/internal/cli"
	"github.com/plexus-project/plexus/internal/cniinstall"
)

func main() {
	fs := pflag.NewFlagSet("plexus-install-cni", pflag.ExitOnError)
	from := fs.String("from", "/cni/bin", "directory of the binaries to install")
	to := fs.String("to", "/host/cni/bin", "the node's CNI bin directory (a hostPath mount)")
	var logging cli.Logging
	logging.AddFlags(fs)
	_ = fs.Parse(os.Args[1:])
	log, err := logging.Logger(os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plexus-install-cni:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(logr.NewContext(ctx, log), time.Minute)
	defer cancel()
	if _, err := cniinstall.Install(ctx, *from, *to); err != nil {
		fmt.Fprintln(os.Stderr, "plexus-install-cni:", err)
		os.Exit(1)
	}
}
