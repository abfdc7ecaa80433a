package ipam

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
)

// TestWhereaboutsVectors drives the binary through the vectors Whereabouts' users rely on.
func TestWhereaboutsVectors(t *testing.T) {
	e := start(t)
	ctx := ctxT(t, 2*time.Minute)
	tests := []struct {
		name      string
		ipam      map[string]any
		want      []string
		exhausted bool
	}{
		{name: "lowest free first", ipam: map[string]any{"range": "10.1.0.0/24", "network_name": "v1"}, want: []string{"10.1.0.1", "10.1.0.2", "10.1.0.3"}},
		{name: "/29 excluding /30", ipam: map[string]any{"range": "192.168.0.0/29", "exclude": []string{"192.168.0.0/30"}}, want: []string{"192.168.0.4"}},
		{name: "ipv6 /30 excluding /32", ipam: map[string]any{"range": "2001:db8::/30", "exclude": []string{"2001:db8::/32"}}, want: []string{"2001:db9::"}},
		{
			name:      "/28 with host bits and exclusions, then exhausted",
			ipam:      map[string]any{"range": "192.168.2.225/28", "exclude": []string{"192.168.2.229/30", "192.168.2.236/32"}},
			want:      []string{"192.168.2.225", "192.168.2.226", "192.168.2.227", "192.168.2.232", "192.168.2.233", "192.168.2.234", "192.168.2.235", "192.168.2.237", "192.168.2.238"},
			exhausted: true,
		},
		{name: "/31 point to point", ipam: map[string]any{"range": "10.2.0.0/31"}, want: []string{"10.2.0.0", "10.2.0.1"}, exhausted: true},
		{name: "/127 point to point", ipam: map[string]any{"range": "fd00:127::/127"}, want: []string{"fd00:127::", "fd00:127::1"}, exhausted: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := e.netconf(t, tt.ipam, nil)
			for j, w := range tt.want {
				r, err := call{Command: "ADD", ContainerID: fmt.Sprintf("v%d-%d", i, j), Conf: conf}.run(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if got := addrOf(t, r); got.String() != w {
					t.Fatalf("ADD %d got %s, want %s", j, got, w)
				}
			}
			if tt.exhausted {
				_, err := call{Command: "ADD", ContainerID: fmt.Sprintf("v%d-x", i), Conf: conf}.run(ctx)
				if err == nil || !strings.Contains(err.Error(), "exhausted") || !strings.Contains(err.Error(), fmt.Sprintf("all %d addresses", len(tt.want))) {
					t.Fatalf("want an exhausted error naming the pool and its size, got %v", err)
				}
				t.Logf("exhausted: %v", err)
			}
		})
	}
}

func TestIdempotencyRequestedAndDel(t *testing.T) {
	e := start(t)
	ctx := ctxT(t, 2*time.Minute)
	conf := e.netconf(t, map[string]any{"range": "10.3.0.0/24", "gateway": "10.3.0.1", "exclude": []string{"10.3.0.250/31"},
		"routes": []map[string]any{{"dst": "10.30.0.0/16"}}, "dns": map[string]any{"nameservers": []string{"10.3.0.53"}}}, nil)

	first, err := call{Command: "ADD", ContainerID: "c1", Args: podArgs("ns", "p1", "u1"), Conf: conf}.run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a := addrOf(t, first); a.String() != "10.3.0.2" || first.IPs[0].Address.String() != "10.3.0.2/24" || first.IPs[0].Gateway.String() != "10.3.0.1" {
		t.Fatalf("first ADD: %+v (the gateway must never be handed out)", first.IPs[0])
	}
	if len(first.Routes) != 1 || len(first.DNS.Nameservers) != 1 {
		t.Fatalf("routes/dns not passed through: %+v", first)
	}
	again, err := call{Command: "ADD", ContainerID: "c1", Args: podArgs("ns", "p1", "u1"), Conf: conf}.run(ctx)
	if err != nil || addrOf(t, again) != addrOf(t, first) {
		t.Fatalf("repeated ADD gave %v, %v; want the same address", again, err)
	}
	if _, err := (call{Command: "CHECK", ContainerID: "c1", Conf: conf}).run(ctx); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	if _, err := (call{Command: "CHECK", ContainerID: "nobody", Conf: conf}).run(ctx); err == nil {
		t.Fatal("CHECK of an unknown container succeeded")
	}

	// Requested addresses: runtimeConfig "ips" and CNI_ARGS IP=.
	viaRuntime := e.netconf(t, map[string]any{"range": "10.3.0.0/24", "gateway": "10.3.0.1", "exclude": []string{"10.3.0.250/31"}},
		map[string]any{"runtimeConfig": map[string]any{"ips": []string{"10.3.0.100/24"}}})
	r, err := call{Command: "ADD", ContainerID: "c2", Conf: viaRuntime}.run(ctx)
	if err != nil || addrOf(t, r).String() != "10.3.0.100" {
		t.Fatalf("requested via runtimeConfig: %v, %v", r, err)
	}
	r, err = call{Command: "ADD", ContainerID: "c3", Args: "IP=10.3.0.101", Conf: conf}.run(ctx)
	if err != nil || addrOf(t, r).String() != "10.3.0.101" {
		t.Fatalf("requested via CNI_ARGS: %v, %v", r, err)
	}
	_, err = call{Command: "ADD", ContainerID: "c4", Args: "IP=10.3.0.100", Conf: conf}.run(ctx)
	if err == nil || !strings.Contains(err.Error(), "already allocated") {
		t.Fatalf("taken address: want a clear refusal, got %v", err)
	}
	t.Logf("taken: %v", err)
	for _, ip := range []string{"10.3.1.7", "10.3.0.250", "10.3.0.1"} {
		_, err = call{Command: "ADD", ContainerID: "c5", Args: "IP=" + ip, Conf: conf}.run(ctx)
		if err == nil || !strings.Contains(err.Error(), "outside") {
			t.Fatalf("requested %s: want an outside-the-range refusal, got %v", ip, err)
		}
	}

	// DEL of something unknown succeeds; DEL frees.
	if _, err := (call{Command: "DEL", ContainerID: "never-added", Conf: conf}).run(ctx); err != nil {
		t.Fatalf("DEL of an unknown container: %v", err)
	}
	for _, id := range []string{"c1", "c2", "c3", "c1"} {
		if _, err := (call{Command: "DEL", ContainerID: id, Conf: conf}).run(ctx); err != nil {
			t.Fatalf("DEL %s: %v", id, err)
		}
	}
	if left := allocations(ctx, t, e.cp.Client); len(left) != 0 {
		t.Fatalf("addresses left after DEL: %v", left)
	}
	if _, err := (call{Command: "STATUS", Conf: append([]byte(nil), conf...)}).run(ctx); err == nil {
		// STATUS needs cniVersion 1.1.0.
		t.Log("STATUS accepted a 1.0.0 config")
	}
	st := strings.Replace(string(conf), `"cniVersion":"1.0.0"`, `"cniVersion":"1.1.0"`, 1)
	if _, err := (call{Command: "STATUS", Conf: []byte(st)}).run(ctx); err != nil {
		t.Fatalf("STATUS: %v", err)
	}
}

func TestDualStackAndNetworkName(t *testing.T) {
	e := start(t)
	ctx := ctxT(t, time.Minute)
	ds := e.netconf(t, map[string]any{"ipRanges": []map[string]any{{"range": "10.4.0.0/24"}, {"range": "fd00:4::/64"}}}, nil)
	r, err := call{Command: "ADD", ContainerID: "d1", Conf: ds}.run(ctx)
	if err != nil || len(r.IPs) != 2 || r.IPs[0].Address.String() != "10.4.0.1/24" || r.IPs[1].Address.String() != "fd00:4::1/64" {
		t.Fatalf("dual stack: %+v, %v", r, err)
	}
	// Overlapping range, same network: never the same address. Another network_name: independent.
	overlap := e.netconf(t, map[string]any{"range": "10.4.0.0/28"}, nil)
	r, err = call{Command: "ADD", ContainerID: "d2", Conf: overlap}.run(ctx)
	if err != nil || addrOf(t, r).String() != "10.4.0.2" {
		t.Fatalf("overlapping range: %+v, %v", r, err)
	}
	named := e.netconf(t, map[string]any{"range": "10.4.0.0/28", "network_name": "tenant-b"}, nil)
	r, err = call{Command: "ADD", ContainerID: "d3", Conf: named}.run(ctx)
	if err != nil || addrOf(t, r).String() != "10.4.0.1" {
		t.Fatalf("network_name: %+v, %v", r, err)
	}
	if _, err := (call{Command: "DEL", ContainerID: "d1", Conf: ds}).run(ctx); err != nil {
		t.Fatal(err)
	}
	left := allocations(ctx, t, e.cp.Client)
	if _, ok := left[netip.MustParseAddr("fd00:4::1")]; ok || len(left) != 2 {
		t.Fatalf("DEL of the dual-stack container left %v", left)
	}
}

func TestAPIServerDownIsRetryable(t *testing.T) {
	e := start(t)
	conf := e.netconf(t, map[string]any{"range": "10.5.0.0/24", "timeout": "3s"}, nil)
	if err := e.cp.Env.ControlPlane.APIServer.Stop(); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	_, err := call{Command: "ADD", ContainerID: "down", Conf: conf}.run(ctxT(t, time.Minute))
	took := time.Since(begin)
	if !isCNIError(err, types.ErrTryAgainLater) {
		t.Fatalf("want CNI error 11 (try again later), got %v", err)
	}
	if took > 6*time.Second {
		t.Fatalf("ADD took %s with a 3s timeout", took)
	}
	t.Logf("API server down: error after %s: %v", took.Round(time.Millisecond), err)
}
