package apphint

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzDNS(f *testing.F) {
	f.Add(query("www.example.com", DNSTypeA))
	f.Add(query("", 2))
	f.Add(responseExample())
	f.Add(realDNSResponse)
	f.Add(realDNSExfil)
	f.Add([]byte(header(9, 0, 1, 0, 0, 0).u16(0xc00c, 1, 1)))                                           // self pointer
	f.Add([]byte(header(1, 0, 1, 0, 0, 0).labels(-1, "A.b", "x y", "\x00\xff\\\"").u16(16, 1)))         // escapes
	f.Add([]byte(header(9, 0x8000, 1, 0xffff, 0, 0).name("a").u16(1, 1).rr(12, DNSTypeTXT, 1, 1, 'x'))) // many answers claimed
	// Reused across inputs (calls within a fuzz worker are sequential), which
	// also checks that Parse leaves nothing behind from the previous input.
	var d, again DNS
	f.Fuzz(func(t *testing.T, msg []byte) {
		err := d.Parse(msg)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not a ParseError of a known kind", err)
			}
			if pe.Offset < 0 || pe.Offset > len(msg) {
				t.Fatalf("error offset %d outside message of %d bytes", pe.Offset, len(msg))
			}
			_ = err.Error()
		} else {
			if d.QDCount > 0 && d.QName == nil {
				t.Fatal("question count > 0 but no QName")
			}
			if int(d.ANCount) != len(d.Answers)+int(d.Omitted) {
				t.Fatalf("ANCount %d != %d answers + %d omitted", d.ANCount, len(d.Answers), d.Omitted)
			}
		}
		if len(d.Answers) > MaxAnswers {
			t.Fatalf("%d answers", len(d.Answers))
		}
		checkName := func(name []byte, txt bool) {
			if cap(name) != len(name) || len(name) > 1003 {
				t.Fatalf("name %q: len %d cap %d", name, len(name), cap(name))
			}
			if txt {
				return
			}
			if len(name) == 0 {
				t.Fatal("empty name")
			}
			for _, c := range name {
				if c <= ' ' || c >= 0x7f || 'A' <= c && c <= 'Z' {
					t.Fatalf("name %q has byte %#x", name, c)
				}
			}
		}
		if d.QName != nil {
			checkName(d.QName, false)
		}
		for _, a := range d.Answers {
			if a.Name != nil {
				checkName(a.Name, a.Type == DNSTypeTXT)
			}
		}
		if err2 := again.Parse(msg); (err2 == nil) != (err == nil) || !bytes.Equal(again.QName, d.QName) || len(again.Answers) != len(d.Answers) {
			t.Fatal("Parse is not deterministic")
		}
	})
}

func FuzzClientHello(f *testing.F) {
	typical := handshake(helloBody(sniExt("example.com"), alpnExt("h2", "http/1.1"), versionsExt(0x3a3a, 0x0304, 0x0303)))
	f.Add(realHelloCurl)
	f.Add(realHelloDridex)
	f.Add(realHelloNoSNI)
	f.Add(records(typical))
	f.Add(records(typical, 3, 60))
	f.Add(records(typical, 0, 100, 0))
	f.Add(hello())
	f.Add(hello(sniExt("a..b")))
	f.Add([]byte{0x80, 0x2e, 0x01, 0x03, 0x01})
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Hello
		res, need := h.Parse(b)
		sni, res2, need2 := ClientHelloSNI(b)
		if res2 != res || need2 != need || !bytes.Equal(sni, h.SNI) || (sni == nil) != (h.SNI == nil) {
			t.Fatalf("ClientHelloSNI = %q %v %d, Parse = %q %v %d", sni, res2, need2, h.SNI, res, need)
		}
		switch res {
		case HelloIncomplete:
			if need <= len(b) || need-len(b) > recordHeaderLen+maxRecordLen+recordHeaderLen+handshakeHeaderLen+MaxHelloLen {
				t.Fatalf("incomplete: need %d for %d bytes", need, len(b))
			}
			return
		case HelloNotTLS:
			if need != 0 || h.SNI != nil || h.Len != 0 {
				t.Fatalf("not TLS: need %d, %+v", need, h)
			}
			return
		case HelloNoSNI, HelloFound, HelloBadSNI:
		default:
			t.Fatalf("result %d", res)
		}
		if need != 0 || h.Len < recordHeaderLen+handshakeHeaderLen+minHelloBody || h.Len > len(b) || h.Records < 1 {
			t.Fatalf("%v: need %d, Len %d of %d, %d records", res, need, h.Len, len(b), h.Records)
		}
		if (res == HelloNoSNI) != (h.SNI == nil) || len(h.SNI) > 255 || len(h.ALPN) > 255 {
			t.Fatalf("%v with SNI %q ALPN %q", res, h.SNI, h.ALPN)
		}
		if res == HelloFound && !hostnameLike(h.SNI) {
			t.Fatalf("found non-hostname %q", h.SNI)
		}
		// The bytes after the ClientHello do not matter, and every prefix of
		// it is incomplete with a need that does not overshoot.
		full := bytes.Clone(h.SNI)
		var p Hello
		if r, _ := p.Parse(b[:h.Len]); r != res || !bytes.Equal(p.SNI, full) {
			t.Fatalf("without trailing bytes: %v %q, with: %v %q", r, p.SNI, res, full)
		}
		for _, k := range []int{0, 1, 5, 9, h.Len / 2, h.Len - 1} {
			if k >= h.Len {
				continue
			}
			if r, n := p.Parse(b[:k]); r != HelloIncomplete || n <= k || n > h.Len {
				t.Fatalf("prefix %d of %d: %v need %d", k, h.Len, r, n)
			}
		}
	})
}

func FuzzHTTPRequest(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
	f.Add([]byte("CONNECT a.b:443 HTTP/1.1\r\nHost: a.b:443\r\n\r\n"))
	f.Add([]byte("GET http://u@a.b:8080/x HTTP/1.0\nhost:a.b\n\n"))
	f.Add([]byte("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n"))
	f.Add([]byte("POST /very/long"))
	f.Add(realHTTPEmotet)
	f.Add(realHTTPAppleTV)
	f.Fuzz(func(t *testing.T, b []byte) {
		var req HTTPRequest
		if !ParseHTTPRequest(b, &req) {
			if httpGot(&req) != (httpWant{"<nil>", "<nil>", "<nil>", "<nil>", "<nil>", false}) {
				t.Fatalf("not ok but %+v", req)
			}
			return
		}
		if !knownMethod(req.Method) || len(req.Target) == 0 {
			t.Fatalf("method %q target %q", req.Method, req.Target)
		}
		for _, s := range [][]byte{req.Method, req.Target, req.Version, req.Host, req.ProxyTarget} {
			if len(s) > 0 && !aliases(s, b) || cap(s) != len(s) {
				t.Fatalf("%q does not alias the input with cap == len", s)
			}
		}
		if bytes.ContainsAny(req.Target, " \r\n\x00") || !validFieldValue(req.Host) {
			t.Fatalf("target %q host %q", req.Target, req.Host)
		}
		if len(req.Host) > 0 && (req.Host[0] == ' ' || req.Host[len(req.Host)-1] == ' ') {
			t.Fatalf("host %q not trimmed", req.Host)
		}
		if req.Version == nil && (req.Host != nil || req.ProxyTarget != nil || req.Complete) {
			t.Fatalf("cut request line but %+v", req)
		}
		if req.Version != nil && (len(req.Version) != 8 || !bytes.HasPrefix(req.Version, []byte("HTTP/1."))) {
			t.Fatalf("version %q", req.Version)
		}
	})
}
