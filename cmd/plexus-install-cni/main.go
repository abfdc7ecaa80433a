// Command plexus-install-cni copies the Plexus CNI binaries (plexus, plexus-sriov, plexus-ipam)
// from its image (the plexus-cni image, $KO_DATA_PATH) onto the node, as the node DaemonSet's
// init container: see internal/cniinstall.
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
	from := fs.String("from", dataPath(), "directory of the binaries to install (default $KO_DATA_PATH, where the image keeps them)")
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

// dataPath is $KO_DATA_PATH, else ko's default.
func dataPath() string {
	if p := os.Getenv("KO_DATA_PATH"); p != "" {
		return p
	}
	return "/var/run/ko"
}
