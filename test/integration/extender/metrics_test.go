package extender

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

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
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := mln.Addr().String()
	runExtender(t, cp, app.Options{Kubeconfig: id.Kubeconfig, MetricsListener: mln})

	if code, _ := controlplane.Scrape(t, "http://"+metricsAddr+"/metrics", reader); code == 200 {
		t.Error("/metrics answered over plain HTTP: the scraper's token would cross the network in clear")
	}
	for _, tc := range []struct {
		who, token string
		want       int
	}{{"no token", "", 401}, {"no RBAC", nobody, 403}, {"metrics reader", reader, 200}} {
		code, body := controlplane.Scrape(t, "https://"+metricsAddr+"/metrics", tc.token)
		if code != tc.want {
			t.Errorf("/metrics as %s: %d, want %d: %s", tc.who, code, tc.want, body)
		}
		if tc.want == 200 && !strings.Contains(body, "plexus_extender_filtered_nodes_total") {
			t.Errorf("/metrics lacks plexus_extender_filtered_nodes_total:\n%.2000s", body)
		}
	}
}
