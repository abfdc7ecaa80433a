package extender

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-project/plexus/extender/app"
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	"github.com/plexus-project/plexus/test/controlplane"
)

// TestMetricsAuthenticated: the extender, running with only its chart rules, serves /metrics
// over HTTPS to scrapers the API server authenticates and authorizes, and to nobody else.
func TestMetricsAuthenticated(t *testing.T) {
	ctrllog.SetLogger(logr.Discard())
	scheme := controlplane.DefaultScheme()
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	cp := controlplane.Start(t, controlplane.Options{Scheme: scheme})
	id := cp.NewIdentity(t, "plexus-extender", filepath.Join("testdata", "clusterrole.yaml"))
	reader, nobody := cp.MetricsReaderToken(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := mln.Addr().String()
	mln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{Kubeconfig: id.Kubeconfig, Listener: ln, MetricsAddress: metricsAddr})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("extender: %v", err)
		}
	})
	e := &env{cp: cp, c: cp.Client, url: "http://" + ln.Addr().String() + "/"}
	e.waitReady(t)

	get := func(url, token string) (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("http://"+metricsAddr+"/metrics", reader); code == http.StatusOK {
		t.Error("/metrics answered over plain HTTP: the scraper's token would cross the network in clear")
	}
	for _, tc := range []struct {
		who, token string
		want       int
	}{{"no token", "", 401}, {"no RBAC", nobody, 403}, {"metrics reader", reader, 200}} {
		code, body := get("https://"+metricsAddr+"/metrics", tc.token)
		if code != tc.want {
			t.Errorf("/metrics as %s: %d, want %d: %s", tc.who, code, tc.want, body)
		}
		if tc.want == 200 && !strings.Contains(body, "plexus_extender_filtered_nodes_total") {
			t.Errorf("/metrics lacks plexus_extender_filtered_nodes_total:\n%.2000s", body)
		}
	}
}
