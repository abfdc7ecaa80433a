package config

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestValidateHostPaths(t *testing.T) {
	tests := []struct {
		name     string
		ipam     IPAM
		wantErrs []string // substrings, one per error, in order
		wantWarn string
	}{
		{name: "nothing set"},
		{name: "all inside the Plexus directories", ipam: IPAM{LogFile: "/var/log/plexus/n3.log", ConfigurationPath: "/etc/plexus/flat.json",
			LockDir: "/run/plexus-ipam/n3", NodeName: "worker-1.example"}},
		{name: "the default lock_dir itself", ipam: IPAM{LockDir: "/run/plexus-ipam"}},
		{name: "Whereabouts' flat file", ipam: IPAM{ConfigurationPath: "/etc/cni/net.d/whereabouts.d/whereabouts.conf"}},
		{name: "log_file anywhere", ipam: IPAM{LogFile: "/etc/cron.d/evil"},
			wantErrs: []string{`ipam.log_file: Invalid value: "/etc/cron.d/evil": a network configuration may only log to a file inside /var/log/plexus`}},
		{name: "log_file escaping by ..", ipam: IPAM{LogFile: "/var/log/plexus/../../../etc/shadow"}, wantErrs: []string{"ipam.log_file"}},
		{name: "log_file the directory itself", ipam: IPAM{LogFile: "/var/log/plexus"}, wantErrs: []string{"ipam.log_file"}},
		{name: "relative log_file", ipam: IPAM{LogFile: "plexus/x.log"}, wantErrs: []string{"ipam.log_file"}},
		{name: "configuration_path anywhere", ipam: IPAM{ConfigurationPath: "/etc/shadow"},
			wantErrs: []string{`ipam.configuration_path: Invalid value: "/etc/shadow": a network configuration may only name a flat file inside /etc/plexus or one of`}},
		{name: "lock_dir anywhere", ipam: IPAM{LockDir: "/etc"},
			wantErrs: []string{`ipam.lock_dir: Invalid value: "/etc": a network configuration may only name /run/plexus-ipam or a directory inside it`}},
		{name: "lock_dir a sibling with the same prefix", ipam: IPAM{LockDir: "/run/plexus-ipam-evil"}, wantErrs: []string{"ipam.lock_dir"}},
		{name: "node_name with a path", ipam: IPAM{NodeName: "../../etc/x"},
			wantErrs: []string{`ipam.node_name: Invalid value: "../../etc/x": not a valid node name`}},
		{name: "node_name with capitals", ipam: IPAM{NodeName: "Node_1"}, wantErrs: []string{"ipam.node_name"}},
		{name: "several at once", ipam: IPAM{LogFile: "/tmp/x", LockDir: "/tmp"}, wantErrs: []string{"ipam.log_file", "ipam.lock_dir"}},
		{name: "kubeconfig inside the plugin's directory", ipam: kubeconfig("/etc/cni/net.d/plexus-ipam.d/other.kubeconfig")},
		{name: "kubeconfig inside /etc/plexus", ipam: kubeconfig("/etc/plexus/ipam.kubeconfig")},
		{name: "Whereabouts' kubeconfig is a warning", ipam: kubeconfig("/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig"),
			wantWarn: `ipam.kubernetes.kubeconfig "/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig" is ignored`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs, warns := ValidateHostPaths(&tt.ipam, field.NewPath("ipam"))
			if len(errs) != len(tt.wantErrs) {
				t.Fatalf("errors %v, want %d", errs, len(tt.wantErrs))
			}
			for i, want := range tt.wantErrs {
				if !strings.Contains(errs[i].Error(), want) {
					t.Errorf("error %d = %q, want %q", i, errs[i].Error(), want)
				}
			}
			if (tt.wantWarn == "") != (len(warns) == 0) || (tt.wantWarn != "" && !strings.Contains(warns[0], tt.wantWarn)) {
				t.Fatalf("warnings %q, want %q", warns, tt.wantWarn)
			}
		})
	}
}

func kubeconfig(p string) IPAM {
	var i IPAM
	i.Kubernetes.Kubeconfig = p
	return i
}

// TestParseRefusesHostPaths: the plugin's parser refuses what ValidateHostPaths refuses, as a
// *HostPathError, and ignores a foreign kubeconfig in favour of the flat file's or the node's.
func TestParseRefusesHostPaths(t *testing.T) {
	_, err := Parse([]byte(`{"name":"n","ipam":{"range":"10.0.0.0/24","log_file":"/etc/passwd"}}`), nil, "")
	var hp *HostPathError
	if !errors.As(err, &hp) || !strings.Contains(err.Error(), `ipam.log_file: Invalid value: "/etc/passwd"`) {
		t.Fatalf("err = %v", err)
	}
	c, err := Parse([]byte(`{"name":"n","ipam":{"range":"10.0.0.0/24","kubernetes":{"kubeconfig":"/root/.kube/config"}}}`),
		[]byte(`{"kubernetes":{"kubeconfig":"/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig"}}`), "")
	if err != nil || c.Kubeconfig != "/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig" || len(c.Warnings) != 1 {
		t.Fatalf("kubeconfig %q, warnings %q, err %v", c.Kubeconfig, c.Warnings, err)
	}
}

func TestNodeSettingsWin(t *testing.T) {
	stdin := []byte(`{"name":"n","ipam":{"range":"10.0.0.0/24","node_name":"other","lock_dir":"/run/plexus-ipam/x",
		"kubernetes":{"kubeconfig":"/etc/plexus/nad.kubeconfig"},"log_file":"/var/log/plexus/n.log"}}`)
	node, err := ParseNodeConfig([]byte(`{"node_name":"worker-1","kubeconfig":"/var/lib/plexus/kc","lock_dir":"/tmp/locks","log_file":"/tmp/node.log","log_level":"debug"}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseForNode(stdin, nil, node, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeName != "worker-1" || c.Kubeconfig != "/var/lib/plexus/kc" || c.LockDir != "/tmp/locks" ||
		c.LogFile != "/var/log/plexus/n.log" || c.LogLevel != "debug" {
		t.Fatalf("config %+v", c)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], `node_name "other" of the network configuration is ignored`) {
		t.Fatalf("warnings %q", c.Warnings)
	}
	// Without node settings the network configuration's (allowed) values are used.
	c, err = ParseForNode(stdin, nil, nil, "")
	if err != nil || c.NodeName != "other" || c.LockDir != "/run/plexus-ipam/x" || c.Kubeconfig != "/etc/plexus/nad.kubeconfig" {
		t.Fatalf("config %+v, %v", c, err)
	}
	for _, bad := range []string{`{"node_name":"a/b"}`, `{"nodename":"x"}`, `not json`} {
		if _, err := ParseNodeConfig([]byte(bad)); err == nil {
			t.Errorf("node configuration %s accepted", bad)
		}
	}
}
