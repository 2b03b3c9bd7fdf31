package apphint

import (
	"fmt"
	"strings"
	"testing"
)

type httpWant struct {
	method, target, version, host, proxy string // "<nil>" for nil
	complete                             bool
}

func httpGot(r *HTTPRequest) httpWant {
	return httpWant{str(r.Method), str(r.Target), str(r.Version), str(r.Host), str(r.ProxyTarget), r.Complete}
}

func TestParseHTTPRequest(t *testing.T) {
	const none = "<nil>"
	get := func(target, host string) httpWant {
		return httpWant{"GET", target, "HTTP/1.1", host, none, true}
	}
	tests := []struct {
		name string
		in   string
		want httpWant // zero value: ok must be false
	}{
		{"simple", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", get("/", "example.com")},
		{"host case and spaces", "GET /a?b=c HTTP/1.1\r\nUser-Agent: x\r\nhOsT: \t a.b:8080 \t\r\nAccept: */*\r\n\r\nbody", get("/a?b=c", "a.b:8080")},
		{"first Host wins", "GET / HTTP/1.1\r\nHost: one\r\nHost: two\r\n\r\n", get("/", "one")},
		{"bare CR in Host", "GET * HTTP/1.0\nHost:\r0\n", httpWant{"GET", "*", "HTTP/1.0", none, none, false}}, // fuzz regression
		{"control byte in first Host", "GET / HTTP/1.1\r\nHost: a\x00b\r\nHost: two\r\n\r\n", get("/", none)},
		{"tab inside Host", "GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n", get("/", "a\tb")},
		{"bare LF", "GET / HTTP/1.0\nHost: lf.test\n\n", httpWant{"GET", "/", "HTTP/1.0", "lf.test", none, true}},
		{"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", get("/", "")},
		{"no Host", "GET / HTTP/1.0\r\nAccept: */*\r\n\r\n", httpWant{"GET", "/", "HTTP/1.0", none, none, true}},
		{"Host cut off", "GET / HTTP/1.1\r\nAccept: */*\r\nHost: exam", httpWant{"GET", "/", "HTTP/1.1", none, none, false}},
		{"Host line without LF", "GET / HTTP/1.1\r\nHost: example.com\r", httpWant{"GET", "/", "HTTP/1.1", none, none, false}},
		{"Host then cut", "GET / HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n", httpWant{"GET", "/", "HTTP/1.1", "h", none, false}},
		{"headers only line", "GET / HTTP/1.1\r\n", httpWant{"GET", "/", "HTTP/1.1", none, none, false}},
		{"line cut before CRLF", "GET / HTTP/1.1", httpWant{"GET", "/", "HTTP/1.1", none, none, false}},
		{"line cut in CRLF", "GET / HTTP/1.1\r", httpWant{"GET", "/", "HTTP/1.1", none, none, false}},
		{"line cut in version", "POST /upload HTT", httpWant{"POST", "/upload", none, none, none, false}},
		{"line cut after target", "GET /x ", httpWant{"GET", "/x", none, none, none, false}},
		{"line cut in target", "GET /very/long/path?with=query", httpWant{"GET", "/very/long/path?with=query", none, none, none, false}},
		{"cut in absolute scheme", "GET htt", httpWant{"GET", "htt", none, none, none, false}},
		{"cut in absolute authority", "GET http://a.b", httpWant{"GET", "http://a.b", none, none, none, false}},
		{"cut after scheme colon", "GET http:/", httpWant{"GET", "http:/", none, none, none, false}},
		{"not Host", "GET / HTTP/1.1\r\nX-Host: a\r\nHost : b\r\nHostname: c\r\n\r\n", get("/", none)},
		{"folded line not a header", "GET / HTTP/1.1\r\nX: y\r\n Host: folded\r\nHost: real\r\n\r\n", get("/", "real")},
		{"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", httpWant{"CONNECT", "example.com:443", "HTTP/1.1", "example.com:443", "example.com:443", true}},
		{"absolute URI", "GET http://a.b:8080/x?y=http://c HTTP/1.1\r\nHost: a.b:8080\r\n\r\n", httpWant{"GET", "http://a.b:8080/x?y=http://c", "HTTP/1.1", "a.b:8080", "a.b:8080", true}},
		{"absolute URI without path", "GET http://a.b HTTP/1.0\r\n\r\n", httpWant{"GET", "http://a.b", "HTTP/1.0", none, "a.b", true}},
		{"absolute URI with userinfo", "GET ftp://user:p@ss@files.test/f HTTP/1.1\r\n\r\n", httpWant{"GET", "ftp://user:p@ss@files.test/f", "HTTP/1.1", none, "files.test", true}},
		{"absolute URI with query only", "GET https://q.test?x HTTP/1.1\r\n\r\n", httpWant{"GET", "https://q.test?x", "HTTP/1.1", none, "q.test", true}},
		{"absolute URI empty authority", "GET http:///x HTTP/1.1\r\n\r\n", httpWant{"GET", "http:///x", "HTTP/1.1", none, none, true}},
		{"URL in query of origin form", "GET /r?u=http://evil.test/ HTTP/1.1\r\n\r\n", httpWant{"GET", "/r?u=http://evil.test/", "HTTP/1.1", none, none, true}},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", httpWant{"OPTIONS", "*", "HTTP/1.1", "h", none, true}},
		{"SSDP", "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n\r\n", httpWant{"M-SEARCH", "*", "HTTP/1.1", "239.255.255.250:1900", none, true}},
		{"PROPFIND", "PROPFIND /dav/ HTTP/1.1\r\nHost: dav\r\nDepth: 1\r\n\r\n", httpWant{"PROPFIND", "/dav/", "HTTP/1.1", "dav", none, true}},
		{"BASELINE-CONTROL", "BASELINE-CONTROL /x HTTP/1.1\r\n\r\n", httpWant{"BASELINE-CONTROL", "/x", "HTTP/1.1", none, none, true}},
		{"UTF-8 in target", "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", httpWant{"GET", "/caf\xc3\xa9", "HTTP/1.1", none, none, true}},
		{"real Emotet", string(realHTTPEmotet), get("/cgi-bin/Ui4n/", "hangarlastik.com")},
		{"real AppleTV", string(realHTTPAppleTV), get("/WebObjects/MZStore.woa/wa/viewGrouping?id=39", "ax.itunes.apple.com")},

		{"empty", "", httpWant{}},
		{"method only", "GET", httpWant{}},
		{"method and space", "GET ", httpWant{}},
		{"lower-case method", "get / HTTP/1.1\r\n\r\n", httpWant{}},
		{"unknown method", "FETCH / HTTP/1.1\r\n\r\n", httpWant{}},
		{"PRI (HTTP/2 preface)", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", httpWant{}},
		{"method too long", "BASELINE-CONTROLX / HTTP/1.1\r\n\r\n", httpWant{}},
		{"leading space", " GET / HTTP/1.1\r\n\r\n", httpWant{}},
		{"double space", "GET  / HTTP/1.1\r\n\r\n", httpWant{}},
		{"HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", httpWant{}},
		{"HTTP/1.x", "GET / HTTP/1.x\r\n\r\n", httpWant{}},
		{"HTTP/1.10", "GET / HTTP/1.10\r\n\r\n", httpWant{}},
		{"RTSP", "OPTIONS * RTSP/1.0\r\n\r\n", httpWant{}},
		{"lower-case version", "GET / http/1.1\r\n\r\n", httpWant{}},
		{"junk after version", "GET / HTTP/1.1 x\r\n\r\n", httpWant{}},
		{"CR without LF", "GET / HTTP/1.1\rHost: x\r\n\r\n", httpWant{}},
		{"NUL in target", "GET /\x00 HTTP/1.1\r\n\r\n", httpWant{}},
		{"tab in target", "GET /\tx HTTP/1.1\r\n\r\n", httpWant{}},
		{"DEL in target", "GET /\x7f HTTP/1.1\r\n\r\n", httpWant{}},
		{"relative target", "GET index.html HTTP/1.1\r\n\r\n", httpWant{}},
		{"scheme without //", "GET mailto:x HTTP/1.1\r\n\r\n", httpWant{}},
		{"scheme with one /", "GET http:/x HTTP/1.1\r\n\r\n", httpWant{}},
		{"cut relative target", "GET index/a", httpWant{}},
		{"star with more", "OPTIONS *x HTTP/1.1\r\n\r\n", httpWant{}},
		{"CONNECT with path", "CONNECT /x HTTP/1.1\r\n\r\n", httpWant{}},
		{"TLS", string(realHelloDridex), httpWant{}},
		{"SSH", "SSH-2.0-OpenSSH_8.9\r\n", httpWant{}},
		{"HTTP response", "HTTP/1.1 200 OK\r\n\r\n", httpWant{}},
	}
	var req HTTPRequest
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			ok := ParseHTTPRequest(in, &req)
			wantOK := tt.want != (httpWant{})
			if ok != wantOK {
				t.Fatalf("ok = %v, want %v (%+v)", ok, wantOK, httpGot(&req))
			}
			want := tt.want
			if !ok {
				want = httpWant{none, none, none, none, none, false}
			}
			if got := httpGot(&req); got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			for _, s := range [][]byte{req.Method, req.Target, req.Version, req.Host, req.ProxyTarget} {
				if s != nil && (len(s) > 0 && !aliases(s, in) || cap(s) != len(s)) {
					t.Errorf("field %q does not alias the input with cap == len", s)
				}
			}
		})
	}
}

// TestHTTPRequestPrefixes checks every prefix of real requests: no panic, the
// same method, and never a Host other than the full one.
func TestHTTPRequestPrefixes(t *testing.T) {
	for _, in := range [][]byte{realHTTPEmotet, realHTTPAppleTV, []byte("CONNECT a.b:443 HTTP/1.1\r\nHost: a.b:443\r\n\r\n")} {
		var full, req HTTPRequest
		if !ParseHTTPRequest(in, &full) || !full.Complete {
			t.Fatalf("full request not parsed: %+v", httpGot(&full))
		}
		for k := 0; k < len(in); k++ {
			ok := ParseHTTPRequest(in[:k], &req)
			sp := strings.IndexByte(string(in), ' ')
			if ok != (k > sp+1) {
				t.Fatalf("prefix %d: ok = %v", k, ok)
			}
			if !ok {
				continue
			}
			g := httpGot(&req)
			if g.method != str(full.Method) || !strings.HasPrefix(str(full.Target), g.target) ||
				g.host != "<nil>" && g.host != str(full.Host) || g.complete {
				t.Fatalf("prefix %d: %+v, full %+v", k, g, httpGot(&full))
			}
		}
	}
}

func ExampleParseHTTPRequest() {
	var req HTTPRequest
	if ParseHTTPRequest([]byte("GET http://proxy.test:3128/x HTTP/1.1\r\nhost: proxy.test:3128\r\n\r\n"), &req) {
		fmt.Printf("%s %s host=%s proxy=%s complete=%v\n", req.Method, req.Target, req.Host, req.ProxyTarget, req.Complete)
	}
	// Output: GET http://proxy.test:3128/x host=proxy.test:3128 proxy=proxy.test:3128 complete=true
}
