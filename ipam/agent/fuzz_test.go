package agent_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/plexus-project/plexus/ipam/agent"
	fake "github.com/plexus-project/plexus/ipam/allocator/testing"
)

// FuzzHandle: whatever a plugin sends over the socket, the agent answers without a panic (Handle
// would turn one into an "internal error" answer: that is a finding too) and writes nothing for
// another node.
func FuzzHandle(f *testing.F) {
	for _, s := range []string{
		`{"op":"allocate","pool":{"range":{"range":"10.1.0.0/24","exclude":["10.1.0.1"]}},"owner":{"ContainerID":"c1","IfName":"net1"},"timeout":1000000000}`,
		`{"op":"allocate","pool":{"network":"n","range":{"range":"fd00::/64"},"sticky":true},"owner":{"ContainerID":"c1","IfName":"net1","PodName":"p"},"requested":"fd00::5"}`,
		`{"op":"release","network":"n","owner":{"ContainerID":"c1","IfName":"net1"},"stickyTTL":60000000000}`,
		`{"op":"find","pool":{"range":{"range":"10.1.0.0/30"}},"owner":{}}`,
		`{"op":"ping","node":"node-b"}`, `{"op":"x"}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req agent.Request
		if json.Unmarshal(b, &req) != nil {
			return
		}
		store := fake.NewStore()
		s := agent.NewServer("node-a", store, &fake.Locker{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if req.Timeout <= 0 || req.Timeout > 200*time.Millisecond {
			req.Timeout = 200 * time.Millisecond // keep an iteration short
		}
		resp := s.Handle(ctx, &req)
		if strings.Contains(resp.Error, "internal error") {
			t.Fatalf("%s: %s", b, resp.Error)
		}
		for _, blk := range store.Blocks() {
			if blk.Spec.Node != "node-a" {
				t.Fatalf("%s: wrote a block for node %q", b, blk.Spec.Node)
			}
		}
	})
}
