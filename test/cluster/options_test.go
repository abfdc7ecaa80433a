package cluster

import (
	"strings"
	"testing"
)

func TestOptionsDefaults(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
		check   func(t *testing.T, o Options)
	}{
		{name: "zero value", opts: Options{Dir: "/tmp/x"}, check: func(t *testing.T, o Options) {
			if o.Name != "plexus" || o.Nodes != 2 {
				t.Errorf("got name %q, %d nodes; want plexus, 2", o.Name, o.Nodes)
			}
		}},
		{name: "control plane only", opts: Options{Dir: "/tmp/x", NoNodes: true, Nodes: 3}, check: func(t *testing.T, o Options) {
			if o.Nodes != 0 {
				t.Errorf("NoNodes left %d nodes", o.Nodes)
			}
		}},
		{name: "sriov defaults", opts: Options{Dir: "/tmp/x", SRIOV: &SRIOVOptions{}}, check: func(t *testing.T, o Options) {
			if o.SRIOV.PFs != 2 || o.SRIOV.VFsPerPF != 4 {
				t.Errorf("SR-IOV defaults %+v, want 2 PFs x 4 VFs", *o.SRIOV)
			}
		}},
		{name: "name too long", opts: Options{Dir: "/tmp/x", Name: "toolong1"}, wantErr: "1 to 6 lowercase"},
		{name: "name with a dash", opts: Options{Dir: "/tmp/x", Name: "a-b"}, wantErr: "1 to 6 lowercase"},
		{name: "too many nodes", opts: Options{Dir: "/tmp/x", Nodes: 16}, wantErr: "1 to 15"},
		{name: "network id", opts: Options{Dir: "/tmp/x", NetworkID: 16}, wantErr: "0 to 15"},
		{name: "socket path too long", opts: Options{Dir: "/tmp/" + strings.Repeat("d", 60)}, wantErr: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.setDefaults()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, tt.opts)
		})
	}
}

func TestAddressing(t *testing.T) {
	tests := []struct {
		id                                  int
		bridge, node2, pods2, services, svc string
	}{
		{0, "198.18.0.1", "198.18.0.12", "198.19.2.0/24", "198.18.128.0/24", "198.18.128.1"},
		{3, "198.18.3.1", "198.18.3.12", "198.19.50.0/24", "198.18.131.0/24", "198.18.131.1"},
		{15, "198.18.15.1", "198.18.15.12", "198.19.242.0/24", "198.18.143.0/24", "198.18.143.1"},
	}
	for _, tt := range tests {
		a := addressing{id: tt.id}
		got := []string{a.BridgeIP().String(), a.NodeIP(2).String(), a.PodPrefix(2).String(), a.ServicePrefix().String(), a.KubernetesServiceIP().String()}
		want := []string{tt.bridge, tt.node2, tt.pods2, tt.services, tt.svc}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("network %d: got %v, want %v", tt.id, got, want)
				break
			}
		}
		if !a.NodePrefix().Contains(a.NodeIP(15)) || !a.NodePrefix().Contains(a.BridgeIP()) {
			t.Errorf("network %d: node prefix %s does not hold the bridge and node addresses", tt.id, a.NodePrefix())
		}
	}
	// Pod networks of different clusters and nodes never overlap.
	seen := map[string]string{}
	for id := 0; id < 16; id++ {
		for n := 1; n <= 15; n++ {
			p := addressing{id: id}.PodPrefix(n).String()
			if other, dup := seen[p]; dup {
				t.Fatalf("pod network %s of cluster %d node %d is also %s's", p, id, n, other)
			}
			seen[p] = "cluster " + string(rune('0'+id))
		}
	}
}
