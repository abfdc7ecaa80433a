package agent

import (
	"time"

	"github.com/plexus-project/plexus/ipam/allocator"
	"github.com/plexus-project/plexus/ipam/ranges"
)

// SocketName is the agent's socket in the plugin's lock_dir.
const SocketName = "agent.sock"

// Operations of a Request.
const (
	OpAllocate = "allocate"
	OpRelease  = "release"
	OpFind     = "find"
	OpPing     = "ping"
)

// Request is one operation asked of the agent.
type Request struct {
	Op string `json:"op"`
	// Node is the node to allocate for; empty means the agent's own.
	Node string `json:"node,omitempty"`
	// Pool is the pool of allocate and find.
	Pool *PoolSpec `json:"pool,omitempty"`
	// Network is the network of release and ping.
	Network string          `json:"network,omitempty"`
	Owner   allocator.Owner `json:"owner"`
	// Requested is the address asked for by allocate, if any.
	Requested string `json:"requested,omitempty"`
	// StickyTTL is release's reservation time.
	StickyTTL time.Duration `json:"stickyTTL,omitempty"`
	// Timeout is how long the caller waits: the agent gives up on its behalf after it.
	Timeout time.Duration `json:"timeout"`
}

// PoolSpec is an allocator.Pool on the wire.
type PoolSpec struct {
	Network   string        `json:"network,omitempty"`
	Range     ranges.Spec   `json:"range"`
	Sticky    bool          `json:"sticky,omitempty"`
	StickyTTL time.Duration `json:"stickyTTL,omitempty"`
}

// SpecOf is the wire form of p.
func SpecOf(p allocator.Pool) *PoolSpec {
	return &PoolSpec{Network: p.Network, Range: p.Range.Spec(), Sticky: p.Sticky, StickyTTL: p.StickyTTL}
}

// Pool rebuilds the allocator.Pool.
func (s *PoolSpec) Pool() (allocator.Pool, error) {
	r, err := ranges.Parse(s.Range)
	if err != nil {
		return allocator.Pool{}, err
	}
	p := allocator.NewPool(s.Network, r)
	p.Sticky, p.StickyTTL = s.Sticky, s.StickyTTL
	return p, nil
}

// Response answers a Request.
type Response struct {
	// Addr is the address allocated or found.
	Addr  string `json:"addr,omitempty"`
	Found bool   `json:"found,omitempty"`
	// Error is the failure, as the allocator worded it.
	Error string `json:"error,omitempty"`
	// Retryable marks an API server that did not answer in time: the runtime should retry.
	Retryable bool `json:"retryable,omitempty"`
}
