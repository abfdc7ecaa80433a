package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"

	"github.com/plexus-project/plexus/internal/cli"

	"github.com/plexus-project/plexus/test/cluster"
	"github.com/plexus-project/plexus/test/repo"
)

const usage = `usage: plexus-sandbox <command> [flags]

commands:
  up     bring a local cluster up and leave it running (kubeconfig: <dir>/kubeconfig)
  down   tear the cluster down (works after a crash)
  demo   up, install Plexus and the examples, print the result; Ctrl-C tears down
         (DEMO_EXIT=1: check, tear down and exit instead of waiting)
`

// Main runs the plexus-sandbox command line args, reporting to out and logging to errOut, and
// returns the process exit code.
func Main(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(out, usage)
		return 2
	}
	var opts cluster.Options
	fs := pflag.NewFlagSet(args[0], pflag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&opts.Name, "name", "", "cluster name (default plexus)")
	fs.StringVar(&opts.Dir, "dir", "", "state directory (default $PLEXUS_CACHE/sandbox/<name>)")
	fs.IntVar(&opts.Nodes, "nodes", 0, "worker nodes (default 2)")
	fs.BoolVar(&opts.NoNodes, "no-nodes", false, "control plane only")
	fs.IntVar(&opts.NetworkID, "network-id", 0, "address block 0-15, for clusters side by side")
	sriov := fs.Bool("sriov", true, "give every node emulated SR-IOV NICs (2 PFs with 4 VFs each)")
	images := fs.Bool("images", true, "up: build cmd/ and import an image per Plexus command into every node")
	fs.StringArrayVar(&opts.AuditUsers, "audit-user", nil, "write the API server's audit log (<dir>/logs/audit.log) of this user's requests, at the Metadata level; repeat for more users (e.g. system:serviceaccount:kube-system:plexus-daemon)")
	logging := cli.Logging{Verbosity: envVerbosity()}
	logging.AddFlags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	log, err := logging.Logger(errOut)
	if err != nil {
		fmt.Fprintln(errOut, err)
		return 2
	}
	ctx = logr.NewContext(ctx, log)
	if *sriov {
		opts.SRIOV = &cluster.SRIOVOptions{}
	}
	switch args[0] {
	case "up":
		err = up(ctx, opts, *images, out)
	case "down":
		err = down(ctx, opts)
	case "demo":
		err = Run(ctx, Options{Cluster: opts, Exit: os.Getenv("DEMO_EXIT") == "1", Out: out})
	default:
		fmt.Fprint(out, usage)
		return 2
	}
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, args[0]+" failed")
		return 1
	}
	return 0
}

func down(ctx context.Context, opts cluster.Options) error {
	dir, err := opts.StateDir()
	if err != nil {
		return err
	}
	return cluster.Down(ctx, dir)
}

// up brings a cluster up and leaves it running, with the Plexus images when images is set.
func up(ctx context.Context, opts cluster.Options, images bool, out io.Writer) error {
	if images {
		root, err := repo.Root()
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "plexus-sandbox-build-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		build, err := cluster.BuildPlexus(ctx, root, dir, "plexus-sandbox")
		if err != nil {
			return err
		}
		WithPlexus(&opts, build)
	}
	c, err := cluster.Up(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "cluster up; kubeconfig: %s\n", c.Kubeconfig)
	if len(opts.AuditUsers) > 0 {
		fmt.Fprintf(out, "audit log of %v: %s\n", opts.AuditUsers, c.AuditLogPath())
	}
	return nil
}

// envVerbosity is $PLEXUS_V, --v's default (the make targets pass no flags).
func envVerbosity() int {
	v, _ := strconv.Atoi(os.Getenv("PLEXUS_V"))
	return v
}
