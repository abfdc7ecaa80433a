package ranges

import "net/netip"

// BlockOf is the aligned block of 2^(BitLen-bits) addresses that holds a. Blocks are aligned in
// the absolute address space, not relative to a range, so two overlapping ranges share the block
// (and therefore the record) of every address they have in common.
func BlockOf(a netip.Addr, bits int) netip.Prefix {
	a = a.Unmap()
	if bits > a.BitLen() {
		bits = a.BitLen()
	}
	return netip.PrefixFrom(a, bits).Masked()
}

// LastOf is the last address of p.
func LastOf(p netip.Prefix) netip.Addr { return lastAddr(p) }

// NextBlock is the block right after p, and false past the end of the address space.
func NextBlock(p netip.Prefix) (netip.Prefix, bool) {
	next := lastAddr(p).Next()
	if !next.IsValid() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(next, p.Bits()), true
}
