// Command plexus-daemon is the Plexus node daemon (a DaemonSet): the IPAM agent that
// plexus-ipam forwards its allocations to (ipam/agent) and, with --cni-server, the node CNI
// server the plexus shim forwards every CNI call to (cni/daemon).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"

	"github.com/plexus-project/plexus/cni/daemon"
	"github.com/plexus-project/plexus/internal/cli"
	"github.com/plexus-project/plexus/ipam/agent"
)

func main() {
	fs := pflag.NewFlagSet("plexus-daemon", pflag.ExitOnError)
	ipam := agent.Options{NodeName: os.Getenv("NODE_NAME")}
	ipamFlags := flag.NewFlagSet("ipam", flag.ExitOnError)
	ipam.AddFlags(ipamFlags)
	fs.AddGoFlagSet(ipamFlags)
	var cni daemon.CNIOptions
	cni.AddFlags(fs)
	var logging cli.Logging
	logging.AddFlags(fs)
	_ = fs.Parse(os.Args[1:])
	if ipam.NodeName == "" {
		ipam.NodeName, _ = os.Hostname()
	}
	log, err := logging.Logger(os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plexus-daemon:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := daemon.Run(logr.NewContext(ctx, log), ipam, cni); err != nil {
		log.Error(err, "plexus-daemon stopped")
		os.Exit(1)
	}
}
