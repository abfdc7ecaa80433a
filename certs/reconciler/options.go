package reconciler

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/plexus-project/plexus/certs"
)

// Options tune the certificate reconciler.
type Options struct {
	// Namespace holds the Secrets; required.
	Namespace string
	// CASecret is the Secret holding the CA and its rotation state; default "plexus-ca".
	CASecret string
	// Serving are the serving certificates to keep.
	Serving []Serving
	// WebhookConfigurations are the names of the Mutating- and ValidatingWebhookConfigurations
	// whose caBundle is kept (a name missing of either kind is skipped).
	WebhookConfigurations []string
	// CALifetime is how long a CA is valid; default one year.
	CALifetime time.Duration
	// Lifetime is how long a serving certificate is valid; default 30 days.
	Lifetime time.Duration
	// RenewFraction of a lifetime after which a certificate is renewed; default 2/3.
	RenewFraction float64
	// TrustDelay is how long a new CA bundle is in place before the new CA signs; default 1m
	// (the API servers' webhook configuration caches and the mounted Secrets must catch up).
	TrustDelay time.Duration
	// Clock defaults to time.Now.
	Clock func() time.Time
}

// Serving is one component's serving certificate.
type Serving struct {
	// SecretName is the kubernetes.io/tls Secret (tls.crt, tls.key, ca.crt).
	SecretName string
	// DNSNames and IPs are what it certifies.
	DNSNames []string
	IPs      []net.IP
}

func (o *Options) setDefaults() {
	if o.CASecret == "" {
		o.CASecret = "plexus-ca"
	}
	if o.CALifetime == 0 {
		o.CALifetime = 365 * 24 * time.Hour
	}
	if o.Lifetime == 0 {
		o.Lifetime = 30 * 24 * time.Hour
	}
	if o.RenewFraction == 0 {
		o.RenewFraction = certs.DefaultRenewFraction
	}
	if o.TrustDelay == 0 {
		o.TrustDelay = time.Minute
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.Namespace == "" {
		errs = append(errs, errors.New("certs: no namespace for the Secrets: set --certs-namespace or $POD_NAMESPACE"))
	}
	if o.RenewFraction <= 0 || o.RenewFraction >= 1 {
		errs = append(errs, fmt.Errorf("certs: renew fraction %v must be between 0 and 1", o.RenewFraction))
	}
	if o.TrustDelay >= time.Duration(float64(o.CALifetime)*(1-o.RenewFraction)) {
		errs = append(errs, fmt.Errorf("certs: trust delay %v leaves the CA no time to roll over within the last third of its lifetime %v: raise --certs-ca-lifetime", o.TrustDelay, o.CALifetime))
	}
	for _, s := range o.Serving {
		if s.SecretName == "" || len(s.DNSNames)+len(s.IPs) == 0 {
			errs = append(errs, fmt.Errorf("certs: serving certificate %+v needs a Secret name and a DNS name or IP", s))
		}
	}
	return errors.Join(errs...)
}

func (o *Options) policy() certs.Policy {
	return certs.Policy{CommonName: "plexus-ca", CALifetime: o.CALifetime, RenewFraction: o.RenewFraction, TrustDelay: o.TrustDelay}
}

// FlagSet is what both the standard library's and pflag's flag sets offer.
type FlagSet interface {
	StringVar(p *string, name, value, usage string)
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
}

// Flags are plexus-controller's --certs-* flags.
type Flags struct {
	Mode, Namespace, CASecret        string
	WebhookService, WebhookSecret    string
	ExtenderService, ExtenderSecret  string
	WebhookConfigurations            string
	CALifetime, Lifetime, TrustDelay time.Duration
}

// Modes of --certs-mode.
const (
	ModeSelfManaged = "self-managed"
	ModeNone        = "none"
)

// AddFlags registers the flags on fs.
func (f *Flags) AddFlags(fs FlagSet) {
	fs.StringVar(&f.Mode, "certs-mode", ModeNone, `"self-managed": issue, inject and rotate the serving certificates; "none": leave them to cert-manager or the installer`)
	fs.StringVar(&f.Namespace, "certs-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the certificate Secrets and Services (default $POD_NAMESPACE)")
	fs.StringVar(&f.CASecret, "certs-ca-secret", "plexus-ca", "Secret holding the CA")
	fs.StringVar(&f.WebhookService, "certs-webhook-service", "plexus-webhook", "Service of the webhook: the names its certificate certifies")
	fs.StringVar(&f.WebhookSecret, "certs-webhook-secret", "plexus-webhook-tls", "Secret of the webhook's serving certificate")
	fs.StringVar(&f.ExtenderService, "certs-extender-service", "", "Service of the scheduler extender (empty: no extender certificate)")
	fs.StringVar(&f.ExtenderSecret, "certs-extender-secret", "plexus-extender-tls", "Secret of the extender's serving certificate")
	fs.StringVar(&f.WebhookConfigurations, "certs-webhook-configurations", "plexus-webhook", "comma-separated names of the Mutating/ValidatingWebhookConfigurations to inject the CA bundle into")
	fs.DurationVar(&f.CALifetime, "certs-ca-lifetime", 365*24*time.Hour, "lifetime of a CA")
	fs.DurationVar(&f.Lifetime, "certs-lifetime", 30*24*time.Hour, "lifetime of a serving certificate (renewed after two thirds)")
	fs.DurationVar(&f.TrustDelay, "certs-trust-delay", time.Minute, "how long a new CA is trusted before it signs")
}

// Options turns the flags into Options; enabled is false with --certs-mode=none.
func (f *Flags) Options() (o Options, enabled bool, err error) {
	switch f.Mode {
	case ModeNone, "":
		return Options{}, false, nil
	case ModeSelfManaged:
	default:
		return Options{}, false, fmt.Errorf("--certs-mode=%q: want %q or %q", f.Mode, ModeSelfManaged, ModeNone)
	}
	o = Options{
		Namespace: f.Namespace, CASecret: f.CASecret,
		CALifetime: f.CALifetime, Lifetime: f.Lifetime, TrustDelay: f.TrustDelay,
		Serving: []Serving{{SecretName: f.WebhookSecret, DNSNames: ServiceDNSNames(f.WebhookService, f.Namespace)}},
	}
	if f.ExtenderService != "" {
		o.Serving = append(o.Serving, Serving{SecretName: f.ExtenderSecret, DNSNames: append(ServiceDNSNames(f.ExtenderService, f.Namespace), "localhost"), IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	}
	for _, n := range strings.Split(f.WebhookConfigurations, ",") {
		if n = strings.TrimSpace(n); n != "" {
			o.WebhookConfigurations = append(o.WebhookConfigurations, n)
		}
	}
	o.setDefaults()
	return o, true, o.validate()
}

// ServiceDNSNames are the names a client inside the cluster reaches Service name in namespace by.
func ServiceDNSNames(name, namespace string) []string {
	return []string{name, name + "." + namespace, name + "." + namespace + ".svc", name + "." + namespace + ".svc.cluster.local"}
}
