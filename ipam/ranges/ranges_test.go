package ranges

import (
	"math/big"
	"net/netip"
	"strings"
	"testing"
)

// allocateAll hands out addresses lowest-free first, as the allocator does, until exhaustion.
func allocateAll(r *Range, limit int) []string {
	var out []string
	next := r.Start()
	for len(out) < limit {
		a, ok := r.NextUsable(next)
		if !ok {
			break
		}
		out = append(out, a.String())
		next = a.Next()
	}
	return out
}

func TestWhereaboutsVectors(t *testing.T) {
	tests := []struct {
		name  string
		spec  Spec
		first []string // first addresses handed out, lowest free first
		all   bool     // first is the complete list
	}{
		{name: "lowest free first", spec: Spec{Range: "192.168.1.0/24"}, first: []string{"192.168.1.1", "192.168.1.2", "192.168.1.3"}},
		{name: "exclude /30 at the start", spec: Spec{Range: "192.168.0.0/29", Exclude: []string{"192.168.0.0/30"}}, first: []string{"192.168.0.4", "192.168.0.5", "192.168.0.6"}, all: true},
		{name: "ipv6 exclude /32 in a /30", spec: Spec{Range: "2001:db8::/30", Exclude: []string{"2001:db8::/32"}}, first: []string{"2001:db9::"}},
		{
			name:  "range with host bits and two exclusions",
			spec:  Spec{Range: "192.168.2.225/28", Exclude: []string{"192.168.2.229/30", "192.168.2.236/32"}},
			first: []string{"192.168.2.225", "192.168.2.226", "192.168.2.227", "192.168.2.232", "192.168.2.233", "192.168.2.234", "192.168.2.235", "192.168.2.237", "192.168.2.238"},
			all:   true,
		},
		{name: "range_start and range_end", spec: Spec{Range: "10.0.0.0/24", RangeStart: "10.0.0.250", RangeEnd: "10.0.0.252"}, first: []string{"10.0.0.250", "10.0.0.251", "10.0.0.252"}, all: true},
		{name: "A-B/len", spec: Spec{Range: "10.0.0.10-10.0.0.12/24"}, first: []string{"10.0.0.10", "10.0.0.11", "10.0.0.12"}, all: true},
		{name: "bare excluded address and gateway", spec: Spec{Range: "10.0.0.0/29", Exclude: []string{"10.0.0.2"}, Gateway: "10.0.0.1"}, first: []string{"10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}, all: true},
		{name: "/31 point to point", spec: Spec{Range: "10.0.0.0/31"}, first: []string{"10.0.0.0", "10.0.0.1"}, all: true},
		{name: "/32 host", spec: Spec{Range: "10.0.0.7/32"}, first: []string{"10.0.0.7"}, all: true},
		{name: "/127 point to point", spec: Spec{Range: "2001:db8::/127"}, first: []string{"2001:db8::", "2001:db8::1"}, all: true},
		{name: "/30 keeps network and broadcast out", spec: Spec{Range: "10.0.0.0/30"}, first: []string{"10.0.0.1", "10.0.0.2"}, all: true},
		{name: "ipv6 /64 starts at ::1", spec: Spec{Range: "fd00:1::/64"}, first: []string{"fd00:1::1", "fd00:1::2"}},
		{name: "overlapping exclusions merge", spec: Spec{Range: "10.0.0.0/28", Exclude: []string{"10.0.0.0/29", "10.0.0.4/30", "10.0.0.8", "10.0.0.9/32"}}, first: []string{"10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.14"}, all: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			limit := len(tt.first)
			if tt.all {
				limit = len(tt.first) + 5
			}
			got := allocateAll(r, limit)
			if strings.Join(got, " ") != strings.Join(tt.first, " ") {
				t.Fatalf("handed out %v, want %v", got, tt.first)
			}
			if tt.all && r.Size().Int64() != int64(len(tt.first)) {
				t.Fatalf("Size() = %s, want %d", r.Size(), len(tt.first))
			}
		})
	}
}

func TestWhole64(t *testing.T) {
	r := MustParse(Spec{Range: "fd00:1::/64"})
	want := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 64), big.NewInt(2))
	if r.Size().Cmp(want) != 0 {
		t.Fatalf("Size() = %s, want %s", r.Size(), want)
	}
	// The upper half of the /64 is usable: no offset arithmetic truncates it.
	hi := netip.MustParseAddr("fd00:1::ffff:ffff:ffff:fffe")
	if !r.Contains(hi) {
		t.Fatalf("%s not usable in %s", hi, r)
	}
	mid := netip.MustParseAddr("fd00:1::8000:0:0:0")
	if a, ok := r.NextUsable(mid); !ok || a != mid {
		t.Fatalf("NextUsable(%s) = %s, %v", mid, a, ok)
	}
	if _, ok := r.NextUsable(netip.MustParseAddr("fd00:1::ffff:ffff:ffff:ffff")); ok {
		t.Fatal("the last address of a /64 must not be handed out")
	}
	blk := BlockOf(hi, 122)
	if got := r.UsableIn(blk); got.Int64() != 63 {
		t.Fatalf("UsableIn(%s) = %s, want 63", blk, got)
	}
}

func TestContainsAndUsableIn(t *testing.T) {
	r := MustParse(Spec{Range: "10.0.0.0/24", Exclude: []string{"10.0.0.0/28"}, Gateway: "10.0.0.254"})
	for _, tt := range []struct {
		ip   string
		want bool
	}{{"10.0.0.5", false}, {"10.0.0.16", true}, {"10.0.0.254", false}, {"10.0.0.255", false}, {"10.0.1.1", false}, {"fd00::1", false}} {
		if got := r.Contains(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
	if got := r.Size().Int64(); got != 254-16+1-1 {
		t.Errorf("Size() = %d, want %d", got, 254-16)
	}
	if got := r.UsableIn(netip.MustParsePrefix("10.0.0.0/27")).Int64(); got != 16 {
		t.Errorf("UsableIn(10.0.0.0/27) = %d, want 16", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		spec Spec
		want string
	}{
		{"empty", Spec{}, "range is empty"},
		{"garbage", Spec{Range: "10.0.0/24"}, "not a CIDR"},
		{"start outside", Spec{Range: "10.0.0.0/24", RangeStart: "10.0.1.1"}, "outside the range"},
		{"family mix exclude", Spec{Range: "10.0.0.0/24", Exclude: []string{"fd00::/64"}}, "different IP families"},
		{"family mix gateway", Spec{Range: "10.0.0.0/24", Gateway: "fd00::1"}, "different IP families"},
		{"start after end", Spec{Range: "10.0.0.0/24", RangeStart: "10.0.0.9", RangeEnd: "10.0.0.3"}, "no usable address"},
		{"reversed span", Spec{Range: "10.0.0.9-10.0.0.3/24"}, "after end"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%+v) error = %v, want it to mention %q", tt.spec, err, tt.want)
			}
		})
	}
}

func TestBlocks(t *testing.T) {
	b := BlockOf(netip.MustParseAddr("10.0.1.77"), 27)
	if b.String() != "10.0.1.64/27" {
		t.Fatalf("BlockOf = %s", b)
	}
	n, ok := NextBlock(b)
	if !ok || n.String() != "10.0.1.96/27" {
		t.Fatalf("NextBlock = %s %v", n, ok)
	}
	if _, ok := NextBlock(netip.MustParsePrefix("255.255.255.224/27")); ok {
		t.Fatal("NextBlock past the end of the IPv4 space")
	}
}
