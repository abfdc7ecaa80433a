package agent

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/plexus-project/plexus/ipam/allocator"
	"github.com/plexus-project/plexus/ipam/allocator/apistore"
)

// Options configure the agent of a node daemon.
type Options struct {
	// NodeName is the node the agent allocates for when a plugin names none.
	NodeName string
	// Dir is the plugins' lock_dir: the socket, and the node lock shared with direct mode.
	Dir string
	// Kubeconfig is the agent's credentials; empty: in-cluster.
	Kubeconfig string
	// RequestTimeout bounds one API request.
	RequestTimeout time.Duration
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.NodeName, "node-name", o.NodeName, "node the IPAM agent allocates for (default: $NODE_NAME, else the host name)")
	fs.StringVar(&o.Dir, "ipam-dir", "/run/plexus-ipam", "plexus-ipam's lock_dir: the agent's socket and the node lock")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig of the agent (default: in-cluster)")
	fs.DurationVar(&o.RequestTimeout, "api-request-timeout", 10*time.Second, "bound of one request to the API server")
}

// Run serves the agent until ctx is done.
func Run(ctx context.Context, o Options) error {
	if o.NodeName == "" {
		return fmt.Errorf("the IPAM agent needs a node name: set --node-name or NODE_NAME")
	}
	store, err := apistore.FromKubeconfig(o.Kubeconfig, o.RequestTimeout)
	if err != nil {
		return err
	}
	ln, err := Listen(o.Dir)
	if err != nil {
		return err
	}
	return NewServer(o.NodeName, store, allocator.FileLocker{Dir: o.Dir}).Serve(ctx, ln)
}
