package agent

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"

	"github.com/plexus-project/plexus/ipam/allocator"
	"github.com/plexus-project/plexus/ipam/allocator/apistore"
	"github.com/plexus-project/plexus/ipam/config"
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
	// NodeConfigFile, when set, is where the agent writes the node's settings for plexus-ipam
	// (config.NodeConfig: its node name and lock_dir) at start, so the plugin knows the node
	// even in direct mode. Usually config.NodeConfigPath on a hostPath mount; empty: none.
	NodeConfigFile string
	// Holds, FlushAfter and ReturnIdle set the write-behind (allocator.Options); Holds 0 turns
	// it off: every address is written before ADD returns.
	Holds                  int
	FlushAfter, ReturnIdle time.Duration
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.NodeName, "node-name", o.NodeName, "node the IPAM agent allocates for (default: $NODE_NAME, else the host name)")
	fs.StringVar(&o.Dir, "ipam-dir", "/run/plexus-ipam", "plexus-ipam's lock_dir: the agent's socket and the node lock")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig of the agent (default: in-cluster)")
	fs.DurationVar(&o.RequestTimeout, "api-request-timeout", 10*time.Second, "bound of one request to the API server")
	fs.StringVar(&o.HealthAddr, "health-probe-bind-address", ":8091", `address of /healthz and /readyz ("0": none)`)
	fs.IntVar(&o.Holds, "ipam-holds", 16, "free addresses of a pool each IP block written sets aside for this node's next pods, handed out with a node-local journal record instead of an API write (0: every address is written before ADD returns)")
	fs.DurationVar(&o.FlushAfter, "ipam-flush-after", 3*time.Second, "how long journaled allocations and releases wait before their IP block is written")
	fs.DurationVar(&o.ReturnIdle, "ipam-hold-idle", 2*time.Second, "how long a network unused on this node keeps its set-aside addresses before they are written back free")
	fs.StringVar(&o.NodeConfigFile, "ipam-node-config", o.NodeConfigFile, "write the node's name and --ipam-dir there for plexus-ipam (its node configuration, usually "+config.NodeConfigPath+"; default: none)")
}

// writeNodeConfig writes the node's settings for plexus-ipam to path, atomically.
func writeNodeConfig(path string, nc config.NodeConfig) error {
	b, err := json.Marshal(nc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing the node configuration %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("writing the node configuration %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing the node configuration %s: %w", path, err)
	}
	return nil
}

// Run serves the agent until ctx is done.
func Run(ctx context.Context, o Options) error {
	if o.NodeName == "" {
		return fmt.Errorf("the IPAM agent needs a node name: set --node-name or NODE_NAME")
	}
	if err := (&config.NodeConfig{NodeName: o.NodeName}).Validate(); err != nil {
		return fmt.Errorf("--node-name: %w", err)
	}
	if o.NodeConfigFile != "" {
		if err := writeNodeConfig(o.NodeConfigFile, config.NodeConfig{NodeName: o.NodeName, LockDir: o.Dir}); err != nil {
			return err
		}
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
	return NewServerFor(store, allocator.FileLocker{Dir: o.Dir}, allocator.Options{Node: o.NodeName,
		Journal: allocator.FileJournal{Dir: o.Dir}, Holds: o.Holds, FlushAfter: o.FlushAfter, ReturnIdle: o.ReturnIdle}).Serve(ctx, ln)
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
