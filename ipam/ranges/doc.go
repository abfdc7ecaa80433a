// Package ranges is the pure address arithmetic of plexus-ipam: it turns a Whereabouts-style range
// description (a CIDR, an "A-B/len" span, range_start, range_end, exclusions given as CIDRs or bare
// addresses, a gateway) into a Range that answers, without any I/O, which addresses may be handed
// out, how many there are, and which is the lowest usable address at or after a given one.
//
// Addresses are handled as 128-bit integers (math/big), so an IPv6 /64 (or a /8) is one range like
// any other: no offset overflows and nothing is silently truncated to its first half.
//
// Usable addresses: every address of the subnet except its first (the network address) and its
// last (the IPv4 broadcast address; kept symmetrical for IPv6), except for /31 and /127
// point-to-point subnets (RFC 3021, RFC 6164) and /32 and /128 host routes, whose every address is
// usable. A range given with host bits ("192.168.2.225/28") starts at that address.
package ranges
