package apphint

import "testing"

func BenchmarkDNSParse(b *testing.B) {
	for _, bm := range []struct {
		name string
		msg  []byte
	}{
		{"query", query("www.example.com", DNSTypeA)},
		{"response", realDNSResponse},
		{"exfil", realDNSExfil},
		{"malformed", header(9, 0, 1, 0, 0, 0).u16(0xc00c, 1, 1)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			var d DNS
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.msg)))
			for b.Loop() {
				_ = d.Parse(bm.msg)
			}
		})
	}
}

func BenchmarkClientHelloSNI(b *testing.B) {
	for _, bm := range []struct {
		name string
		in   []byte
	}{
		{"curl", realHelloCurl},
		{"tls12", realHelloDridex},
		{"incomplete", realHelloCurl[:300]},
		{"not-tls", realHTTPAppleTV},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.in)))
			for b.Loop() {
				ClientHelloSNI(bm.in)
			}
		})
	}
}

func BenchmarkHelloParse(b *testing.B) {
	msg := handshake(helloBody(sniExt("split.example.com"), alpnExt("h2", "http/1.1")))
	for _, bm := range []struct {
		name string
		in   []byte
	}{
		{"curl", realHelloCurl},
		{"split-sni", records(msg, len(msg)-30)},
		{"1-byte-records", records(msg, ones(len(msg)-1)...)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			var h Hello
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.in)))
			for b.Loop() {
				h.Parse(bm.in)
			}
		})
	}
}

func BenchmarkParseHTTPRequest(b *testing.B) {
	for _, bm := range []struct {
		name string
		in   []byte
	}{
		{"appletv", realHTTPAppleTV},
		{"emotet", realHTTPEmotet},
		{"proxy", []byte("GET http://a.b:8080/x HTTP/1.1\r\nHost: a.b:8080\r\nUser-Agent: x\r\n\r\n")},
		{"not-http", realHelloCurl},
	} {
		b.Run(bm.name, func(b *testing.B) {
			var req HTTPRequest
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.in)))
			for b.Loop() {
				ParseHTTPRequest(bm.in, &req)
			}
		})
	}
}

// TestNoAllocs keeps the hot paths allocation-free in ordinary test runs,
// including the error paths that hostile input takes.
func TestNoAllocs(t *testing.T) {
	var d DNS
	var h Hello
	var req HTTPRequest
	msg := handshake(helloBody(sniExt("split.example.com"), alpnExt("h2", "http/1.1")))
	split := records(msg, len(msg)-30)
	cases := map[string]func(){
		"DNS response":            func() { _ = d.Parse(realDNSResponse) },
		"DNS malformed":           func() { _ = d.Parse(header(9, 0, 1, 0, 0, 0).u16(0xc00c, 1, 1)) },
		"DNS truncated":           func() { _ = d.Parse(realDNSExfil[:100]) },
		"ClientHelloSNI":          func() { ClientHelloSNI(realHelloCurl) },
		"ClientHelloSNI not TLS":  func() { ClientHelloSNI(realHTTPEmotet) },
		"Hello.Parse split SNI":   func() { h.Parse(split) },
		"Hello.Parse incomplete":  func() { h.Parse(realHelloCurl[:200]) },
		"ParseHTTPRequest":        func() { ParseHTTPRequest(realHTTPAppleTV, &req) },
		"ParseHTTPRequest not ok": func() { ParseHTTPRequest(realHelloCurl, &req) },
	}
	for name, fn := range cases {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocs per run", name, n)
		}
	}
}
