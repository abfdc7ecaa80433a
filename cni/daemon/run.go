package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/plexus-project/plexus/cni/attach"
	"github.com/plexus-project/plexus/cni/cache"
	"github.com/plexus-project/plexus/cni/conflist"
	"github.com/plexus-project/plexus/cni/kube"
	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/cni/server"
	"github.com/plexus-project/plexus/deviceplugin/devinfo"
	"github.com/plexus-project/plexus/internal/metricsauth"
	"github.com/plexus-project/plexus/ipam/agent"
)

// check is one readiness condition of /readyz.
type check struct {
	name string
	fn   func(ctx context.Context) error
}

// Run serves the IPAM agent and, when enabled, the CNI server until ctx ends. The agent's
// --health-probe-bind-address serves /healthz and /readyz for both.
func Run(ctx context.Context, ipam agent.Options, o CNIOptions) error {
	if err := o.Validate(); err != nil {
		return err
	}
	probeAddr := ipam.HealthAddr
	ipam.HealthAddr = "0" // one probe server for the whole daemon, below
	g, ctx := errgroup.WithContext(ctx)
	checks := []check{{"ipam-agent", func(ctx context.Context) error {
		c, err := agent.Dial(ctx, ipam.Dir, "")
		if err != nil {
			return fmt.Errorf("the IPAM agent's socket does not accept: %w", err)
		}
		return c.Close()
	}}}
	g.Go(func() error { return agent.Run(ctx, ipam) })
	if o.Enabled {
		ready, err := startCNI(ctx, g, ipam, o)
		if err != nil {
			return errors.Join(err, g.Wait())
		}
		checks = append(checks, check{"cni-server", func(context.Context) error { return ready() }})
	}
	if probeAddr != "" && probeAddr != "0" {
		if err := serveHTTP(ctx, g, probeAddr, probes(checks)); err != nil {
			return errors.Join(fmt.Errorf("health probes (set --health-probe-bind-address): %w", err), g.Wait())
		}
	}
	return g.Wait()
}

// startCNI starts the CNI server's parts in g and returns its readiness.
func startCNI(ctx context.Context, g *errgroup.Group, ipam agent.Options, o CNIOptions) (func() error, error) {
	log := logr.FromContextOrDiscard(ctx).WithName("cni")
	ctx = logr.NewContext(ctx, log)
	cfg, err := clientcmd.BuildConfigFromFlags("", ipam.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig %q (set --kubeconfig, or run in a pod): %w", ipam.Kubeconfig, err)
	}
	cfg.UserAgent = "plexus-daemon/cni"
	cfg.QPS, cfg.Burst = 20, 40
	view, err := kube.NewView(cfg, ipam.NodeName, ipam.RequestTimeout)
	if err != nil {
		return nil, err
	}
	view.Start(ctx)

	writer := &conflist.Writer{ConfDir: o.ConfDir, FileName: o.ConflistName, Source: clusterSource(o.ClusterNetwork, view),
		Shim: conflist.ShimOptions{NodeName: ipam.NodeName, Timeout: (o.RequestTimeout + 10*time.Second).String()}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := server.NewMetrics(reg)
	att := attach.New(attach.Options{NodeName: ipam.NodeName, BinDirs: o.BinDirs,
		NamespaceIsolation: o.NamespaceIsolation, GlobalNamespaces: o.GlobalNamespaces, AllowedPlugins: o.AllowedPlugins},
		attach.Host{
			Delegates:   attach.LimitDelegates(libcni.NewCNIConfigWithCacheDir(o.BinDirs, filepath.Join(o.StateDir, "libcni"), nil), o.MaxDelegates),
			Pods:        view,
			NADs:        view,
			Reporter:    view,
			Devices:     &attach.PodResources{Socket: o.PodResourcesSocket},
			DeviceInfos: &devinfo.Store{Dir: o.DevinfoDir},
			Netns:       attach.LinuxNetns{},
			Cluster:     writer,
			Cache:       &cache.Store{Dir: filepath.Join(o.StateDir, "containers")},
			Metrics:     metrics,
		})
	ready := func() error {
		if !view.Synced() {
			return fmt.Errorf("the pod and NetworkAttachmentDefinition caches are not synced yet")
		}
		return writer.Ready()
	}
	srv := server.New(server.Options{SocketDir: o.SocketDir, NodeName: ipam.NodeName, MaxInFlight: o.MaxInFlight,
		MaxQueued: o.MaxQueued, RequestTimeout: o.RequestTimeout, Ready: ready}, att, metrics)
	writer.Shim.SocketPath = srv.SocketPath()
	ln, err := srv.Listen()
	if err != nil {
		return nil, err
	}
	g.Go(func() error { return writer.Run(ctx) })
	g.Go(func() error { return srv.Serve(ctx, ln) })
	if o.MetricsAddr != "" && o.MetricsAddr != "0" {
		if err := serveMetrics(ctx, g, o.MetricsAddr, cfg, reg); err != nil {
			return nil, fmt.Errorf("metrics (set --metrics-bind-address): %w", err)
		}
	}
	log.Info("CNI server listening", "socket", srv.SocketPath(), "conflist", writer.Path(), "binDirs", o.BinDirs, "stateDir", o.StateDir)
	return ready, nil
}

// clusterSource is where the cluster network comes from (nil: the first other config in the
// conf dir).
func clusterSource(spec string, view *kube.View) conflist.Source {
	switch {
	case spec == "":
		return nil
	case strings.HasPrefix(spec, "/"):
		return func(context.Context) (*conflist.ClusterNetwork, error) { return conflist.ReadFile(spec) }
	}
	ns, name, _ := strings.Cut(spec, "/")
	return func(context.Context) (*conflist.ClusterNetwork, error) {
		if !view.Synced() {
			return nil, fmt.Errorf("waiting for the NetworkAttachmentDefinition cache to find the cluster network %s", spec)
		}
		nad, err := view.NAD(ns, name)
		if err != nil {
			return nil, fmt.Errorf("the cluster network NetworkAttachmentDefinition %s (--cni-cluster-network): %w", spec, err)
		}
		n, err := network.FromNAD(nad)
		if err != nil {
			return nil, err
		}
		return &conflist.ClusterNetwork{Source: "NetworkAttachmentDefinition " + spec, Config: n.Config}, nil
	}
}

func probes(checks []check) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		var failed []string
		for _, c := range checks {
			if err := c.fn(ctx); err != nil {
				failed = append(failed, c.name+": "+err.Error())
			}
		}
		if len(failed) > 0 {
			http.Error(w, strings.Join(failed, "\n"), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// serveMetrics serves reg's /metrics over TLS (a self-signed certificate) to callers the API
// server authenticates and authorizes for get on /metrics (internal/metricsauth).
func serveMetrics(ctx context.Context, g *errgroup.Group, addr string, cfg *rest.Config, reg *prometheus.Registry) error {
	filter, err := metricsauth.Filter(cfg, logr.FromContextOrDiscard(ctx).WithName("metrics"))
	if err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(addr)
	tlsCfg, err := metricsauth.SelfSignedTLS(host)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", filter(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	return serve(ctx, g, tls.NewListener(ln, tlsCfg), mux)
}

// serveHTTP serves h on addr in g until ctx ends.
func serveHTTP(ctx context.Context, g *errgroup.Group, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	return serve(ctx, g, ln, h)
}

func serve(ctx context.Context, g *errgroup.Group, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	g.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return nil
}
