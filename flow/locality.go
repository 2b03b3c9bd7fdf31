package flow

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"unicode"
)

// Networks is an immutable set of IP prefixes answering "is this address
// inside?" fast. It is safe for concurrent use. A nil *Networks is the empty
// set.
//
// The prefixes are kept as sorted, disjoint address intervals, one list per
// family, so Contains is a binary search that does not allocate.
type Networks struct {
	v4 []span4
	v6 []span6
	// prefixes is the canonical form of the set, for Prefixes and String.
	prefixes []netip.Prefix
}

// span4 and span6 are inclusive address intervals.
type span4 struct{ lo, hi uint32 }
type span6 struct{ lo, hi u128 }

// u128 is an IPv6 address as a big-endian pair of words.
type u128 struct{ hi, lo uint64 }

func u128From(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (x u128) addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], x.hi)
	binary.BigEndian.PutUint64(b[8:], x.lo)
	return netip.AddrFrom16(b)
}

func (x u128) cmp(y u128) int {
	if c := cmp.Compare(x.hi, y.hi); c != 0 {
		return c
	}
	return cmp.Compare(x.lo, y.lo)
}

func (x u128) isMax() bool { return x.hi == math.MaxUint64 && x.lo == math.MaxUint64 }

func (x u128) or(y u128) u128 { return u128{x.hi | y.hi, x.lo | y.lo} }

func (x u128) next() u128 {
	lo, carry := bits.Add64(x.lo, 1, 0)
	return u128{x.hi + carry, lo}
}

func (x u128) trailingZeros() int {
	if x.lo != 0 {
		return bits.TrailingZeros64(x.lo)
	}
	return 64 + bits.TrailingZeros64(x.hi) // 128 for zero
}

// ones128 returns the value with the low n bits set.
func ones128(n int) u128 {
	switch {
	case n <= 0:
		return u128{}
	case n < 64:
		return u128{0, 1<<n - 1}
	case n < 128:
		return u128{1<<(n-64) - 1, math.MaxUint64}
	}
	return u128{math.MaxUint64, math.MaxUint64}
}

// DefaultHomeNets returns the address space that is local by definition:
// RFC 1918 private networks, shared address space for carrier-grade NAT
// (100.64.0.0/10), IPv6 unique local addresses (fc00::/7) and IPv4 and IPv6
// link-local addresses.
func DefaultHomeNets() *Networks {
	return NewNetworks([]netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("fc00::/7"),
		netip.MustParsePrefix("fe80::/10"),
	})
}

// ParseNetworks parses a list of prefixes separated by commas and/or white
// space, such as "10.0.0.0/8, 147.32.0.0/16, 2001:db8::/32". A bare address
// stands for a /32 or /128; host bits after the prefix length are ignored,
// so 10.1.2.3/8 means 10.0.0.0/8. An empty list gives the empty set. Errors
// quote the offending item and give its 1-based position in the list.
func ParseNetworks(s string) (*Networks, error) {
	items := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	prefixes := make([]netip.Prefix, 0, len(items))
	for i, item := range items {
		p, err := parseNetwork(item)
		if err != nil {
			return nil, fmt.Errorf("flow: networks: item %d %q: %w", i+1, item, err)
		}
		prefixes = append(prefixes, p)
	}
	return NewNetworks(prefixes), nil
}

func parseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		// A zone names an interface, not a network; refuse rather than
		// silently match the address on every link.
		return netip.Prefix{}, errors.New("IPv6 zone not allowed")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// NewNetworks returns the set of addresses covered by prefixes. Invalid
// (zero) prefixes are skipped, overlapping and adjacent ones merged, and
// IPv4-mapped IPv6 prefixes of length 96 or more (::ffff:10.0.0.0/104) taken
// as the IPv4 prefixes they denote, because Contains unmaps addresses.
// The caller's slice is neither kept nor modified.
func NewNetworks(prefixes []netip.Prefix) *Networks {
	n := new(Networks)
	for _, p := range prefixes {
		if !p.IsValid() {
			continue
		}
		p = p.Masked()
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		if p.Addr().Is4() {
			b := p.Addr().As4()
			lo := binary.BigEndian.Uint32(b[:])
			hi := lo | uint32(uint64(1)<<(32-p.Bits())-1)
			n.v4 = append(n.v4, span4{lo, hi})
		} else {
			lo := u128From(p.Addr())
			n.v6 = append(n.v6, span6{lo, lo.or(ones128(128 - p.Bits()))})
		}
	}
	n.v4 = mergeSpans4(n.v4)
	n.v6 = mergeSpans6(n.v6)
	n.prefixes = n.canonicalPrefixes()
	return n
}

func mergeSpans4(s []span4) []span4 {
	slices.SortFunc(s, func(a, b span4) int { return cmp.Compare(a.lo, b.lo) })
	out := s[:0]
	for _, sp := range s {
		if k := len(out) - 1; k >= 0 && (out[k].hi == math.MaxUint32 || sp.lo <= out[k].hi+1) {
			out[k].hi = max(out[k].hi, sp.hi)
			continue
		}
		out = append(out, sp)
	}
	return slices.Clip(out)
}

func mergeSpans6(s []span6) []span6 {
	slices.SortFunc(s, func(a, b span6) int { return a.lo.cmp(b.lo) })
	out := s[:0]
	for _, sp := range s {
		if k := len(out) - 1; k >= 0 && (out[k].hi.isMax() || sp.lo.cmp(out[k].hi.next()) <= 0) {
			if sp.hi.cmp(out[k].hi) > 0 {
				out[k].hi = sp.hi
			}
			continue
		}
		out = append(out, sp)
	}
	return slices.Clip(out)
}

// canonicalPrefixes covers the merged intervals with the fewest prefixes,
// IPv4 first, each family in address order.
func (n *Networks) canonicalPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, sp := range n.v4 {
		for lo := sp.lo; ; {
			// The largest block that starts at lo and stays inside.
			k := bits.TrailingZeros32(lo) // 32 for 0.0.0.0
			for uint64(lo)+(uint64(1)<<k)-1 > uint64(sp.hi) {
				k--
			}
			var a [4]byte
			binary.BigEndian.PutUint32(a[:], lo)
			out = append(out, netip.PrefixFrom(netip.AddrFrom4(a), 32-k))
			end := lo | uint32(uint64(1)<<k-1)
			if end == sp.hi {
				break
			}
			lo = end + 1
		}
	}
	for _, sp := range n.v6 {
		for lo := sp.lo; ; {
			k := lo.trailingZeros()
			for lo.or(ones128(k)).cmp(sp.hi) > 0 {
				k--
			}
			out = append(out, netip.PrefixFrom(lo.addr(), 128-k))
			end := lo.or(ones128(k))
			if end == sp.hi {
				break
			}
			lo = end.next()
		}
	}
	return out
}

// Contains reports whether a lies inside the set. IPv4-mapped IPv6 addresses
// are unmapped first and an IPv6 zone is ignored; the zero Addr is never
// inside. Contains does not allocate.
func (n *Networks) Contains(a netip.Addr) bool {
	if n == nil {
		return false
	}
	a = a.Unmap()
	switch {
	case a.Is4():
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		s := n.v4
		// Find the first interval that ends at or after x.
		i, j := 0, len(s)
		for i < j {
			m := int(uint(i+j) >> 1)
			if s[m].hi < x {
				i = m + 1
			} else {
				j = m
			}
		}
		return i < len(s) && s[i].lo <= x
	case a.Is6():
		x := u128From(a)
		s := n.v6
		i, j := 0, len(s)
		for i < j {
			m := int(uint(i+j) >> 1)
			if s[m].hi.cmp(x) < 0 {
				i = m + 1
			} else {
				j = m
			}
		}
		return i < len(s) && s[i].lo.cmp(x) <= 0
	}
	return false
}

// Prefixes returns the set in canonical form: the fewest prefixes covering
// exactly its addresses, IPv4 before IPv6, each family in address order.
// Overlapping and adjacent input prefixes are therefore merged
// (10.0.0.0/9 and 10.128.0.0/9 come back as 10.0.0.0/8). The slice is the
// caller's to modify.
func (n *Networks) Prefixes() []netip.Prefix {
	if n == nil {
		return nil
	}
	return slices.Clone(n.prefixes)
}

// String returns the canonical prefixes separated by ", ", a form that
// ParseNetworks accepts.
func (n *Networks) String() string {
	if n == nil {
		return ""
	}
	var sb strings.Builder
	for i, p := range n.prefixes {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(p.String())
	}
	return sb.String()
}
