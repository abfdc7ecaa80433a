package ranges

import (
	"fmt"
	"math/big"
	"net/netip"
	"sort"
	"strings"
)

// Spec is a range as written in a Whereabouts-compatible IPAM configuration.
type Spec struct {
	// Range is "10.0.0.0/24", "10.0.0.5/24" (starts at .5) or "10.0.0.10-10.0.0.20/24".
	Range string
	// RangeStart, when set, is the first address handed out (inclusive).
	RangeStart string
	// RangeEnd, when set, is the last address handed out (inclusive).
	RangeEnd string
	// Exclude lists CIDRs ("10.0.0.0/28") and bare addresses ("10.0.0.7") never handed out.
	Exclude []string
	// Gateway, when set and inside the range, is never handed out.
	Gateway string
}

// Range is a parsed, validated range: the subnet it lives in, its inclusive bounds and its
// exclusions, merged and clipped to the bounds. A Range is immutable and safe for concurrent use.
type Range struct {
	spec       Spec
	subnet     netip.Prefix
	start, end *big.Int
	excl       []interval
	gateway    netip.Addr
}

type interval struct{ lo, hi *big.Int }

// Parse validates s and returns its Range. Errors name the offending field and value.
func Parse(s Spec) (*Range, error) {
	subnet, start, end, err := parseRange(s.Range)
	if err != nil {
		return nil, err
	}
	r := &Range{spec: s, subnet: subnet}
	// range_start and range_end, when set, replace the bounds of the A-B form.
	lo, hi := usableBounds(subnet)
	first, last := lo, hi
	if start.IsValid() {
		first = maxAddr(lo, start)
	}
	if end.IsValid() {
		last = minAddr(hi, end)
	}
	if s.RangeStart != "" {
		a, err := parseAddrIn("range_start", s.RangeStart, subnet)
		if err != nil {
			return nil, err
		}
		first = maxAddr(a, lo)
	}
	if s.RangeEnd != "" {
		a, err := parseAddrIn("range_end", s.RangeEnd, subnet)
		if err != nil {
			return nil, err
		}
		last = minAddr(a, hi)
	}
	r.start, r.end = toInt(first), toInt(last)
	if r.start.Cmp(r.end) > 0 {
		return nil, fmt.Errorf("range %q (range_start %q, range_end %q) has no usable address: widen the range or move its bounds", s.Range, s.RangeStart, s.RangeEnd)
	}
	var excl []interval
	for _, e := range s.Exclude {
		iv, err := parseExclude(e, subnet)
		if err != nil {
			return nil, err
		}
		excl = append(excl, iv)
	}
	if s.Gateway != "" {
		gw, err := netip.ParseAddr(strings.TrimSpace(s.Gateway))
		if err != nil {
			return nil, fmt.Errorf("gateway %q is not an IP address: %w", s.Gateway, err)
		}
		gw = gw.Unmap()
		if gw.Is4() != subnet.Addr().Is4() {
			return nil, fmt.Errorf("gateway %s and range %s are of different IP families: give each range a gateway of its own family", gw, subnet)
		}
		r.gateway = gw
		g := toInt(gw)
		excl = append(excl, interval{g, g})
	}
	r.excl = mergeClip(excl, r.start, r.end)
	return r, nil
}

// MustParse is Parse for tests and constants; it panics on error.
func MustParse(s Spec) *Range {
	r, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return r
}

// Spec is the description the range was parsed from.
func (r *Range) Spec() Spec { return r.spec }

// Subnet is the network the range lives in; addresses are handed out with its prefix length.
func (r *Range) Subnet() netip.Prefix { return r.subnet }

// Is4 reports whether the range is IPv4.
func (r *Range) Is4() bool { return r.subnet.Addr().Is4() }

// Gateway is the configured gateway, or the zero Addr.
func (r *Range) Gateway() netip.Addr { return r.gateway }

// Start is the first address of the range's bounds (it may itself be excluded).
func (r *Range) Start() netip.Addr { return fromInt(r.start, r.Is4()) }

// End is the last address of the range's bounds (it may itself be excluded).
func (r *Range) End() netip.Addr { return fromInt(r.end, r.Is4()) }

// Size is the number of addresses the range can hand out.
func (r *Range) Size() *big.Int { return r.usableBetween(r.start, r.end) }

// Contains reports whether a may be handed out from this range.
func (r *Range) Contains(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.Is4() != r.Is4() {
		return false
	}
	x := toInt(a)
	if x.Cmp(r.start) < 0 || x.Cmp(r.end) > 0 {
		return false
	}
	for _, iv := range r.excl {
		if x.Cmp(iv.lo) >= 0 && x.Cmp(iv.hi) <= 0 {
			return false
		}
	}
	return true
}

// NextUsable returns the lowest address at or after from that may be handed out, and false when
// there is none.
func (r *Range) NextUsable(from netip.Addr) (netip.Addr, bool) {
	from = from.Unmap()
	if !from.IsValid() || from.Is4() != r.Is4() {
		return netip.Addr{}, false
	}
	x := toInt(from)
	if x.Cmp(r.start) < 0 {
		x = new(big.Int).Set(r.start)
	}
	for _, iv := range r.excl {
		if iv.hi.Cmp(x) < 0 {
			continue
		}
		if iv.lo.Cmp(x) > 0 {
			break
		}
		x = new(big.Int).Add(iv.hi, one)
	}
	if x.Cmp(r.end) > 0 {
		return netip.Addr{}, false
	}
	return fromInt(x, r.Is4()), true
}

// UsableIn is the number of addresses of p that the range may hand out.
func (r *Range) UsableIn(p netip.Prefix) *big.Int {
	p = p.Masked()
	if p.Addr().Is4() != r.Is4() {
		return new(big.Int)
	}
	lo, hi := toInt(p.Addr()), toInt(lastAddr(p))
	if lo.Cmp(r.start) < 0 {
		lo = r.start
	}
	if hi.Cmp(r.end) > 0 {
		hi = r.end
	}
	return r.usableBetween(lo, hi)
}

// Overlaps reports whether the bounds of r and o share an address.
func (r *Range) Overlaps(o *Range) bool {
	return r.Is4() == o.Is4() && r.start.Cmp(o.end) <= 0 && o.start.Cmp(r.end) <= 0
}

// String is a canonical description: equal ranges give equal strings.
func (r *Range) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s[%s-%s]", r.subnet, r.Start(), r.End())
	for _, iv := range r.excl {
		fmt.Fprintf(&b, "!%s-%s", fromInt(iv.lo, r.Is4()), fromInt(iv.hi, r.Is4()))
	}
	return b.String()
}

func (r *Range) usableBetween(lo, hi *big.Int) *big.Int {
	if lo.Cmp(hi) > 0 {
		return new(big.Int)
	}
	n := new(big.Int).Sub(hi, lo)
	n.Add(n, one)
	for _, iv := range r.excl {
		a, b := iv.lo, iv.hi
		if a.Cmp(lo) < 0 {
			a = lo
		}
		if b.Cmp(hi) > 0 {
			b = hi
		}
		if a.Cmp(b) <= 0 {
			n.Sub(n, new(big.Int).Add(new(big.Int).Sub(b, a), one))
		}
	}
	return n
}

// parseRange reads "cidr" or "A-B/len" and returns the masked subnet and the explicit bounds, if
// any (zero Addrs otherwise).
func parseRange(s string) (subnet netip.Prefix, start, end netip.Addr, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return subnet, start, end, fmt.Errorf("range is empty: set \"range\" (e.g. \"10.0.0.0/24\" or \"10.0.0.10-10.0.0.20/24\") or \"ipRanges\"")
	}
	if a, rest, ok := strings.Cut(s, "-"); ok {
		p, err := netip.ParsePrefix(strings.TrimSpace(rest))
		if err != nil {
			return subnet, start, end, fmt.Errorf("range %q: the part after '-' must be an address with a prefix length (\"A-B/len\"): %w", s, err)
		}
		first, err := netip.ParseAddr(strings.TrimSpace(a))
		if err != nil {
			return subnet, start, end, fmt.Errorf("range %q: the part before '-' must be an address: %w", s, err)
		}
		subnet = unmapPrefix(p).Masked()
		first = first.Unmap()
		if !subnet.Contains(first) {
			return subnet, start, end, fmt.Errorf("range %q: %s is outside %s", s, first, subnet)
		}
		if first.Compare(p.Addr().Unmap()) > 0 {
			return subnet, start, end, fmt.Errorf("range %q: start %s is after end %s", s, first, p.Addr())
		}
		return subnet, first, p.Addr().Unmap(), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return subnet, start, end, fmt.Errorf("range %q is not a CIDR (\"10.0.0.0/24\") nor \"A-B/len\": %w", s, err)
	}
	p = unmapPrefix(p)
	subnet = p.Masked()
	if p.Addr() != subnet.Addr() {
		start = p.Addr()
	}
	return subnet, start, end, nil
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

func parseAddrIn(field, s string, subnet netip.Prefix) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		// Whereabouts accepts range_start/range_end with a prefix length too.
		p, perr := netip.ParsePrefix(strings.TrimSpace(s))
		if perr != nil {
			return a, fmt.Errorf("%s %q is not an IP address: %w", field, s, err)
		}
		a = p.Addr()
	}
	a = a.Unmap()
	if !subnet.Contains(a) {
		return a, fmt.Errorf("%s %s is outside the range %s: pick an address inside it", field, a, subnet)
	}
	return a, nil
}

func parseExclude(s string, subnet netip.Prefix) (interval, error) {
	s = strings.TrimSpace(s)
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return interval{}, fmt.Errorf("exclude %q is neither a CIDR nor an address: %w", s, err)
		}
		p = unmapPrefix(p).Masked()
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return interval{}, fmt.Errorf("exclude %q is neither a CIDR nor an address: %w", s, err)
		}
		a = a.Unmap()
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4() != subnet.Addr().Is4() {
		return interval{}, fmt.Errorf("exclude %s and range %s are of different IP families: move it to the ipRanges entry of its family", p, subnet)
	}
	return interval{toInt(p.Addr()), toInt(lastAddr(p))}, nil
}

// usableBounds are the first and last addresses of subnet that may be handed out.
func usableBounds(p netip.Prefix) (netip.Addr, netip.Addr) {
	first, last := p.Addr(), lastAddr(p)
	if p.Addr().BitLen()-p.Bits() >= 2 {
		first, last = first.Next(), last.Prev()
	}
	return first, last
}

func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	x := toInt(p.Addr())
	host := uint(p.Addr().BitLen() - p.Bits())
	x.Add(x, new(big.Int).Sub(new(big.Int).Lsh(one, host), one))
	return fromInt(x, p.Addr().Is4())
}

func mergeClip(in []interval, lo, hi *big.Int) []interval {
	var out []interval
	for _, iv := range in {
		a, b := iv.lo, iv.hi
		if a.Cmp(lo) < 0 {
			a = lo
		}
		if b.Cmp(hi) > 0 {
			b = hi
		}
		if a.Cmp(b) <= 0 {
			out = append(out, interval{a, b})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].lo.Cmp(out[j].lo) < 0 })
	merged := out[:0]
	for _, iv := range out {
		if n := len(merged); n > 0 && iv.lo.Cmp(new(big.Int).Add(merged[n-1].hi, one)) <= 0 {
			if iv.hi.Cmp(merged[n-1].hi) > 0 {
				merged[n-1].hi = iv.hi
			}
			continue
		}
		merged = append(merged, iv)
	}
	return merged
}

var one = big.NewInt(1)

func toInt(a netip.Addr) *big.Int {
	if a.Is4() {
		b := a.As4()
		return new(big.Int).SetBytes(b[:])
	}
	b := a.As16()
	return new(big.Int).SetBytes(b[:])
}

func fromInt(x *big.Int, is4 bool) netip.Addr {
	if is4 {
		var b [4]byte
		x.FillBytes(b[:])
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	x.FillBytes(b[:])
	return netip.AddrFrom16(b)
}

func maxAddr(a, b netip.Addr) netip.Addr {
	if a.Compare(b) >= 0 {
		return a
	}
	return b
}

func minAddr(a, b netip.Addr) netip.Addr {
	if a.Compare(b) <= 0 {
		return a
	}
	return b
}
