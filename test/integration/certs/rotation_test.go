package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/plexus-project/plexus/certs"
	certsreconciler "github.com/plexus-project/plexus/certs/reconciler"
	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/test/controlplane"
	"github.com/plexus-project/plexus/webhook/app"
	"github.com/plexus-project/plexus/webhook/config"
)

const (
	namespace     = "plexus-system"
	webhookSecret = "plexus-webhook-tls"
	resourceName  = "intel.com/sriov_netdevice"
)

// lifetime is the CA and serving certificate lifetime of the rotation test: $PLEXUS_CERTS_LIFETIME,
// default 2m (the acceptance figure).
func lifetime(t *testing.T) time.Duration {
	d := 2 * time.Minute
	if s := os.Getenv("PLEXUS_CERTS_LIFETIME"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("PLEXUS_CERTS_LIFETIME=%q: %v", s, err)
		}
	}
	return d
}

// TestRotationWithoutAdmissionOutage starts the certs reconciler with short lifetimes and the
// real webhook serving its Secret, and sends admission requests through the real API server
// the whole time while the CA rotates twice: not one may fail.
func TestRotationWithoutAdmissionOutage(t *testing.T) {
	ctrllog.SetLogger(logr.Discard())
	life := lifetime(t)
	cp := controlplane.Start(t, controlplane.Options{})
	// Cleanups run last-registered first: everything below stops before the served files go.
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := cp.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}

	// The webhook's address is known before it serves: the certificate certifies 127.0.0.1.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + ln.Addr().String()
	opts := config.Options{Namespace: namespace, URL: url, TimeoutSeconds: 5}
	for _, o := range []client.Object{config.Mutating(opts), config.Validating(opts)} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("creating %T: %v", o, err)
		}
	}

	startCertsController(ctx, t, cp, certsreconciler.Options{
		Namespace:             namespace,
		Serving:               []certsreconciler.Serving{{SecretName: webhookSecret, DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}},
		WebhookConfigurations: []string{"plexus-webhook"},
		CALifetime:            life,
		Lifetime:              life,
		TrustDelay:            life / 24,
	})
	assertInjected(ctx, t, c)

	// Serve the Secret's pair from files, as kubelet projects a mounted Secret.
	syncSecretFiles(ctx, t, c, dir)
	webhookCtx, stopWebhook := context.WithCancel(ctx)
	webhookDone := make(chan struct{})
	go func() {
		defer close(webhookDone)
		err := app.Run(webhookCtx, app.Options{RESTConfig: cp.Config, Listener: ln,
			CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), CertPollInterval: time.Second,
			Log: testr.NewWithOptions(t, testr.Options{Verbosity: 0})})
		if err != nil && webhookCtx.Err() == nil {
			t.Errorf("webhook: %v", err)
		}
	}()
	t.Cleanup(func() { stopWebhook(); <-webhookDone })
	if err := c.Create(ctx, &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "sriov-net", Annotations: map[string]string{network.ResourceNameAnnotation: resourceName}},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","name":"sriov-net","type":"plexus-sriov"}`},
	}); err != nil {
		t.Fatal(err)
	}
	waitAdmitted(ctx, t, c)

	// Admission load and a watch on which CA signs what the webhook serves.
	load := startLoad(ctx, c)
	served := watchServedIssuer(ctx, url)
	deadline := time.Now().Add(3*life + time.Minute)
	for served.distinct() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Second)
	}
	time.Sleep(2 * time.Second) // a few requests after the second switch
	cancelLoad := load.stop()
	ok, failed := cancelLoad()
	t.Logf("admission requests through the API server: %d answered, %d failed; the webhook served certificates of %d CAs over %v",
		ok, len(failed), served.distinct(), time.Since(load.started).Round(time.Second))
	if served.distinct() < 3 {
		t.Fatalf("the webhook served certificates of %d CAs by the deadline, want 3 (two rotations)", served.distinct())
	}
	if len(failed) > 0 {
		t.Fatalf("%d admission requests failed during rotation, first: %v", len(failed), failed[0])
	}
	if min := int64(life / time.Second); ok < min {
		t.Fatalf("only %d admission requests were answered, want at least %d", ok, min)
	}
}

func startCertsController(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, opts certsreconciler.Options) {
	t.Helper()
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme:  cp.Client.Scheme(),
		Metrics: metricsserver.Options{BindAddress: "0"},
		Logger:  testr.NewWithOptions(t, testr.Options{Verbosity: 0}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := certsreconciler.SetupWithManager(mgr, opts); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { stop(); <-done })
}

// assertInjected waits until both configurations carry the CA that signed the serving Secret.
func assertInjected(ctx context.Context, t *testing.T, c client.Client) {
	t.Helper()
	eventually(t, 30*time.Second, "the caBundle injected into both webhook configurations", func() error {
		var s corev1.Secret
		if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: webhookSecret}, &s); err != nil {
			return err
		}
		leaf, err := certs.ParseKeyPair(s.Data["tls.crt"], s.Data["tls.key"])
		if err != nil {
			return err
		}
		var m admissionregistrationv1.MutatingWebhookConfiguration
		var v admissionregistrationv1.ValidatingWebhookConfiguration
		if err := c.Get(ctx, types.NamespacedName{Name: "plexus-webhook"}, &m); err != nil {
			return err
		}
		if err := c.Get(ctx, types.NamespacedName{Name: "plexus-webhook"}, &v); err != nil {
			return err
		}
		bundles := [][]byte{m.Webhooks[0].ClientConfig.CABundle, s.Data["ca.crt"]}
		for _, w := range v.Webhooks {
			bundles = append(bundles, w.ClientConfig.CABundle)
		}
		for i, b := range bundles {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(b) {
				return fmt.Errorf("bundle %d is empty", i)
			}
			if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
				return fmt.Errorf("bundle %d does not verify the serving certificate: %w", i, err)
			}
		}
		return nil
	})
}

// syncSecretFiles writes the serving Secret's tls.crt and tls.key into dir now and whenever it
// changes, the way kubelet updates a mounted Secret.
func syncSecretFiles(ctx context.Context, t *testing.T, c client.Client, dir string) {
	t.Helper()
	var last string
	write := func() error {
		var s corev1.Secret
		if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: webhookSecret}, &s); err != nil {
			return err
		}
		if v := s.ResourceVersion; v == last {
			return nil
		}
		// As kubelet's atomic writer: the pair goes into a new directory, then one rename of the
		// ..data symlink switches both files at once.
		gen := filepath.Join(dir, "..gen-"+s.ResourceVersion)
		if err := os.MkdirAll(gen, 0o700); err != nil {
			return err
		}
		for _, k := range []string{"tls.key", "tls.crt"} {
			if err := os.WriteFile(filepath.Join(gen, k), s.Data[k], 0o600); err != nil {
				return err
			}
			if err := os.Symlink(filepath.Join("..data", k), filepath.Join(dir, k)); err != nil && !os.IsExist(err) {
				return err
			}
		}
		tmp := filepath.Join(dir, "..data_tmp")
		_ = os.Remove(tmp)
		if err := os.Symlink(filepath.Base(gen), tmp); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			return err
		}
		last = s.ResourceVersion
		return nil
	}
	if err := write(); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			time.Sleep(500 * time.Millisecond)
			if err := write(); err != nil && ctx.Err() == nil {
				t.Logf("syncing the serving Secret's files: %v", err)
			}
		}
	}()
	t.Cleanup(func() { stop(); <-done })
}

// networkPod selects the SR-IOV network; the webhook must add the device resource.
func networkPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: map[string]string{network.NetworksAnnotation: "sriov-net"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}
}

// admit dry-run creates a pod through the API server and checks both webhooks ran.
func admit(ctx context.Context, c client.Client, name string) error {
	p := networkPod(name)
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Create(rctx, p, client.DryRunAll); err != nil {
		return err
	}
	if q := p.Spec.Containers[0].Resources.Limits[corev1.ResourceName(resourceName)]; q.Cmp(resource.MustParse("1")) != 0 {
		return fmt.Errorf("pod %s admitted without the injected %s (limits %v): the mutating webhook did not run", name, resourceName, p.Spec.Containers[0].Resources.Limits)
	}
	return nil
}

func waitAdmitted(ctx context.Context, t *testing.T, c client.Client) {
	t.Helper()
	eventually(t, 60*time.Second, "the API server admitting a pod through the webhook", func() error { return admit(ctx, c, "probe") })
}

type load struct {
	started time.Time
	ok      atomic.Int64
	mu      sync.Mutex
	failed  []error
	wg      sync.WaitGroup
	cancel  context.CancelFunc
}

// startLoad sends an admission request every 100ms from when it starts, each on time whatever
// the previous one took.
func startLoad(ctx context.Context, c client.Client) *load {
	ctx, cancel := context.WithCancel(ctx)
	l := &load{started: time.Now(), cancel: cancel}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			l.wg.Add(1)
			go func(i int) {
				defer l.wg.Done()
				err := admit(context.WithoutCancel(ctx), c, fmt.Sprintf("load-%d", i))
				if err != nil {
					l.mu.Lock()
					l.failed = append(l.failed, fmt.Errorf("request %d at %v: %w", i, time.Since(l.started).Round(time.Millisecond), err))
					l.mu.Unlock()
					return
				}
				l.ok.Add(1)
			}(i)
		}
	}()
	return l
}

// stop returns a function that stops sending, waits for the requests in flight and counts.
func (l *load) stop() func() (int64, []error) {
	return func() (int64, []error) {
		l.cancel()
		l.wg.Wait()
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.ok.Load(), l.failed
	}
}

// issuers records the distinct CAs (by authority key id) of the certificates the webhook serves.
type issuers struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (s *issuers) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func watchServedIssuer(ctx context.Context, url string) *issuers {
	s := &issuers{seen: map[string]bool{}}
	addr := url[len("https://"):]
	go func() {
		for ctx.Err() == nil {
			conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // only reads which CA signed the served certificate
			if err == nil {
				leaf := conn.ConnectionState().PeerCertificates[0]
				s.mu.Lock()
				s.seen[string(leaf.AuthorityKeyId)] = true
				s.mu.Unlock()
				conn.Close()
			}
			time.Sleep(250 * time.Millisecond)
		}
	}()
	return s
}

func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
