package app

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestFlags(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	var o Options
	o.AddFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	// Secure by default: metrics over HTTPS on :8443 (never the old plain :8080), probes on :8081.
	if !o.LeaderElect || o.MetricsAddr != ":8443" || o.ProbeAddr != ":8081" {
		t.Fatalf("defaults %+v", o)
	}
	if err := fs.Parse([]string{"--metrics-bind-address=127.0.0.1:9443", "--health-probe-bind-address=0", "--ipam-reclaim-interval=5s"}); err != nil {
		t.Fatal(err)
	}
	if o.MetricsAddr != "127.0.0.1:9443" || o.ProbeAddr != "0" || o.ReclaimInterval.String() != "5s" {
		t.Fatalf("parsed %+v", o)
	}
}

func TestMainRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--log-format=yaml"}, {"-metrics-bind-address=x"}, {"--no-such-flag"}} {
		if err := Main(context.Background(), args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if err := Main(context.Background(), []string{"--help"}, io.Discard); err != nil && !strings.Contains(err.Error(), "help") {
		t.Errorf("--help: %v", err)
	}
}
