package flow

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// communityIDVectors are published test vectors, each with its ID for seed 0
// and seed 1.
//
// For ICMP rows sport and dport are the message type and code. The baseline
// JSON files record ICMP tuples after the spec's type mapping, i.e. as (type,
// counterpart) for two-way types; they are still valid (type, code) inputs,
// because the code does not enter the hash of a two-way type.
var communityIDVectors = []struct {
	proto        Proto
	src, dst     string
	sport, dport uint16
	seed0, seed1 string
}{
	// github.com/corelight/community-id-spec baseline/baseline_deflt.json
	// and baseline/baseline_seed1.json (same tuples, seed 0 and seed 1),
	// all 23 entries.
	{ProtoICMPv6, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 136, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="},
	{ProtoICMPv6, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 136, 135, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="},
	{ProtoICMPv6, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 135, 136, "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="},
	{ProtoICMPv6, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 136, 135, "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="},
	{ProtoICMPv6, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0, "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=", "1:lVEtCZpYu84Xqaa++3lXFyuu2n4="},
	{ProtoICMPv6, "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", 1, 4, "1:hLZd0XGWojozrvxqE0dWB1iM6R0=", "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8="},
	{ProtoICMPv6, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 128, 129, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="},
	{ProtoICMPv6, "3ffe:501:0:1001::2", "3ffe:507:0:1:200:86ff:fe05:80da", 129, 128, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="},
	{ProtoICMPv6, "fe80::200:86ff:fe05:80da", "ff02::2", 133, 134, "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=", "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8="},
	{ProtoICMPv6, "fe80::260:97ff:fe07:69ea", "ff02::1", 134, 133, "1:pkvHqCL88/tg1k4cPigmZXUtL00=", "1:K/ee5UCqAMAQXDorP5nSa2CGLjc="},
	{ProtoICMP, "192.168.0.89", "192.168.0.1", 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="},
	{ProtoICMP, "192.168.0.1", "192.168.0.89", 0, 8, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="},
	{ProtoICMP, "10.0.0.1", "10.0.0.2", 11, 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM=", "1:XjUibYHaafLQ3pxQeiMI8g25q20="},
	{ProtoTCP, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="},
	{ProtoTCP, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 25, 63943, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="},
	{ProtoSCTP, "192.168.170.8", "192.168.170.56", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="},
	{ProtoSCTP, "192.168.170.56", "192.168.170.8", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="},
	{ProtoTCP, "128.232.110.120", "66.35.250.204", 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="},
	{ProtoTCP, "66.35.250.204", "128.232.110.120", 80, 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="},
	{ProtoUDP, "192.168.1.52", "8.8.8.8", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="},
	{ProtoUDP, "8.8.8.8", "192.168.1.52", 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="},
	{46, "10.1.12.1", "10.1.12.2", 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="},
	{46, "10.1.12.2", "10.1.12.1", 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="},

	// github.com/corelight/community-id-spec baseline/README.md, tables
	// "Default settings" and "A custom seed=1 value", all 16 rows.
	{ProtoTCP, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:wCb3OG7yAFWelaUydu0D+125CLM=", "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="},
	{ProtoTCP, "5.6.7.8", "1.2.3.4", 3344, 1122, "1:wCb3OG7yAFWelaUydu0D+125CLM=", "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="},
	{ProtoUDP, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=", "1:OShq+iKDAMVouh/4bMxB9Sz4amw="},
	{ProtoUDP, "5.6.7.8", "1.2.3.4", 3344, 1122, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=", "1:OShq+iKDAMVouh/4bMxB9Sz4amw="},
	{ProtoSCTP, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=", "1:uitchpn5MMGAQKBJh7bIr/bAr7s="},
	{ProtoSCTP, "5.6.7.8", "1.2.3.4", 3344, 1122, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=", "1:uitchpn5MMGAQKBJh7bIr/bAr7s="},
	{ProtoICMP, "1.2.3.4", "5.6.7.8", 8, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=", "1:9pr4ZGTICiuZoIh90RRYE2RyXpU="},
	{ProtoICMP, "5.6.7.8", "1.2.3.4", 0, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=", "1:9pr4ZGTICiuZoIh90RRYE2RyXpU="},
	{ProtoICMP, "1.2.3.4", "5.6.7.8", 11, 0, "1:f/YiSyWqczrTgfUCZlBUnvHRcPk=", "1:1DD7cWGC/Yg91YGsQeni8du3pIA="},
	{ProtoICMPv6, "fe80:0001:0203:0405:0607:0809:0A0B:0C0D", "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", 128, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=", "1:IO27GQzPuCtNnwFvjWALMHu5tJE="},
	{ProtoICMPv6, "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", "fe80:0001:0203:0405:0607:0809:0A0B:0C0D", 129, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=", "1:IO27GQzPuCtNnwFvjWALMHu5tJE="},
	{ProtoICMPv6, "fe80:0001:0203:0405:0607:0809:0A0B:0C0D", "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", 146, 0, "1:fYC8+pz24E+EhANP1EZhpX0Dw10=", "1:Cv4IKJe56BNkF0MBW2YxQ3Nwc3s="},
	{46, "1.2.3.4", "5.6.7.8", 0, 0, "1:ikv3kmf89luf73WPz1jOs49S768=", "1:/buhqeOmaRCopOZFy9HnoJd5XW8="},
	{46, "5.6.7.8", "1.2.3.4", 0, 0, "1:ikv3kmf89luf73WPz1jOs49S768=", "1:/buhqeOmaRCopOZFy9HnoJd5XW8="},
	{46, "fe80:0001:0203:0405:0607:0809:0A0B:0C0D", "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", 0, 0, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=", "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM="},
	{46, "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", "fe80:0001:0203:0405:0607:0809:0A0B:0C0D", 0, 0, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=", "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM="},

	// github.com/corelight/pycommunityid tests/communityid_test.py, the
	// reference implementation the spec recommends: one-way ICMP types
	// keep their direction, and the code of a two-way type is ignored.
	{ProtoICMP, "192.168.0.89", "192.168.0.1", 20, 0, "1:3o2RFccXzUgjl7zDpqmY7yJi8rI=", "1:lCXHHxavE1Vq3oX9NH5ladQg02o="},
	{ProtoICMP, "192.168.0.89", "192.168.0.1", 20, 1, "1:tz/fHIDUHs19NkixVVoOZywde+I=", "1:Ie3wmFyxiEyikbsbcO03d2nh+PM="},
	{ProtoICMP, "192.168.0.1", "192.168.0.89", 0, 20, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="},
	{ProtoICMPv6, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="},
	{ProtoICMPv6, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 136, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="},
	{ProtoICMPv6, "3ffe:507:0:1:260:97ff:fe07:69ea", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0, "1:NdobDX8PQNJbAyfkWxhtL2Pqp5w=", "1:OlOWx9psIbBFi7lOCw/4MhlKR9M="},
	{ProtoICMPv6, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:507:0:1:260:97ff:fe07:69ea", 3, 0, "1:/OGBt9BN1ofenrmSPWYicpij2Vc=", "1:Ij4ZxnC87/MXzhOjvH2vHu7LRmE="},
	{ProtoSCTP, "192.168.170.8", "192.168.170.56", 7, 80, "1:jQgCxbku+pNGw8WPbEc/TS/uTpQ=", "1:Y1/0jQg6e+I3ZwZZ9LP65DNbTXU="},
	{ProtoSCTP, "192.168.170.56", "192.168.170.8", 80, 7, "1:jQgCxbku+pNGw8WPbEc/TS/uTpQ=", "1:Y1/0jQg6e+I3ZwZZ9LP65DNbTXU="},
	{ProtoTCP, "10.0.0.1", "10.0.0.2", 10, 11569, "1:SXBGMX1lBOwhhoDrZynfROxnhnM=", "1:HmBRGR+fUyXF4t8WEtal7Y0gEAo="},
	{46, "10.1.24.4", "10.1.12.1", 0, 0, "1:/nQI4Rh/TtY3mf0R2gJFBkVlgS4=", "1:BK3BVW3U2eemuwVQVN3zd/GULno="},
	{46, "10.1.12.1", "10.1.24.4", 0, 0, "1:/nQI4Rh/TtY3mf0R2gJFBkVlgS4=", "1:BK3BVW3U2eemuwVQVN3zd/GULno="},
}

func TestCommunityIDVectors(t *testing.T) {
	for _, v := range communityIDVectors {
		src, dst := netip.MustParseAddr(v.src), netip.MustParseAddr(v.dst)
		for _, c := range []struct {
			seed uint16
			want string
		}{{0, v.seed0}, {1, v.seed1}} {
			if got := CommunityID(c.seed, src, dst, v.sport, v.dport, v.proto); got != c.want {
				t.Errorf("CommunityID(seed %d, %v %s:%d -> %s:%d) = %s, want %s",
					c.seed, v.proto, v.src, v.sport, v.dst, v.dport, got, c.want)
			}
		}
	}
}

func TestCommunityIDEdgeCases(t *testing.T) {
	a4 := netip.MustParseAddr("1.2.3.4")
	b4 := netip.MustParseAddr("5.6.7.8")
	want := "1:wCb3OG7yAFWelaUydu0D+125CLM=" // TCP 1.2.3.4:1122 -> 5.6.7.8:3344, spec README

	tests := []struct {
		name     string
		src, dst netip.Addr
		sport    uint16
		dport    uint16
		proto    Proto
		want     string
	}{
		{"v4-mapped src", netip.AddrFrom16(a4.As16()), b4, 1122, 3344, ProtoTCP, want},
		{"v4-mapped both", netip.AddrFrom16(b4.As16()), netip.AddrFrom16(a4.As16()), 3344, 1122, ProtoTCP, want},
		// RSVP has no ports: whatever the caller passes must not count.
		{"portless ignores ports", a4, b4, 1, 2, 46, "1:ikv3kmf89luf73WPz1jOs49S768="},
		{"zero src", netip.Addr{}, b4, 1122, 3344, ProtoTCP, ""},
		{"zero dst", a4, netip.Addr{}, 1122, 3344, ProtoTCP, ""},
	}
	for _, tt := range tests {
		if got := CommunityID(0, tt.src, tt.dst, tt.sport, tt.dport, tt.proto); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestAppendCommunityID(t *testing.T) {
	src, dst := netip.MustParseAddr("1.2.3.4"), netip.MustParseAddr("5.6.7.8")
	got := AppendCommunityID([]byte(`"cid":"`), 0, src, dst, 1122, 3344, ProtoTCP)
	if want := `"cid":"1:wCb3OG7yAFWelaUydu0D+125CLM=`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}

	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendCommunityID(buf[:0], 0, src, dst, 1122, 3344, ProtoTCP)
	})
	if allocs != 0 {
		t.Errorf("AppendCommunityID allocates %v times per call, want 0", allocs)
	}
}

// randAddr returns a random IPv4 or IPv6 address, drawn from a small pool
// often enough that equal addresses (where ports decide the order) occur.
func randAddr(r *rand.Rand) netip.Addr {
	if r.IntN(8) == 0 {
		return netip.MustParseAddr("10.0.0.1")
	}
	if r.IntN(2) == 0 {
		return netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
	}
	var a [16]byte
	for i := range a {
		a[i] = byte(r.Uint32())
	}
	return netip.AddrFrom16(a)
}

func TestCommunityIDSymmetric(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	protos := []Proto{ProtoTCP, ProtoUDP, ProtoSCTP, 0, 46, 47, 50, 255}
	for range 10000 {
		src, dst := randAddr(r), randAddr(r)
		sport, dport := uint16(r.Uint32()), uint16(r.Uint32())
		if r.IntN(8) == 0 {
			dport = sport
		}
		proto := protos[r.IntN(len(protos))]
		seed := uint16(r.Uint32())
		fwd := CommunityID(seed, src, dst, sport, dport, proto)
		rev := CommunityID(seed, dst, src, dport, sport, proto)
		if fwd != rev {
			t.Fatalf("seed %d %v %v:%d -> %v:%d: %s, reverse %s", seed, proto, src, sport, dst, dport, fwd, rev)
		}
	}
}

func TestCommunityIDICMPPairs(t *testing.T) {
	// Request and answer types, one direction each, must share an ID
	// whatever their codes; the spec's tables in pycommunityid icmp.py and
	// icmp6.py.
	pairs := []struct {
		proto    Proto
		req, ans uint16
	}{
		{ProtoICMP, 8, 0},   // echo
		{ProtoICMP, 13, 14}, // timestamp
		{ProtoICMP, 15, 16}, // information
		{ProtoICMP, 10, 9},  // router solicitation / advertisement
		{ProtoICMP, 17, 18}, // address mask
		{ProtoICMPv6, 128, 129},
		{ProtoICMPv6, 130, 131}, // MLD query / report
		{ProtoICMPv6, 133, 134}, // router solicitation / advertisement
		{ProtoICMPv6, 135, 136}, // neighbor solicitation / advertisement
		{ProtoICMPv6, 139, 140}, // node information
		{ProtoICMPv6, 144, 145}, // home agent address discovery
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, p := range pairs {
		for range 200 {
			src, dst := randAddr(r), randAddr(r)
			c1, c2 := uint16(r.IntN(256)), uint16(r.IntN(256))
			req := CommunityID(0, src, dst, p.req, c1, p.proto)
			ans := CommunityID(0, dst, src, p.ans, c2, p.proto)
			if req != ans {
				t.Fatalf("%v type %d %v -> %v = %s, type %d back = %s", p.proto, p.req, src, dst, req, p.ans, ans)
			}
		}
	}

	// The documented exception: one-way messages (here destination
	// unreachable and time exceeded) depend on direction.
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	for _, proto := range []Proto{ProtoICMP, ProtoICMPv6} {
		for _, typ := range []uint16{3, 11} {
			if CommunityID(0, a, b, typ, 0, proto) == CommunityID(0, b, a, typ, 0, proto) {
				t.Errorf("%v type %d: one-way message hashes alike in both directions", proto, typ)
			}
		}
	}
}

func BenchmarkAppendCommunityID(b *testing.B) {
	benches := []struct {
		name     string
		src, dst netip.Addr
	}{
		{"v4", netip.MustParseAddr("192.168.1.52"), netip.MustParseAddr("8.8.8.8")},
		{"v6", netip.MustParseAddr("2001:470:e5bf:dead:4957:2174:e82c:4887"), netip.MustParseAddr("2607:f8b0:400c:c03::1a")},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 64)
			for b.Loop() {
				buf = AppendCommunityID(buf[:0], 0, bb.src, bb.dst, 54585, 53, ProtoUDP)
			}
		})
	}
}

// refCommunityID is the spec's algorithm written plainly, with crypto/sha1
// and encoding/base64, to check the fast paths of AppendCommunityID.
func refCommunityID(seed uint16, src, dst netip.Addr, sport, dport uint16, proto Proto) string {
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() || !dst.IsValid() {
		return ""
	}
	hasPorts, oneWay := true, false
	switch proto {
	case ProtoTCP, ProtoUDP, ProtoSCTP:
	case ProtoICMP, ProtoICMPv6:
		counterpart := icmpCounterpart
		if proto == ProtoICMPv6 {
			counterpart = icmp6Counterpart
		}
		if c, ok := counterpart(sport); ok {
			dport = c
		} else {
			oneWay = true
		}
	default:
		hasPorts = false
		sport, dport = 0, 0
	}
	sa, da := src.AsSlice(), dst.AsSlice()
	if !oneWay {
		if c := bytes.Compare(sa, da); c > 0 || (c == 0 && sport > dport) {
			sa, da, sport, dport = da, sa, dport, sport
		}
	}
	in := binary.BigEndian.AppendUint16(nil, seed)
	in = append(in, sa...)
	in = append(in, da...)
	in = append(in, byte(proto), 0)
	if hasPorts {
		in = binary.BigEndian.AppendUint16(in, sport)
		in = binary.BigEndian.AppendUint16(in, dport)
	}
	sum := sha1.Sum(in)
	return "1:" + base64.StdEncoding.EncodeToString(sum[:])
}

func TestCommunityIDMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	protos := []Proto{ProtoTCP, ProtoUDP, ProtoSCTP, ProtoICMP, ProtoICMPv6, 0, 46, 47, 255}
	addr := func() netip.Addr {
		switch r.IntN(6) {
		case 0:
			return netip.Addr{}
		case 1:
			// IPv4-mapped, hashed as IPv4.
			return netip.AddrFrom16(randAddr(r).Unmap().As16())
		case 2:
			// Shares a prefix with an IPv4 address, to exercise the
			// mixed-family ordering.
			a := [16]byte{10, 0, 0, 1}
			a[4+r.IntN(12)] = byte(r.Uint32())
			return netip.AddrFrom16(a)
		case 3:
			// IPv6 addresses sharing their first 8 bytes.
			a := netip.MustParseAddr("2001:db8::1").As16()
			a[8+r.IntN(8)] = byte(r.IntN(3))
			return netip.AddrFrom16(a)
		}
		return randAddr(r)
	}
	buf := make([]byte, 0, 64)
	for range 200000 {
		src, dst := addr(), addr()
		if r.IntN(8) == 0 {
			dst = src
		}
		sport, dport := uint16(r.Uint32()), uint16(r.Uint32())
		if r.IntN(2) == 0 {
			sport, dport = uint16(r.IntN(256)), uint16(r.IntN(256))
		}
		if r.IntN(8) == 0 {
			dport = sport
		}
		proto := protos[r.IntN(len(protos))]
		seed := uint16(r.Uint32())
		want := refCommunityID(seed, src, dst, sport, dport, proto)
		buf = AppendCommunityID(buf[:0], seed, src, dst, sport, dport, proto)
		if string(buf) != want {
			t.Fatalf("seed %d %v %v:%d -> %v:%d: got %s, want %s", seed, proto, src, sport, dst, dport, buf, want)
		}
	}
}

func TestEncodeDigest(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var sum [20]byte
	for i := range 100000 {
		for j := range sum {
			sum[j] = byte(r.Uint32())
		}
		switch i {
		case 0:
			sum = [20]byte{}
		case 1:
			for j := range sum {
				sum[j] = 0xff
			}
		}
		var out [communityIDLen]byte
		encodeDigest(&out, &sum)
		if got, want := string(out[2:]), base64.StdEncoding.EncodeToString(sum[:]); got != want {
			t.Fatalf("encodeDigest(% x) = %s, want %s", sum, got, want)
		}
	}
}
