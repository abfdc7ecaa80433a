package config

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// FuzzParse: whatever a NAD holds, parsing never panics, and a configuration that parses names
// no host path outside the node's Plexus directories (ValidateHostPaths) and has a range.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"cniVersion":"1.0.0","name":"n","ipam":{"type":"plexus-ipam","range":"10.0.0.0/24","exclude":["10.0.0.1"],"gateway":"10.0.0.1"}}`,
		`{"name":"ds","ipam":{"ipRanges":[{"range":"10.0.0.0/24"},{"range":"fd00::/64","exclude":["fd00::/120"]}],"sticky_ips":true,"sticky_ttl":"1m"}}`,
		`{"name":"r","runtimeConfig":{"ips":["10.0.0.5/24"]},"ipam":{"range":"10.0.0.5-10.0.0.9/24","log_file":"/var/log/plexus/x","lock_dir":"/run/plexus-ipam/a"}}`,
		`{"name":"h","ipam":{"range":"10.0.0.0/24","configuration_path":"/etc/plexus/f","kubernetes":{"kubeconfig":"/k"},"node_name":"n-1"}}`,
	} {
		f.Add([]byte(s), []byte(`{"range_start":"10.0.0.3","log_level":"debug"}`), "IP=10.0.0.7;K8S_POD_NAME=p")
	}
	f.Fuzz(func(t *testing.T, stdin, flat []byte, args string) {
		c, err := Parse(stdin, flat, args)
		if err != nil {
			return
		}
		if len(c.Ranges) == 0 {
			t.Fatalf("parsed with no range: %s", stdin)
		}
		n := &NetConf{}
		if json.Unmarshal(stdin, n) == nil {
			if errs, _ := ValidateHostPaths(&n.IPAM, field.NewPath("ipam")); len(errs) > 0 {
				t.Fatalf("parsed a configuration ValidateHostPaths refuses: %v", errs)
			}
		}
		if strings.ContainsRune(c.NodeName, '/') {
			t.Fatalf("node name %q", c.NodeName)
		}
	})
}

// FuzzNodeConfig: the node configuration never panics the parser, and a node name it accepts is
// a valid one.
func FuzzNodeConfig(f *testing.F) {
	f.Add([]byte(`{"node_name":"worker-1","kubeconfig":"/etc/plexus/kc","lock_dir":"/run/plexus-ipam"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseNodeConfig(b)
		if err == nil && n.Validate() != nil {
			t.Fatalf("accepted %q", n.NodeName)
		}
	})
}
