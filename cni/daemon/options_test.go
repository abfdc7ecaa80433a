package daemon

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestFlagsAndValidate(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{args: nil},
		{args: []string{"--cni-server"}},
		{args: []string{"--cni-server", "--cni-cluster-network", "/etc/cni/net.d/10-flannel.conflist"}},
		{args: []string{"--cni-server", "--cni-cluster-network", "kube-system/cluster"}},
		{args: []string{"--cni-server", "--cni-cluster-network", "flannel"}, wantErr: "--cni-cluster-network"},
		{args: []string{"--cni-server", "--cni-max-in-flight", "0"}, wantErr: "--cni-max-in-flight"},
		{args: []string{"--cni-server", "--cni-state-dir", ""}, wantErr: "--cni-state-dir"},
		{args: []string{"--cni-server", "--cni-max-delegates", "0"}, wantErr: "--cni-max-delegates"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var o CNIOptions
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate = %v, want %q", err, tt.wantErr)
			}
			if !fs.Changed("cni-max-delegates") && o.MaxDelegates < 4 {
				t.Errorf("--cni-max-delegates = %d, want 4 per CPU by default", o.MaxDelegates)
			}
			if !o.NamespaceIsolation || len(o.GlobalNamespaces) != 1 || o.GlobalNamespaces[0] != "default" || o.MetricsAddr != "127.0.0.1:8093" {
				t.Errorf("defaults: isolation %v, global %v, metrics %q; want on, [default], loopback", o.NamespaceIsolation, o.GlobalNamespaces, o.MetricsAddr)
			}
		})
	}
}
