package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"

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
	// HealthAddr is the address of /healthz and /readyz; "0" or empty: none.
	HealthAddr string
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.NodeName, "node-name", o.NodeName, "node the IPAM agent allocates for (default: $NODE_NAME, else the host name)")
	fs.StringVar(&o.Dir, "ipam-dir", "/run/plexus-ipam", "plexus-ipam's lock_dir: the agent's socket and the node lock")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig of the agent (default: in-cluster)")
	fs.DurationVar(&o.RequestTimeout, "api-request-timeout", 10*time.Second, "bound of one request to the API server")
	fs.StringVar(&o.HealthAddr, "health-probe-bind-address", ":8091", `address of /healthz and /readyz ("0": none)`)
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
	if o.HealthAddr != "" && o.HealthAddr != "0" {
		stop, err := serveProbes(ctx, o.HealthAddr, o.Dir)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
	}
	return NewServer(o.NodeName, store, allocator.FileLocker{Dir: o.Dir}).Serve(ctx, ln)
}

// serveProbes answers /healthz (the process runs) and /readyz (its socket in dir accepts a
// plugin) on addr, until stop is called.
func serveProbes(ctx context.Context, addr, dir string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for health probes on %s (set --health-probe-bind-address): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		c, err := Dial(r.Context(), dir, "")
		if err != nil {
			http.Error(w, "the IPAM agent's socket does not accept: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		c.Close()
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logr.FromContextOrDiscard(ctx).Error(err, "health probe server stopped")
		}
	}()
	return func() { srv.Close() }, nil
}
