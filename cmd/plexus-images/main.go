// Command plexus-images builds the project's container images (see internal/images) into one OCI
// archive: `make images`; import it with `ctr images import` or `docker load`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/plexus-project/plexus/internal/images"
)

func main() {
	var o images.Options
	fs := pflag.NewFlagSet("plexus-images", pflag.ExitOnError)
	fs.StringVar(&o.Repo, "repo", ".", "root of the Plexus module")
	fs.StringVar(&o.Out, "out", "bin/plexus-images.tar", "OCI archive to write")
	fs.StringVar(&o.BinDir, "bin-dir", "bin/images", "where the static binaries are built")
	fs.StringVar(&o.Registry, "registry", "ghcr.io/plexus-project", "image name prefix")
	fs.StringVar(&o.Tag, "tag", "dev", "image tag")
	fs.StringVar(&o.KubeScheduler, "kube-scheduler", "", "kube-scheduler binary to add as <registry>/kube-scheduler:<tag> (sandbox)")
	_ = fs.Parse(os.Args[1:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	refs, err := images.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plexus-images:", err)
		os.Exit(1)
	}
	for _, r := range refs {
		fmt.Println(r)
	}
	fmt.Println("written:", o.Out)
}
