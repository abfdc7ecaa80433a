package ipam

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/plexus-project/plexus/ipam/allocator"
	plugintesting "github.com/plexus-project/plexus/ipam/plugin/testing"
	"github.com/plexus-project/plexus/ipam/ranges"
)

const (
	concurrentADDs = 1000
	nodeNames      = 10
	inFlight       = 50
)

// slash22 is the /22 of the concurrency tests, with exclusions to honour.
func slash22(e *env, t testing.TB, node string) []byte {
	return e.netconf(t, map[string]any{"range": "10.20.0.0/22", "exclude": []string{"10.20.0.0/28", "10.20.2.7"}, "node_name": node,
		"lock_dir": e.nodeDir(node)}, nil)
}

func slash22Range(t testing.TB) *ranges.Range {
	return ranges.MustParse(ranges.Spec{Range: "10.20.0.0/22", Exclude: []string{"10.20.0.0/28", "10.20.2.7"}})
}

// addMany runs n ADDs for containers prefix-0..n-1 spread over the node names.
func addMany(ctx context.Context, t *testing.T, e *env, prefix string, n int) []plugintesting.Outcome {
	confs := make([][]byte, nodeNames)
	for i := range confs {
		confs[i] = slash22(e, t, fmt.Sprintf("node-%d", i))
	}
	outs, wall := plugintesting.RunMany(ctx, n, inFlight, func(i int) plugintesting.Call {
		id := fmt.Sprintf("%s-%d", prefix, i)
		return call{Command: "ADD", ContainerID: id, Args: podArgs("bench", id, "uid-"+id), Conf: confs[i%nodeNames]}.cni()
	})
	t.Logf("%d ADDs (%d node names, %d in flight): wall %s, p50 %s, p99 %s", n, nodeNames, inFlight,
		wall.Round(time.Millisecond), plugintesting.Percentile(outs, 50).Round(time.Millisecond), plugintesting.Percentile(outs, 99).Round(time.Millisecond))
	return outs
}

func delMany(ctx context.Context, t *testing.T, e *env, prefix string, n int) {
	confs := make([][]byte, nodeNames)
	for i := range confs {
		confs[i] = slash22(e, t, fmt.Sprintf("node-%d", i))
	}
	outs, wall := plugintesting.RunMany(ctx, n, inFlight, func(i int) plugintesting.Call {
		// DEL runs on another node than ADD for a third of them: DEL finds borrowed or foreign blocks.
		return call{Command: "DEL", ContainerID: fmt.Sprintf("%s-%d", prefix, i), Conf: confs[(i+i%3)%nodeNames]}.cni()
	})
	for _, o := range outs {
		if o.Err != nil {
			t.Fatalf("DEL %d: %v", o.Index, o.Err)
		}
	}
	t.Logf("%d DELs: wall %s", n, wall.Round(time.Millisecond))
}

// checkDistinct fails unless every outcome succeeded with a distinct, usable address.
func checkDistinct(t *testing.T, outs []plugintesting.Outcome, r *ranges.Range) map[netip.Addr]int {
	t.Helper()
	seen := map[netip.Addr]int{}
	for _, o := range outs {
		if o.Err != nil {
			t.Fatalf("ADD %d: %v", o.Index, o.Err)
		}
		if prev, dup := seen[o.Addr]; dup {
			t.Fatalf("duplicate: %s handed to ADD %d and ADD %d", o.Addr, prev, o.Index)
		}
		if !r.Contains(o.Addr) {
			t.Fatalf("ADD %d got %s, outside the range or excluded", o.Index, o.Addr)
		}
		seen[o.Addr] = o.Index
	}
	return seen
}

func TestThousandConcurrentADDs(t *testing.T) {
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) { testThousandConcurrentADDs(t, m) })
	}
}

func testThousandConcurrentADDs(t *testing.T, m mode) {
	e := startIn(t, m)
	ctx := ctxT(t, 10*time.Minute)
	r := slash22Range(t)

	outs := addMany(ctx, t, e, "a", concurrentADDs)
	checkDistinct(t, outs, r)
	if got := len(allocations(ctx, t, e.cp.Client)); got != concurrentADDs {
		t.Fatalf("%d allocations recorded, want %d", got, concurrentADDs)
	}

	delMany(ctx, t, e, "a", concurrentADDs)
	// Through agents a DEL is journaled on the node and written within --ipam-flush-after, and
	// the addresses the nodes set aside go back once they are idle (--ipam-hold-idle).
	settle := time.Now().Add(writeBehindSettle)
	left := allocations(ctx, t, e.cp.Client)
	for len(left) != 0 && m == withAgent && time.Now().Before(settle) {
		time.Sleep(200 * time.Millisecond)
		left = allocations(ctx, t, e.cp.Client)
	}
	if len(left) != 0 {
		t.Fatalf("%d addresses still allocated after DEL of all: %v", len(left), left)
	}
	blocks, err := e.blocks(ctx)
	for err == nil && len(blocks) != 0 && m == withAgent && time.Now().Before(settle) {
		time.Sleep(200 * time.Millisecond)
		blocks, err = e.blocks(ctx)
	}
	if err != nil || len(blocks) != 0 {
		t.Fatalf("%d blocks left after DEL of all (pool not empty): %v", len(blocks), err)
	}

	// DEL that reported success has freed: 1,000 more ADDs, then fill to the last address.
	outs = addMany(ctx, t, e, "b", concurrentADDs)
	checkDistinct(t, outs, r)
	size := int(r.Size().Int64())
	fill := addMany(ctx, t, e, "fill", size-concurrentADDs)
	for _, o := range fill {
		outs = append(outs, plugintesting.Outcome{Index: concurrentADDs + o.Index, Addr: o.Addr, Err: o.Err})
	}
	seen := checkDistinct(t, outs, r)
	if len(seen) != size {
		t.Fatalf("filled %d of %d addresses: %d leaked", len(seen), size, size-len(seen))
	}
	_, err = call{Command: "ADD", ContainerID: "one-too-many", Conf: slash22(e, t, "node-0")}.run(ctx)
	if err == nil {
		t.Fatal("an ADD past the last address succeeded")
	}
	t.Logf("range filled to its last address (%d), nothing leaked; then: %v", size, err)
	p := allocator.NewPool("", r)
	if u := allocator.PoolUsage(p, blocks2(ctx, t, e)); u.Free.Sign() != 0 || u.Used.Int64() != int64(size) {
		t.Fatalf("usage %v", u)
	}
}
