package plugin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-project/plexus/ipam/agent"
	"github.com/plexus-project/plexus/ipam/allocator"
	fake "github.com/plexus-project/plexus/ipam/allocator/testing"
	"github.com/plexus-project/plexus/ipam/config"
)

// fakeHost is a Host over an in-memory store, with no flat file and a fixed host name.
func fakeHost(s *fake.Store) Host {
	locker := &fake.Locker{}
	return Host{
		Getenv:    func(string) string { return "" },
		Hostname:  func() (string, error) { return "host-1", nil },
		ReadFile:  func(string) ([]byte, error) { return nil, os.ErrNotExist },
		NewStore:  func(string, time.Duration) (allocator.Store, error) { return s, nil },
		NewLocker: func(string) allocator.Locker { return locker },
	}
}

func args(id, conf string) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: id, IfName: "net1", Netns: "/x", Args: "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_UID=u", StdinData: []byte(conf)}
}

// agentHost is fakeHost with a node agent (named agent-node) serving over the same store.
func agentHost(t *testing.T, s *fake.Store) Host {
	dir := t.TempDir()
	ln, err := agent.Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		agent.NewServer("agent-node", s, &fake.Locker{}).Serve(ctx, ln)
	}()
	t.Cleanup(func() { cancel(); <-done })
	h := fakeHost(s)
	h.NewStore = func(string, time.Duration) (allocator.Store, error) {
		return nil, errors.New("the plugin must not reach the API server itself when the agent answers")
	}
	h.DialAgent = func(_, node string) (Allocator, func(), error) {
		c, err := agent.Dial(context.Background(), dir, node)
		if err != nil {
			return nil, nil, err
		}
		return c, func() { c.Close() }, nil
	}
	return h
}

func TestCommands(t *testing.T) {
	for _, tc := range []struct {
		mode string
		host func(*testing.T, *fake.Store) Host
		node string
	}{
		{"direct", func(_ *testing.T, s *fake.Store) Host { return fakeHost(s) }, "host-1"},
		{"agent", agentHost, "agent-node"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			s := fake.NewStore()
			testCommands(t, s, New(tc.host(t, s)), tc.node)
		})
	}
}

func testCommands(t *testing.T, s *fake.Store, p *Plugin, node string) {
	const conf = `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"plexus-ipam","ipRanges":[{"range":"10.0.0.0/24"},{"range":"fd00::/127"}],"timeout":"1s"}}`
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	stdout := os.Stdout
	os.Stdout = devnull // Add prints its result
	defer func() { os.Stdout = stdout }()

	if err := p.Add(args("c1", conf)); err != nil {
		t.Fatal(err)
	}
	if err := p.Check(args("c1", conf)); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	blocks := s.Blocks()
	if len(blocks) != 2 || blocks[0].Spec.Node != node {
		t.Fatalf("want one block per family on node %s, got %+v", node, blocks)
	}
	if err := p.Add(args("c2", conf)); err != nil {
		t.Fatal(err)
	}
	// Both IPv6 addresses are taken: the third ADD gets an IPv4 address, fails on IPv6 and gives
	// the IPv4 address back (nothing half-allocated).
	err := p.Add(args("c3", conf))
	if err == nil {
		t.Fatal("ADD into a full /127 succeeded")
	}
	for _, b := range s.Blocks() {
		for _, al := range b.Spec.Allocations {
			if al.ContainerID == "c3" {
				t.Fatalf("a failed ADD left %+v behind", al)
			}
		}
	}
	for _, id := range []string{"c1", "c2", "never"} {
		if err := p.Del(args(id, conf)); err != nil {
			t.Fatalf("DEL %s: %v", id, err)
		}
	}
	if n := len(s.Blocks()); n != 0 {
		t.Fatalf("%d blocks left after DEL", n)
	}

	var cniErr *types.Error
	if err := p.Add(args("c4", `{"cniVersion":"1.0.0","name":"n","ipam":{"range":"nonsense"}}`)); !errors.As(err, &cniErr) || cniErr.Code != types.ErrDecodingFailure {
		t.Fatalf("bad config: want a decoding error, got %v", err)
	}
	s.Unavailable = true
	if err := p.Add(args("c5", conf)); !errors.As(err, &cniErr) || cniErr.Code != types.ErrTryAgainLater {
		t.Fatalf("API down: want error 11, got %v", err)
	}
	if err := p.Del(args("c5", conf)); !errors.As(err, &cniErr) || cniErr.Code != types.ErrTryAgainLater {
		t.Fatalf("API down: DEL must not report success, got %v", err)
	}
}

// TestNetworkConfigCannotChooseHostPaths: a network configuration (a NAD's text) naming a host
// path outside the node's Plexus directories is refused with code 7 naming the field, and
// nothing is created there; a node name that is not one is refused too.
func TestNetworkConfigCannotChooseHostPaths(t *testing.T) {
	dir := t.TempDir()
	evil := filepath.Join(dir, "evil")
	for _, tc := range []struct{ field, ipam string }{
		{"log_file", `"log_file":"` + evil + `"`},
		{"lock_dir", `"lock_dir":"` + evil + `"`},
		{"configuration_path", `"configuration_path":"/etc/shadow"`},
		{"node_name", `"node_name":"../../etc"`},
	} {
		t.Run(tc.field, func(t *testing.T) {
			s := fake.NewStore()
			host := fakeHost(s)
			read := false
			host.ReadFile = func(path string) ([]byte, error) {
				if path == "/etc/shadow" {
					read = true
				}
				return nil, os.ErrNotExist
			}
			conf := `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"plexus-ipam","range":"10.0.0.0/24",` + tc.ipam + `}}`
			err := New(host).Add(args("c1", conf))
			var cniErr *types.Error
			if !errors.As(err, &cniErr) || cniErr.Code != types.ErrInvalidNetworkConfig || !strings.Contains(cniErr.Msg, "ipam."+tc.field) {
				t.Fatalf("want code 7 naming ipam.%s, got %v", tc.field, err)
			}
			if _, err := os.Stat(evil); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s was created: %v", evil, err)
			}
			if read || len(s.Blocks()) != 0 {
				t.Fatalf("the refused call read the file or allocated (%d blocks)", len(s.Blocks()))
			}
		})
	}
}

// TestNodeConfigWins: the node configuration file (its path in PLEXUS_IPAM_NODE_CONFIG) names
// the node and the kubeconfig, whatever the network configuration says; a kubeconfig of the
// network configuration outside the Plexus directories is ignored, not an error.
func TestNodeConfigWins(t *testing.T) {
	s := fake.NewStore()
	host := fakeHost(s)
	host.Getenv = func(k string) string {
		return map[string]string{config.NodeConfigEnv: "/node.json", "NODE_NAME": "from-env"}[k]
	}
	host.ReadFile = func(path string) ([]byte, error) {
		if path == "/node.json" {
			return []byte(`{"node_name":"worker-7","kubeconfig":"/var/lib/plexus/kubeconfig"}`), nil
		}
		return nil, os.ErrNotExist
	}
	var kubeconfig string
	host.NewStore = func(kc string, _ time.Duration) (allocator.Store, error) { kubeconfig = kc; return s, nil }
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	stdout := os.Stdout
	os.Stdout = devnull
	defer func() { os.Stdout = stdout }()
	conf := `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"plexus-ipam","range":"10.0.0.0/24","node_name":"victim",
		"kubernetes":{"kubeconfig":"/root/.kube/config"}}}`
	if err := New(host).Add(args("c1", conf)); err != nil {
		t.Fatal(err)
	}
	if b := s.Blocks(); len(b) != 1 || b[0].Spec.Node != "worker-7" || kubeconfig != "/var/lib/plexus/kubeconfig" {
		t.Fatalf("blocks %+v, kubeconfig %q", b, kubeconfig)
	}
	// A node configuration that does not parse is the node's error, reported as such.
	host.ReadFile = func(string) ([]byte, error) { return []byte(`{"node_name":"bad/name"}`), nil }
	if err := New(host).Add(args("c2", conf)); err == nil || !strings.Contains(err.Error(), "/node.json") {
		t.Fatalf("bad node configuration: %v", err)
	}
}
