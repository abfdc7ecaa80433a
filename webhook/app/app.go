package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/internal/cli"
	"github.com/plexus-project/plexus/internal/metricsauth"
	"github.com/plexus-project/plexus/webhook/inject"
	"github.com/plexus-project/plexus/webhook/nadcache"
	"github.com/plexus-project/plexus/webhook/server"
	"github.com/plexus-project/plexus/webhook/validate"
)

// Options are plexus-webhook's settings.
type Options struct {
	// Kubeconfig is the kubeconfig file; "" means in-cluster. Ignored when RESTConfig is set.
	Kubeconfig string
	// RESTConfig, when set, is used instead of Kubeconfig (tests).
	RESTConfig *rest.Config
	// Host and Port to serve HTTPS on; defaults "" and 8443. Ignored when Listener is set.
	Host string
	Port int
	// Listener, when set, is served instead of Host:Port (tests).
	Listener net.Listener
	// CertFile and KeyFile are the serving pair, reloaded when they change.
	CertFile, KeyFile string
	// CertPollInterval is how often the pair is re-read besides file events; default 10s.
	CertPollInterval time.Duration
	// ResourceNameKeys are the NAD annotations naming the device resource; default
	// k8s.v1.cni.cncf.io/resourceName.
	ResourceNameKeys []string
	// HonorResources adds to resources the user already set instead of leaving them.
	HonorResources bool
	// NamespaceIsolation refuses pods selecting NADs of another namespace than their own and
	// SharedNamespaces. Main turns it on by default (--namespace-isolation).
	NamespaceIsolation bool
	// SharedNamespaces hold NADs every namespace may select under isolation; Main's default
	// is ["default"].
	SharedNamespaces []string
	// SchedulerName, when set, is given to pods that select networks (see inject.Options).
	SchedulerName string
	// Log is the logger; default logr.Discard().
	Log logr.Logger
}

// Main parses args (without the program name) and runs until ctx ends; logs go to stderr.
func Main(ctx context.Context, args []string, stderr io.Writer) error {
	fs := pflag.NewFlagSet("plexus-webhook", pflag.ContinueOnError)
	var o Options
	logging := cli.Logging{}
	logging.AddFlags(fs)
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file; in-cluster configuration when empty")
	fs.StringVar(&o.Host, "bind-address", "", "address to serve HTTPS on (all when empty)")
	fs.IntVar(&o.Port, "port", 8443, "HTTPS port for /mutate, /validate, /healthz, /readyz and /metrics (authenticated)")
	fs.StringVar(&o.CertFile, "tls-cert-file", "", "PEM serving certificate (with chain); reloaded when it changes")
	fs.StringVar(&o.KeyFile, "tls-key-file", "", "PEM serving key; reloaded when it changes")
	fs.DurationVar(&o.CertPollInterval, "tls-poll-interval", 10*time.Second, "how often the serving pair is re-read besides file events")
	fs.StringSliceVar(&o.ResourceNameKeys, "resource-name-keys", []string{network.ResourceNameAnnotation}, "NAD annotations naming the device resource, first set wins")
	fs.BoolVar(&o.HonorResources, "honor-resources", false, "add the networks' devices to a resource the container already sets, instead of leaving it")
	fs.BoolVar(&o.NamespaceIsolation, "namespace-isolation", true, "refuse pods selecting NetworkAttachmentDefinitions of another namespace, unless it is shared")
	fs.StringVar(&o.SchedulerName, "scheduler-name", "", "schedulerName given to pods that select networks and use the default scheduler (the chart's second scheduler); empty leaves it")
	fs.StringSliceVar(&o.SharedNamespaces, "shared-namespaces", []string{"default"}, "namespaces whose NetworkAttachmentDefinitions pods of every namespace may select under --namespace-isolation")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	log, err := logging.Logger(stderr)
	if err != nil {
		return err
	}
	o.Log = log
	ctrllog.SetLogger(log) // controller-runtime's cache and metrics filter log through it
	return Run(ctx, o)
}

// Run starts the NAD cache and the server and blocks until ctx ends or either fails.
func Run(ctx context.Context, o Options) error {
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
	cfg := o.RESTConfig
	if cfg == nil {
		var err error
		if cfg, err = clientcmd.BuildConfigFromFlags("", o.Kubeconfig); err != nil {
			return fmt.Errorf("loading the kubeconfig %q (empty = in-cluster): %w", o.Kubeconfig, err)
		}
	}
	reg := prometheus.NewRegistry()
	counter := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plexus_webhook_apiserver_requests_total",
		Help: "Requests the webhook made to the API server, by verb (GET, POST, ...); watches count once when opened.",
	}, []string{"verb"})
	reg.MustRegister(counter)
	// Scrapers' TokenReviews and SubjectAccessReviews go through the plain config: the counter
	// measures what admission costs the API server.
	metricsFilter, err := metricsauth.Filter(cfg, o.Log.WithName("metrics"))
	if err != nil {
		return err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countingTransport{next: rt, requests: counter} })

	cache, err := nadcache.New(ctx, cfg)
	if err != nil {
		return err
	}
	var iso *nadcache.Isolation
	if o.NamespaceIsolation {
		iso = &nadcache.Isolation{Shared: o.SharedNamespaces}
	}
	srv, err := server.New(server.Options{
		Host: o.Host, Port: o.Port, CertFile: o.CertFile, KeyFile: o.KeyFile, CertPollInterval: o.CertPollInterval,
		Mutator:       inject.New(cache, inject.Options{ResourceNameKeys: o.ResourceNameKeys, HonorResources: o.HonorResources, Isolation: iso, SchedulerName: o.SchedulerName}),
		Validator:     validate.New(cache, validate.Options{Isolation: iso}),
		Ready:         cache.Synced,
		Registry:      reg,
		MetricsFilter: metricsFilter,
		Log:           o.Log,
	})
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(logr.NewContext(ctx, o.Log))
	g.Go(func() error { return cache.Run(ctx) })
	g.Go(func() error {
		if o.Listener != nil {
			return srv.Run(ctx, o.Listener)
		}
		return srv.ListenAndRun(ctx)
	})
	return g.Wait()
}

// countingTransport counts the requests made through it.
type countingTransport struct {
	next     http.RoundTripper
	requests *prometheus.CounterVec
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	verb := r.Method
	if r.Method == http.MethodGet && strings.Contains(r.URL.RawQuery, "watch=true") {
		verb = "WATCH"
	}
	t.requests.WithLabelValues(verb).Inc()
	return t.next.RoundTrip(r)
}
