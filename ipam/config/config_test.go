package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		stdin   string
		flat    string
		args    string
		check   func(t *testing.T, c *Config)
		wantErr string
	}{
		{
			name:  "whereabouts example",
			stdin: `{"cniVersion":"0.3.1","name":"wa","type":"macvlan","ipam":{"type":"plexus-ipam","range":"192.168.2.225/28","exclude":["192.168.2.229/30","192.168.2.236/32"],"gateway":"192.168.2.238","log_level":"debug","kubernetes":{"kubeconfig":"/k"}}}`,
			args:  "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p-0;K8S_POD_UID=u1",
			check: func(t *testing.T, c *Config) {
				if len(c.Ranges) != 1 || c.Ranges[0].Size().Int64() != 8 {
					t.Fatalf("ranges %v", c.Ranges)
				}
				// A Whereabouts kubeconfig outside the node's Plexus directories is ignored, with a warning.
				if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], `"/k" is ignored`) {
					t.Fatalf("warnings %q", c.Warnings)
				}
				if c.Kubeconfig != DefaultKubeconfig || c.Pod != (Pod{"ns", "p-0", "u1"}) || c.Timeout != DefaultTimeout || c.LockDir != DefaultLockDir {
					t.Fatalf("config %+v", c)
				}
			},
		},
		{
			name:  "dual stack ipRanges with gateways per family",
			stdin: `{"name":"ds","ipam":{"ipRanges":[{"range":"10.0.0.0/24"},{"range":"fd00::/64","exclude":["fd00::/120"]}],"gateway":"10.0.0.1","network_name":"blue","node_name":"n1","sticky_ips":true,"sticky_ttl":"1m","timeout":"5s"}}`,
			check: func(t *testing.T, c *Config) {
				if len(c.Ranges) != 2 || c.Ranges[0].Gateway().String() != "10.0.0.1" || c.Ranges[1].Gateway().IsValid() {
					t.Fatalf("ranges %v", c.Ranges)
				}
				if c.NetworkName != "blue" || c.NodeName != "n1" || !c.Sticky || c.StickyTTL != time.Minute || c.Timeout != 5*time.Second {
					t.Fatalf("config %+v", c)
				}
			},
		},
		{
			name:  "flat file fills what the ipam section leaves out",
			stdin: `{"name":"f","ipam":{"range":"10.0.0.0/24","configuration_path":"/etc/plexus/flat.conf","log_level":"error"}}`,
			flat:  `{"kubernetes":{"kubeconfig":"/flat"},"log_level":"debug"}`,
			check: func(t *testing.T, c *Config) {
				if c.Kubeconfig != "/flat" || c.LogLevel != "error" {
					t.Fatalf("config %+v", c)
				}
			},
		},
		{
			name:  "requested addresses from runtimeConfig, args and CNI_ARGS",
			stdin: `{"name":"r","runtimeConfig":{"ips":["10.0.0.5/24"]},"args":{"cni":{"ips":["fd00::5"]}},"ipam":{"ipRanges":[{"range":"10.0.0.0/24"},{"range":"fd00::/64"}]}}`,
			check: func(t *testing.T, c *Config) {
				if len(c.Requested) != 2 || c.Requested[0] != netip.MustParseAddr("10.0.0.5") || c.Requested[1] != netip.MustParseAddr("fd00::5") {
					t.Fatalf("requested %v", c.Requested)
				}
			},
		},
		{
			name:  "CNI_ARGS IP=",
			stdin: `{"name":"r","ipam":{"range":"10.0.0.0/24"}}`,
			args:  "IP=10.0.0.9",
			check: func(t *testing.T, c *Config) {
				if len(c.Requested) != 1 || c.Requested[0].String() != "10.0.0.9" {
					t.Fatalf("requested %v", c.Requested)
				}
			},
		},
		{name: "requested outside", stdin: `{"name":"r","ipam":{"range":"10.0.0.0/24"}}`, args: "IP=10.0.1.9", wantErr: "outside every configured range"},
		{name: "requested excluded", stdin: `{"name":"r","ipam":{"range":"10.0.0.0/24","exclude":["10.0.0.9"]}}`, args: "IP=10.0.0.9", wantErr: "outside the usable addresses"},
		{name: "no range", stdin: `{"name":"r","ipam":{"type":"plexus-ipam"}}`, wantErr: "neither \"range\" nor \"ipRanges\""},
		{name: "no ipam", stdin: `{"name":"r"}`, wantErr: "no ipam section"},
		{name: "overlapping ipRanges", stdin: `{"name":"r","ipam":{"ipRanges":[{"range":"10.0.0.0/24"},{"range":"10.0.0.0/25"}]}}`, wantErr: "overlap"},
		{name: "bad timeout", stdin: `{"name":"r","ipam":{"range":"10.0.0.0/24","timeout":"soon"}}`, wantErr: "positive Go duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var flat []byte
			if tt.flat != "" {
				flat = []byte(tt.flat)
			}
			c, err := Parse([]byte(tt.stdin), flat, tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestConfigurationPath(t *testing.T) {
	if got := ConfigurationPath([]byte(`{"ipam":{"configuration_path":"/etc/x.conf"}}`)); got != "/etc/x.conf" {
		t.Fatalf("got %q", got)
	}
}
