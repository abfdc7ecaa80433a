package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-project/plexus/extender"
	"github.com/plexus-project/plexus/extender/server"
	"github.com/plexus-project/plexus/extender/watch"
	"github.com/plexus-project/plexus/internal/cli"
	"github.com/plexus-project/plexus/internal/metricsauth"
)

// Options are plexus-extender's settings.
type Options struct {
	// Kubeconfig is the kubeconfig file; "" means in-cluster. Ignored when RESTConfig is set.
	Kubeconfig string
	// RESTConfig, when set, is used instead of Kubeconfig (tests).
	RESTConfig *rest.Config
	// Host and Port serve the extender API; defaults 127.0.0.1 and 10262.
	Host string
	Port int
	// Listener, when set, is served instead of Host:Port (tests).
	Listener net.Listener
	// MetricsAddress serves /metrics; default 127.0.0.1:10263, "0" turns it off.
	MetricsAddress string
	// MetricsListener, when set, is served instead of MetricsAddress (tests).
	MetricsListener net.Listener
	// CertFile and KeyFile are the HTTPS serving pair (reloaded on change); empty: plain HTTP.
	CertFile, KeyFile string
	// CertPollInterval is how often the pair is re-read besides file events; default 10s.
	CertPollInterval time.Duration
	// Cluster tunes the decisions (placement, assumption TTL).
	Cluster extender.Options
	// CallTimeout bounds one call's work; default 3s.
	CallTimeout time.Duration
	// Log is the logger; default logr.Discard().
	Log logr.Logger
}

type printOptions struct {
	enabled bool
	stanza  StanzaOptions
	extra   []string
}

// Main parses args (without the program name) and runs until ctx ends. stdout gets
// --print-scheduler-config's output.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("plexus-extender", pflag.ContinueOnError)
	var (
		o         Options
		logging   cli.Logging
		placement string
		pr        printOptions
	)
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file; in-cluster configuration when empty")
	fs.StringVar(&o.Host, "bind-address", "127.0.0.1", "address to serve the extender API on; other than loopback it needs --tls-cert-file and --tls-key-file")
	fs.IntVar(&o.Port, "port", 10262, "port for /filter, /prioritize, /healthz and /readyz")
	fs.StringVar(&o.MetricsAddress, "metrics-bind-address", "127.0.0.1:10263", `host:port for /metrics ("0" turns it off); keep it on loopback unless the network is trusted`)
	fs.StringVar(&o.CertFile, "tls-cert-file", "", "PEM serving certificate (with chain) for HTTPS; reloaded when it changes; plain HTTP on loopback when unset")
	fs.StringVar(&o.KeyFile, "tls-key-file", "", "PEM serving key; reloaded when it changes")
	fs.DurationVar(&o.CertPollInterval, "tls-poll-interval", 10*time.Second, "how often the serving pair is re-read besides file events")
	fs.StringVar(&placement, "vf-placement", string(extender.Spread), "among nodes that fit equally on NUMA and PFs: spread (most VFs left) or pack (fewest left)")
	fs.DurationVar(&o.Cluster.AssumeTTL, "assume-ttl", 30*time.Second, "how long a pod the filter admitted counts against its nodes and pools before it is seen bound")
	fs.DurationVar(&o.CallTimeout, "call-timeout", 3*time.Second, "the most work one filter or prioritize call may take")
	fs.BoolVar(&pr.enabled, "print-scheduler-config", false, "print the KubeSchedulerConfiguration extender stanza (managedResources from the cluster's NADs) and exit")
	fs.StringVar(&pr.stanza.URLPrefix, "scheduler-url-prefix", "", "urlPrefix for --print-scheduler-config; default from --bind-address and --port")
	fs.Int64Var(&pr.stanza.Weight, "scheduler-weight", 5, "weight for --print-scheduler-config")
	fs.DurationVar(&pr.stanza.HTTPTimeout, "scheduler-http-timeout", 5*time.Second, "httpTimeout for --print-scheduler-config")
	fs.StringVar(&pr.stanza.CAFile, "scheduler-ca-file", "", "CA bundle kube-scheduler verifies the extender with, for --print-scheduler-config over HTTPS")
	fs.StringSliceVar(&pr.extra, "managed-resources", nil, "resource names added to those the NADs use, for --print-scheduler-config")
	logging.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	switch extender.Placement(placement) {
	case extender.Spread, extender.Pack:
		o.Cluster.Placement = extender.Placement(placement)
	default:
		return fmt.Errorf("--vf-placement=%q: use spread or pack", placement)
	}
	log, err := logging.Logger(stderr)
	if err != nil {
		return err
	}
	o.Log = log
	ctrllog.SetLogger(log) // controller-runtime's informers and certificate watcher log through it
	if pr.enabled {
		return printConfig(ctx, o, pr, stdout)
	}
	return Run(ctx, o)
}

func (o *Options) restConfig() (*rest.Config, error) {
	if o.RESTConfig != nil {
		return o.RESTConfig, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig %q (empty = in-cluster): %w", o.Kubeconfig, err)
	}
	return cfg, nil
}

// Run watches the cluster and serves the extender API until ctx ends or either fails.
func Run(ctx context.Context, o Options) error {
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
	if o.Port == 0 {
		o.Port = 10262
	}
	if o.MetricsAddress == "" {
		o.MetricsAddress = "127.0.0.1:10263"
	}
	cfg, err := o.restConfig()
	if err != nil {
		return err
	}
	ctx = logr.NewContext(ctx, o.Log)
	cluster := extender.NewCluster(o.Cluster)
	w, err := watch.New(ctx, cfg, cluster)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	binder, err := NewBinder(cfg)
	if err != nil {
		return err
	}
	metricsFilter, err := metricsauth.Filter(cfg, o.Log.WithName("metrics"))
	if err != nil {
		return err
	}
	srv, err := server.New(server.Options{
		Decider: cluster, Ready: w.Synced, Binder: binder, CertFile: o.CertFile, KeyFile: o.KeyFile,
		CertPollInterval: o.CertPollInterval, CallTimeout: o.CallTimeout, Registry: reg, Log: o.Log,
		MetricsFilter: metricsFilter,
	})
	if err != nil {
		return err
	}
	var mln net.Listener
	if o.MetricsAddress != "0" {
		if mln, err = metricsListener(o.MetricsAddress, o.MetricsListener); err != nil {
			return err
		}
	}
	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", net.JoinHostPort(o.Host, strconv.Itoa(o.Port))); err != nil {
			if mln != nil {
				_ = mln.Close()
			}
			return fmt.Errorf("listening for the scheduler: %w", err)
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.Run(ctx) })
	g.Go(func() error { return srv.Run(ctx, ln) })
	if mln != nil {
		g.Go(func() error { return srv.RunMetrics(ctx, mln) })
	}
	return g.Wait()
}

// podBinder binds pods through the API server.
type podBinder struct{ cs kubernetes.Interface }

// NewBinder is a client for bindings only, allowed a scheduler's pace (a burst of bindings is
// not throttled to client-go's default 5 requests/s).
func NewBinder(cfg *rest.Config) (server.Binder, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 500, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return podBinder{cs: cs}, nil
}

func (b podBinder) Bind(ctx context.Context, binding *corev1.Binding) error {
	return b.cs.CoreV1().Pods(binding.Namespace).Bind(ctx, binding, metav1.CreateOptions{})
}

// printConfig lists the NADs once and prints the scheduler's extender stanza.
func printConfig(ctx context.Context, o Options, pr printOptions, stdout io.Writer) error {
	cfg, err := o.restConfig()
	if err != nil {
		return err
	}
	resources, err := listResourceNames(ctx, cfg)
	if err != nil {
		return err
	}
	pr.stanza.ManagedResources = mergeSorted(resources, pr.extra)
	pr.stanza.NodeCacheCapable = true
	if pr.stanza.URLPrefix == "" {
		pr.stanza.URLPrefix = URLPrefix(o.Host, o.Port, o.CertFile != "")
	}
	b, err := StanzaYAML(Extender(pr.stanza))
	if err != nil {
		return err
	}
	_, err = stdout.Write(b)
	return err
}

// listResourceNames reads every NAD once and returns the device resources they use.
func listResourceNames(ctx context.Context, cfg *rest.Config) ([]string, error) {
	scheme := runtime.NewScheme()
	if err := nadv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var list nadv1.NetworkAttachmentDefinitionList
	if err := c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing NetworkAttachmentDefinitions for managedResources: %w", err)
	}
	cluster := extender.NewCluster(extender.Options{})
	for i := range list.Items {
		cluster.SetNAD(&list.Items[i])
	}
	return cluster.ResourceNames(), nil
}

func mergeSorted(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string{}, a...), b...) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// metricsListener listens on addr (or serves ln when given) over TLS with a self-signed
// certificate, so a scraper's bearer token never crosses the network in clear (the filter
// checks it with the API server).
func metricsListener(addr string, ln net.Listener) (net.Listener, error) {
	if ln != nil {
		addr = ln.Addr().String()
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-bind-address %q: %w", addr, err)
	}
	tlsCfg, err := metricsauth.SelfSignedTLS(host)
	if err != nil {
		return nil, err
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, fmt.Errorf("listening for metrics on %s: %w", addr, err)
		}
	}
	return tls.NewListener(ln, tlsCfg), nil
}
