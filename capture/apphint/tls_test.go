package apphint

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// Builders for ClientHellos.

func tlsExt(typ uint16, data []byte) []byte {
	return wire(nil).u16(typ, uint16(len(data))).u8(data...)
}

// sniExt builds a server_name extension with host_name entries.
func sniExt(names ...string) []byte {
	var list wire
	for _, n := range names {
		list = list.u8(0).u16(uint16(len(n))).u8([]byte(n)...)
	}
	return tlsExt(extServerName, wire(nil).u16(uint16(len(list))).u8(list...))
}

func alpnExt(protos ...string) []byte {
	var list wire
	for _, p := range protos {
		list = list.u8(byte(len(p))).u8([]byte(p)...)
	}
	return tlsExt(extALPN, wire(nil).u16(uint16(len(list))).u8(list...))
}

func versionsExt(vs ...uint16) []byte {
	return tlsExt(extSupportedVersions, wire(nil).u8(byte(2*len(vs))).u16(vs...))
}

// helloBody builds a ClientHello body (without handshake header); exts nil
// means no extensions block at all.
func helloBody(exts ...[]byte) []byte {
	b := wire(nil).u16(0x0303).u8(make([]byte, 32)...) // version, random
	b = b.u8(32).u8(bytes.Repeat([]byte{7}, 32)...)    // session id
	b = b.u16(4, 0x1301, 0xc02f)                       // cipher suites
	b = b.u8(1, 0)                                     // compression
	if exts == nil {
		return b
	}
	all := bytes.Join(exts, nil)
	return b.u16(uint16(len(all))).u8(all...)
}

// handshake wraps a body into a ClientHello handshake message.
func handshake(body []byte) []byte {
	n := len(body)
	return append([]byte{1, byte(n >> 16), byte(n >> 8), byte(n)}, body...)
}

// records splits msg into TLS handshake records with payloads of the given
// sizes; the last record takes the rest.
func records(msg []byte, sizes ...int) []byte {
	var out wire
	for _, n := range sizes {
		n = min(n, len(msg))
		out = out.u8(22, 3, 1).u16(uint16(n)).u8(msg[:n]...)
		msg = msg[n:]
	}
	return out.u8(22, 3, 1).u16(uint16(len(msg))).u8(msg...)
}

func hello(exts ...[]byte) []byte { return records(handshake(helloBody(exts...))) }

type helloWant struct {
	res        HelloResult
	sni, alpn  string // "<nil>" for nil
	version    uint16
	maxVersion uint16
	records    int
	len        int // 0: len(input)
}

func str(b []byte) string {
	if b == nil {
		return "<nil>"
	}
	return string(b)
}

func helloGot(h *Hello, res HelloResult) helloWant {
	return helloWant{res, str(h.SNI), str(h.ALPN), h.Version, h.MaxVersion, h.Records, h.Len}
}

var notTLS = helloWant{res: HelloNotTLS, sni: "<nil>", alpn: "<nil>"}

func TestClientHello(t *testing.T) {
	std := []byte(nil)
	std = append(std, sniExt("example.com")...)
	std = append(std, alpnExt("h2", "http/1.1")...)
	std = append(std, versionsExt(0x3a3a, 0x0304, 0x0303)...)
	long := strings.Repeat("a", 300)
	found := func(sni string) helloWant {
		return helloWant{res: HelloFound, sni: sni, alpn: "<nil>", version: 0x0303, maxVersion: 0x0303, records: 1}
	}
	bad := func(sni string) helloWant { w := found(sni); w.res = HelloBadSNI; return w }
	noSNI := helloWant{res: HelloNoSNI, sni: "<nil>", alpn: "<nil>", version: 0x0303, maxVersion: 0x0303, records: 1}
	withVersion := func(w helloWant, v uint16) helloWant { w.maxVersion = v; return w }
	withALPN := func(w helloWant, a string) helloWant { w.alpn = a; return w }
	// patch returns hello(exts...) with bytes at off replaced.
	patch := func(b []byte, off int, v ...byte) []byte {
		b = bytes.Clone(b)
		copy(b[off:], v)
		return b
	}
	base := hello(sniExt("example.com"))
	const bodyAt = 9 // record header + handshake header
	const extsAt = bodyAt + 2 + 32 + 1 + 32 + 2 + 4 + 1 + 1

	tests := []struct {
		name string
		in   []byte
		want helloWant
	}{
		{"typical", hello(sniExt("example.com"), alpnExt("h2", "http/1.1"), versionsExt(0x3a3a, 0x0304, 0x0303)),
			helloWant{HelloFound, "example.com", "h2", 0x0303, 0x0304, 1, 0}},
		{"case kept", hello(sniExt("WWW.Example.COM")), found("WWW.Example.COM")},
		{"trailing dot", hello(sniExt("example.com.")), found("example.com.")},
		{"underscore and digits", hello(sniExt("_dmarc.x-1.test")), found("_dmarc.x-1.test")},
		{"IPv4 literal", hello(sniExt("192.0.2.1")), found("192.0.2.1")},
		{"second host_name ignored", hello(sniExt("a.test", "b.test")), found("a.test")},
		{"second server_name extension ignored", hello(sniExt("a.test"), sniExt("b.test")), found("a.test")},
		{"other name type first", hello(tlsExt(0, wire(nil).u16(12).u8(1).u16(3).u8([]byte("xyz")...).u8(0).u16(3).u8([]byte("a.b")...))), found("a.b")},
		{"no extensions", hello(), noSNI},
		{"empty extensions", hello([]byte{}), noSNI},
		{"no SNI, ALPN", hello(alpnExt("http/1.1")), withALPN(noSNI, "http/1.1")},
		{"unknown extensions skipped", hello(tlsExt(0xfe0d, make([]byte, 300)), tlsExt(21, nil), sniExt("x.test")), found("x.test")},
		{"only TLS 1.1 offered", hello(sniExt("old.test"), versionsExt(0x0302)), withVersion(found("old.test"), 0x0302)},
		{"only GREASE versions", hello(versionsExt(0x1a1a)), noSNI},
		{"space in SNI", hello(sniExt("exa mple.com")), bad("exa mple.com")},
		{"empty label", hello(sniExt("a..b")), bad("a..b")},
		{"leading dot", hello(sniExt(".a")), bad(".a")},
		{"IPv6 literal", hello(sniExt("[::1]")), bad("[::1]")},
		{"binary SNI", hello(sniExt("a\x00b")), bad("a\x00b")},
		{"empty SNI", hello(sniExt("")), bad("")},
		{"300-byte SNI", hello(sniExt(long)), bad(long[:255])},
		{"real curl TLS 1.3", realHelloCurl, helloWant{HelloFound, "testing.com", "h2", 0x0303, 0x0304, 1, 0}},
		{"real TLS 1.2", realHelloDridex, found("truepenesonga.com")},
		{"real without SNI", realHelloNoSNI, noSNI},
		{"followed by other records", append(hello(sniExt("x.test")), 0x14, 3, 3, 0, 1, 1, 0x17, 3, 3, 0, 0), withLen(found("x.test"), len(hello(sniExt("x.test"))))},

		{"empty SNI extension", hello(tlsExt(0, nil)), notTLS},
		{"valid SNI, then a broken extension", hello(sniExt("a.test"), wire(nil).u16(16, 9).u8(0)), notTLS}, // fuzz regression: sni leaked out
		{"valid SNI, then trailing garbage", records(handshake(append(helloBody(sniExt("a.test")), 0, 0))), notTLS},
		{"SNI list length mismatch", hello(tlsExt(0, wire(nil).u16(9).u8(0).u16(3).u8([]byte("a.b")...))), notTLS},
		{"SNI name past list", hello(tlsExt(0, wire(nil).u16(6).u8(0).u16(9).u8([]byte("a.b")...))), notTLS},
		{"empty ALPN protocol", hello(tlsExt(extALPN, wire(nil).u16(2).u8(0, 0))), notTLS},
		{"ALPN protocol past list", hello(tlsExt(extALPN, wire(nil).u16(3).u8(5, 'h', '2'))), notTLS},
		{"odd supported_versions", hello(tlsExt(extSupportedVersions, []byte{3, 3, 4, 3})), notTLS},
		{"extension past end", hello(wire(nil).u16(0, 200).u8(make([]byte, 10)...)), notTLS},
		{"extensions length mismatch", patch(base, extsAt, 0, 99), notTLS},
		{"trailing bytes after extensions", records(handshake(append(helloBody(sniExt("a.b")), 0))), notTLS},
		{"session id 33", patch(base, bodyAt+34, 33), notTLS},
		{"odd cipher suites", patch(base, bodyAt+67, 0, 3), notTLS},
		{"no compression methods", records(handshake(wire(nil).u16(0x0303).u8(make([]byte, 32)...).u8(0).u16(2, 0x1301).u8(0).u16(0))), notTLS},
		{"legacy version 2.0", patch(base, bodyAt, 2, 0), notTLS},
		{"SSL 2.0 compatible hello", []byte{0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10, 0x07, 0x00, 0xc0}, notTLS},
		{"HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), notTLS},
		{"application data record", patch(base, 0, 23), notTLS},
		{"record version 2.0", patch(base, 1, 2), notTLS},
		{"record version 3.5", patch(base, 2, 5), notTLS},
		{"record over 2^14", patch(base, 3, 0x40, 0x01), notTLS},
		{"server hello", patch(base, 5, 2), notTLS},
		{"hello claiming 16 MB", patch(base, 6, 0xff, 0xff, 0xff), notTLS},
		{"hello over MaxHelloLen", patch(base, 6, 0x00, 0x40, 0x01), notTLS},
		{"hello body too short", records(handshake(make([]byte, 40))), notTLS},
		{"alert record inside fragmented hello", func() []byte {
			b := records(handshake(helloBody(sniExt("a.b"))), 20)
			b[25] = 21
			return b
		}(), notTLS},
	}
	var h Hello
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want.res >= HelloNoSNI && want.len == 0 {
				want.len = len(tt.in)
			}
			res, need := h.Parse(tt.in)
			if got := helloGot(&h, res); got != want || need != 0 {
				t.Errorf("Parse = %+v need %d\n      want %+v", got, need, want)
			}
			sni, res2, need2 := ClientHelloSNI(tt.in)
			if res2 != res || need2 != need || str(sni) != str(h.SNI) {
				t.Errorf("ClientHelloSNI = %q %v %d, Parse gave %q %v %d", sni, res2, need2, h.SNI, res, need)
			}
		})
	}
}

func withLen(w helloWant, n int) helloWant { w.len = n; return w }

// TestClientHelloPrefixes cuts valid hellos at every byte: each prefix must be
// HelloIncomplete with a need beyond the prefix and not beyond the real end,
// and exact once the last record header is in.
func TestClientHelloPrefixes(t *testing.T) {
	typical := handshake(helloBody(sniExt("example.com"), alpnExt("h2")))
	inputs := map[string][]byte{
		"curl":           realHelloCurl,
		"dridex":         realHelloDridex,
		"no SNI":         realHelloNoSNI,
		"no extensions":  hello(),
		"two records":    records(typical, 50),
		"empty records":  records(typical, 0, 30, 0, 0),
		"1-byte records": records(typical, ones(len(typical)-1)...),
		"header split":   records(typical, 2, 1),
	}
	var h Hello
	for name, in := range inputs {
		res, _ := h.Parse(in)
		if res < HelloNoSNI || h.Len != len(in) {
			t.Fatalf("%s: full input gives %v, Len %d of %d", name, res, h.Len, len(in))
		}
		lastHeader := lastRecordStart(in)
		for k := 0; k < len(in); k++ {
			res, need := h.Parse(in[:k])
			if res != HelloIncomplete || need <= k || need > len(in) {
				t.Fatalf("%s: prefix %d: %v need %d (full %d)", name, k, res, need, len(in))
			}
			if k >= lastHeader+recordHeaderLen && need != len(in) {
				t.Fatalf("%s: prefix %d: need %d, want exactly %d", name, k, need, len(in))
			}
		}
	}
}

func ones(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

func lastRecordStart(b []byte) int {
	last := 0
	for p := 0; p+recordHeaderLen <= len(b); p += recordHeaderLen + (int(b[p+3])<<8 | int(b[p+4])) {
		last = p
	}
	return last
}

// TestClientHelloFragmented splits a ClientHello into two records at every
// position, including inside the server name, and then into 1-byte records.
func TestClientHelloFragmented(t *testing.T) {
	msg := handshake(helloBody(sniExt("split.example.com"), alpnExt("h2", "http/1.1")))
	var h Hello
	check := func(name string, in []byte, records int) {
		t.Helper()
		res, need := h.Parse(in)
		want := helloWant{HelloFound, "split.example.com", "h2", 0x0303, 0x0303, records, len(in)}
		if got := helloGot(&h, res); got != want || need != 0 {
			t.Fatalf("%s: %+v need %d, want %+v", name, got, need, want)
		}
		if !aliases(h.SNI, in) && !aliases(h.SNI, h.sniBuf[:]) {
			t.Fatalf("%s: SNI aliases neither input nor Hello", name)
		}
		sni, res2, _ := ClientHelloSNI(in)
		if res2 != res || string(sni) != "split.example.com" {
			t.Fatalf("%s: ClientHelloSNI = %q %v", name, sni, res2)
		}
	}
	copied := 0
	for at := 1; at < len(msg); at++ {
		in := records(msg, at)
		check(fmt.Sprintf("split at %d", at), in, 2)
		if aliases(h.SNI, h.sniBuf[:]) {
			copied++
		}
	}
	if want := len("split.example.com") - 1; copied != want {
		t.Errorf("SNI copied for %d split points, want %d", copied, want)
	}
	check("1-byte records", records(msg, ones(len(msg)-1)...), len(msg))
}

// aliases reports whether s starts inside buf.
func aliases(s, buf []byte) bool {
	if len(s) == 0 {
		return false
	}
	for i := range buf {
		if &buf[i] == &s[0] {
			return true
		}
	}
	return false
}

func TestClientHelloIncompleteNeed(t *testing.T) {
	in := hello(sniExt("example.com"))
	tests := []struct {
		name string
		in   []byte
		need int
	}{
		{"empty", nil, recordHeaderLen + handshakeHeaderLen + minHelloBody},
		{"content type only", in[:1], recordHeaderLen + handshakeHeaderLen + minHelloBody},
		{"record header", in[:5], len(in)},
		{"first segment of a split", in[:100], len(in)},
		{"record header claims less than the handshake", records(handshake(helloBody(sniExt("example.com"))), 60)[:30], 65 + 5 + (len(in) - 5 - 60)},
	}
	for _, tt := range tests {
		res, need := new(Hello).Parse(tt.in)
		if res != HelloIncomplete || need != tt.need {
			t.Errorf("%s: %v need %d, want incomplete need %d", tt.name, res, need, tt.need)
		}
	}
}

func TestHelloResultString(t *testing.T) {
	for r, want := range map[HelloResult]string{HelloNotTLS: "not-tls", HelloIncomplete: "incomplete", HelloNoSNI: "no-sni", HelloFound: "found", HelloBadSNI: "bad-sni", 99: "invalid"} {
		if r.String() != want {
			t.Errorf("%d.String() = %q, want %q", r, r.String(), want)
		}
	}
}
