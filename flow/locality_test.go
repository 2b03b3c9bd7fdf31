package flow

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestNetworksContains(t *testing.T) {
	tests := []struct {
		name string
		nets string
		in   []string
		out  []string
	}{
		{
			name: "defaults",
			nets: "10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 100.64.0.0/10 169.254.0.0/16 fc00::/7 fe80::/10",
			in: []string{
				"10.0.0.0", "10.255.255.255", "172.16.0.1", "172.31.255.255", "192.168.1.1",
				"100.64.0.1", "100.127.255.255", "169.254.1.1", "fd00::1", "fc00::",
				"fe80::1", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
				"::ffff:10.1.2.3", "::ffff:192.168.0.1", "fe80::1%eth0",
			},
			out: []string{
				"9.255.255.255", "11.0.0.0", "172.15.255.255", "172.32.0.0", "192.167.255.255",
				"100.63.255.255", "100.128.0.0", "8.8.8.8", "fbff::1", "fe00::", "fec0::",
				"2001:db8::1", "::", "::1", "127.0.0.1", "::ffff:8.8.8.8",
				// 10.0.0.1 embedded in IPv6 other than v4-mapped is IPv6.
				"::10.0.0.1", "64:ff9b::10.0.0.1",
			},
		},
		{
			name: "overlapping and nested",
			nets: "10.0.0.0/8, 10.1.0.0/16, 10.1.2.0/24, 10.200.0.0/13, 192.168.1.0/24, 192.168.0.0/16",
			in:   []string{"10.0.0.0", "10.1.2.3", "10.255.255.255", "192.168.200.1"},
			out:  []string{"9.255.255.255", "11.0.0.0", "192.169.0.0"},
		},
		{
			name: "adjacent",
			nets: "10.0.0.0/9 10.128.0.0/9 11.0.0.0/8 2001:db8::/33 2001:db8:8000::/33",
			in:   []string{"10.127.255.255", "10.128.0.0", "11.255.255.255", "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"},
			out:  []string{"12.0.0.0", "9.255.255.255", "2001:db9::", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"},
		},
		{
			name: "hosts and gaps",
			nets: "147.32.80.1 147.32.80.3,147.32.80.5/32 2001:db8::1",
			in:   []string{"147.32.80.1", "147.32.80.3", "147.32.80.5", "::ffff:147.32.80.3", "2001:db8::1"},
			out:  []string{"147.32.80.0", "147.32.80.2", "147.32.80.4", "147.32.80.6", "2001:db8::", "2001:db8::2"},
		},
		{
			name: "everything",
			nets: "0.0.0.0/0 ::/0",
			in:   []string{"0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::ffff:1.2.3.4"},
		},
		{
			name: "top of the address space",
			nets: "255.255.255.255/32 255.255.255.0/25 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
			in:   []string{"255.255.255.255", "255.255.255.0", "255.255.255.127", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
			out:  []string{"255.255.255.128", "255.255.255.254", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"},
		},
		{
			name: "v4-mapped prefix is IPv4",
			nets: "::ffff:10.0.0.0/104",
			in:   []string{"10.1.2.3", "::ffff:10.1.2.3"},
			out:  []string{"11.0.0.0"},
		},
		{
			name: "IPv4 only",
			nets: "0.0.0.0/0",
			out:  []string{"::", "2001:db8::1", "::1"},
		},
		{
			name: "empty",
			nets: "",
			out:  []string{"10.0.0.1", "::1"},
		},
	}
	for _, tt := range tests {
		n, err := ParseNetworks(tt.nets)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		for _, s := range tt.in {
			if !n.Contains(netip.MustParseAddr(s)) {
				t.Errorf("%s: %s not contained in %s", tt.name, s, n)
			}
		}
		for _, s := range tt.out {
			if n.Contains(netip.MustParseAddr(s)) {
				t.Errorf("%s: %s contained in %s", tt.name, s, n)
			}
		}
		if n.Contains(netip.Addr{}) {
			t.Errorf("%s: zero Addr contained", tt.name)
		}
	}
}

func TestDefaultHomeNets(t *testing.T) {
	want := "10.0.0.0/8, 100.64.0.0/10, 169.254.0.0/16, 172.16.0.0/12, 192.168.0.0/16, fc00::/7, fe80::/10"
	if got := DefaultHomeNets().String(); got != want {
		t.Errorf("DefaultHomeNets() = %s, want %s", got, want)
	}
}

func TestNetworksPrefixes(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"10.1.0.0/16 10.0.0.0/8", "10.0.0.0/8"},
		{"10.0.0.0/9, 10.128.0.0/9", "10.0.0.0/8"},
		{"10.0.0.0/8 11.0.0.0/8", "10.0.0.0/7"},
		{"11.0.0.0/8 12.0.0.0/8", "11.0.0.0/8, 12.0.0.0/8"},
		{"10.0.0.1 10.0.0.2 10.0.0.3", "10.0.0.1/32, 10.0.0.2/31"},
		{"0.0.0.0/1 128.0.0.0/1", "0.0.0.0/0"},
		{"255.255.255.255 255.255.255.254", "255.255.255.254/31"},
		{"::ffff:192.168.0.0/120 192.168.1.0/24", "192.168.0.0/23"},
		{"2001:db8::/33 2001:db8:8000::/33 10.0.0.0/8", "10.0.0.0/8, 2001:db8::/32"},
		{"::/1 8000::/1", "::/0"},
		{"fe80::1 fe80::1/128", "fe80::1/128"},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"},
	}
	for _, tt := range tests {
		n, err := ParseNetworks(tt.in)
		if err != nil {
			t.Fatalf("ParseNetworks(%q): %v", tt.in, err)
		}
		if got := n.String(); got != tt.want {
			t.Errorf("ParseNetworks(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}

	// Prefixes hands out a copy.
	n := DefaultHomeNets()
	p := n.Prefixes()
	p[0] = netip.MustParsePrefix("8.8.8.0/24")
	if n.Contains(netip.MustParseAddr("8.8.8.8")) || n.Prefixes()[0] == p[0] {
		t.Error("modifying the result of Prefixes changed the set")
	}
}

func TestNewNetworksSkipsInvalid(t *testing.T) {
	n := NewNetworks([]netip.Prefix{{}, netip.MustParsePrefix("10.0.0.0/8")})
	if got := n.String(); got != "10.0.0.0/8" {
		t.Errorf("got %q", got)
	}
}

func TestNilNetworks(t *testing.T) {
	var n *Networks
	if n.Contains(netip.MustParseAddr("10.0.0.1")) || n.Prefixes() != nil || n.String() != "" {
		t.Error("nil Networks is not the empty set")
	}
}

func TestParseNetworksErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string // substring of the error
	}{
		{"10.0.0.0/8, 10.0.0.300/8", `item 2 "10.0.0.300/8"`},
		{"10.0.0.0/33", `item 1 "10.0.0.0/33"`},
		{"10.0.0.0/8 147.32.0.0/16,, example.com", `item 3 "example.com"`},
		{"2001:db8::/129", `item 1 "2001:db8::/129"`},
		{"fe80::1%eth0", `item 1 "fe80::1%eth0": IPv6 zone not allowed`},
		{"10.0.0.0/8;192.168.0.0/16", `item 1 "10.0.0.0/8;192.168.0.0/16"`},
		{"10.0.0.0/", `item 1 "10.0.0.0/"`},
	}
	for _, tt := range tests {
		n, err := ParseNetworks(tt.in)
		if err == nil {
			t.Errorf("ParseNetworks(%q) = %s, want error", tt.in, n)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseNetworks(%q) error %q, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

// randPrefix returns a random prefix, biased towards a few address regions
// so that prefixes overlap, nest and abut.
func randPrefix(r *rand.Rand) netip.Prefix {
	switch r.IntN(3) {
	case 0:
		a := netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.Uint32()), byte(r.Uint32())})
		return netip.PrefixFrom(a, 8+r.IntN(25))
	case 1:
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(r.IntN(4)), byte(r.Uint32()), 15: byte(r.Uint32())})
		return netip.PrefixFrom(a, 16+r.IntN(113))
	}
	a := netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: 10, 13: byte(r.IntN(4)), 14: byte(r.Uint32())})
	return netip.PrefixFrom(a, 96+8+r.IntN(25))
}

// randNear returns an address near a's region, often just past a prefix edge.
func randNear(r *rand.Rand, p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	switch r.IntN(4) {
	case 0:
		return a.Prev()
	case 1:
		// One past the last address of p.
		last := a
		b := last.AsSlice()
		host := last.BitLen() - p.Bits()
		for i := len(b) - 1; i >= 0 && host > 0; i-- {
			n := min(host, 8)
			b[i] |= byte(1<<n - 1)
			host -= n
		}
		last, _ = netip.AddrFromSlice(b)
		return last.Next()
	case 2:
		return a
	}
	b := a.AsSlice()
	b[len(b)-1] = byte(r.Uint32())
	b[len(b)-2] = byte(r.Uint32())
	x, _ := netip.AddrFromSlice(b)
	return x
}

// naiveContains is the obvious, slow definition Contains must agree with.
func naiveContains(prefixes []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range prefixes {
		p = p.Masked()
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func TestNetworksMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 300 {
		prefixes := make([]netip.Prefix, 1+r.IntN(20))
		for i := range prefixes {
			prefixes[i] = randPrefix(r)
		}
		n := NewNetworks(prefixes)
		canon := NewNetworks(n.Prefixes())
		if !slices.Equal(canon.Prefixes(), n.Prefixes()) {
			t.Fatalf("%v: canonical form %s is not stable: %s", prefixes, n, canon)
		}
		for range 100 {
			a := randNear(r, prefixes[r.IntN(len(prefixes))])
			want := naiveContains(prefixes, a)
			if got := n.Contains(a); got != want {
				t.Fatalf("%v: Contains(%v) = %v, want %v", prefixes, a, got, want)
			}
			if got := canon.Contains(a); got != want {
				t.Fatalf("canonical %s: Contains(%v) = %v, want %v", canon, a, got, want)
			}
		}
	}
}

func TestNetworksContainsAllocs(t *testing.T) {
	n := DefaultHomeNets()
	a4, a6 := netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("fd00::1")
	allocs := testing.AllocsPerRun(100, func() {
		n.Contains(a4)
		n.Contains(a6)
	})
	if allocs != 0 {
		t.Errorf("Contains allocates %v times per call, want 0", allocs)
	}
}

func FuzzParseNetworks(f *testing.F) {
	f.Add("10.0.0.0/8, 147.32.0.0/16, 2001:db8::/32")
	f.Add("::ffff:10.0.0.0/104 10.0.0.1")
	f.Add("0.0.0.0/0 ::/0")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNetworks(s)
		if err != nil {
			return
		}
		again, err := ParseNetworks(n.String())
		if err != nil {
			t.Fatalf("String() = %q does not parse: %v", n, err)
		}
		if !slices.Equal(again.Prefixes(), n.Prefixes()) {
			t.Fatalf("round trip: %s became %s", n, again)
		}
		for _, p := range n.Prefixes() {
			if !n.Contains(p.Addr()) {
				t.Fatalf("%s does not contain the start of its own prefix %s", n, p)
			}
		}
	})
}

func BenchmarkNetworksContains(b *testing.B) {
	// 300 scattered prefixes that barely overlap, so that the set really
	// holds about 300 intervals, and lookups half near their edges and
	// half anywhere.
	r := rand.New(rand.NewPCG(7, 8))
	many := make([]netip.Prefix, 300)
	for i := range many {
		if i%3 == 2 {
			var a [16]byte
			for j := range a {
				a[j] = byte(r.Uint32())
			}
			many[i] = netip.PrefixFrom(netip.AddrFrom16(a), 32+r.IntN(33))
			continue
		}
		x := r.Uint32()
		a := netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
		many[i] = netip.PrefixFrom(a, 16+r.IntN(13))
	}
	addrs := make([]netip.Addr, 256)
	for i := range addrs {
		if i%2 == 0 {
			addrs[i] = randNear(r, many[r.IntN(len(many))])
		} else {
			addrs[i] = randAddr(r)
		}
	}
	for _, bb := range []struct {
		name string
		n    *Networks
	}{
		{"default", DefaultHomeNets()},
		{"300prefixes", NewNetworks(many)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				bb.n.Contains(addrs[i&255])
				i++
			}
		})
	}
}
