// Command plexus-daemon is the Plexus node daemon (a DaemonSet). It hosts the IPAM agent that
// plexus-ipam forwards its allocations to (see ipam/agent).
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

	"github.com/plexus-project/plexus/ipam/agent"
)

func main() {
	opts := agent.Options{NodeName: os.Getenv("NODE_NAME")}
	opts.AddFlags(flag.CommandLine)
	verbosity := flag.Int("v", 0, "log verbosity: 1 logs every retry and failure")
	flag.Parse()
	if opts.NodeName == "" {
		opts.NodeName, _ = os.Hostname()
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = logr.NewContext(ctx, logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.Level(-*verbosity)})))

	if err := agent.Run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "plexus-daemon:", err)
		os.Exit(1)
	}
}
