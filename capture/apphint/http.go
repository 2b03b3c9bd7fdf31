package apphint

import "bytes"

// HTTPRequest is the start of an HTTP/1.x request as parsed by
// [ParseHTTPRequest]. All slices alias the parsed input.
type HTTPRequest struct {
	Method []byte
	// Target is the request-target as sent. When the request line is cut
	// off by the end of the input, it is the part that was there.
	Target []byte
	// Version is "HTTP/1.0", "HTTP/1.1", ... or nil when the input ends
	// before the version does.
	Version []byte
	// Host is the value of the first Host header, without surrounding
	// spaces and with any port kept. It is nil when no complete Host header
	// line is within the input or when the first one holds control bytes
	// (later Host lines are never used: servers reject such requests), and
	// empty (not nil) when the value is empty.
	Host []byte
	// ProxyTarget is host[:port] of the real destination when the request is
	// aimed at an explicit proxy: the authority of a CONNECT, or the
	// authority (minus any userinfo) of an absolute-URI target
	// ("http://a.b:8080/x" gives "a.b:8080"). Otherwise, and when the
	// input ends before the version, it is nil.
	ProxyTarget []byte
	// Complete reports that the empty line ending the header section was
	// within the input, so Host is final.
	Complete bool
}

const maxMethodLen = len("BASELINE-CONTROL")

// ParseHTTPRequest parses the start of a client's first segment into req.
//
// ok is false when b does not begin with a plausible HTTP/1.x request line: a
// known method (RFC 9110, WebDAV and its relatives, SSDP's M-SEARCH and
// NOTIFY, PURGE), one space, a request-target in origin, absolute, authority
// (CONNECT only) or asterisk form without control bytes, one space,
// "HTTP/1." and a digit, then CRLF or LF. A request line cut off by the end of
// b is accepted as far as it goes (see HTTPRequest.Target and Version), so
// that a long URL spanning segments is still recognised.
//
// Header lines are scanned only within b; a line cut off by the end of b is
// ignored. The Host header name is matched case-insensitively and obsolete
// line folding is not unfolded. req is reset on every call and its slices
// alias b. ParseHTTPRequest does not allocate.
func ParseHTTPRequest(b []byte, req *HTTPRequest) (ok bool) {
	*req = HTTPRequest{}
	sp := bytes.IndexByte(b[:min(len(b), maxMethodLen+1)], ' ')
	if sp <= 0 || !knownMethod(b[:sp]) {
		return false
	}
	method := b[:sp:sp]
	rest := b[sp+1:]

	n := 0
	for n < len(rest) && rest[n] != ' ' {
		if c := rest[n]; c < '!' || c == 0x7f {
			return false
		}
		n++
	}
	connect := string(method) == "CONNECT"
	if n == 0 || !plausibleTarget(rest[:n], connect, n == len(rest)) {
		return false
	}
	target := rest[:n:n]
	if n == len(rest) {
		req.Method, req.Target = method, target
		return true
	}
	line := rest[n+1:]

	const proto = "HTTP/1."
	vlen := len(proto) + 1
	if len(line) < vlen {
		if !bytes.HasPrefix([]byte(proto), line) {
			return false
		}
		req.Method, req.Target = method, target
		return true
	}
	if !bytes.HasPrefix(line, []byte(proto)) || line[vlen-1] < '0' || line[vlen-1] > '9' {
		return false
	}
	version := line[:vlen:vlen]
	p := sp + 1 + n + 1 + vlen // offset in b just past the version
	switch {
	case p < len(b) && b[p] == '\n':
		p++
	case p+1 < len(b) && b[p] == '\r' && b[p+1] == '\n':
		p += 2
	case p == len(b), p+1 == len(b) && b[p] == '\r':
		// Cut off before the end of the line.
	default:
		return false
	}

	req.Method, req.Target, req.Version = method, target, version
	if connect {
		req.ProxyTarget = target
	} else {
		req.ProxyTarget = absoluteAuthority(target)
	}
	req.Host, req.Complete = scanHost(b, p)
	return true
}

// scanHost scans the header lines of b starting at p for the first Host
// header and reports whether the end of the header section was seen.
func scanHost(b []byte, p int) (host []byte, complete bool) {
	seen := false // only the first Host line counts, valid or not
	if p > len(b) {
		return nil, false
	}
	for {
		lf := bytes.IndexByte(b[p:], '\n')
		if lf < 0 {
			return host, false
		}
		line := b[p : p+lf]
		p += lf + 1
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			return host, true
		}
		if seen || len(line) < 5 || line[4] != ':' || !hostName(line[:4]) {
			continue
		}
		seen = true
		v := line[5:]
		i, j := 0, len(v)
		for i < j && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		for j > i && (v[j-1] == ' ' || v[j-1] == '\t') {
			j--
		}
		if validFieldValue(v[i:j]) {
			host = v[i:j:j]
		}
	}
}

// validFieldValue reports whether v has no control bytes other than HTAB
// (RFC 9110 5.5); a bare CR in particular is a request-smuggling staple.
func validFieldValue(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// hostName reports whether name is "Host" in any case.
func hostName(name []byte) bool {
	return name[0]|0x20 == 'h' && name[1]|0x20 == 'o' && name[2]|0x20 == 's' && name[3]|0x20 == 't'
}

func knownMethod(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
		// WebDAV (RFC 4918) and friends (RFC 3253, 3648, 3744, 4437, 4791, 5323, 5842)
		"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK",
		"SEARCH", "REPORT", "MKACTIVITY", "CHECKOUT", "CHECKIN", "UNCHECKOUT",
		"MERGE", "MKCALENDAR", "ACL", "BIND", "UNBIND", "REBIND", "LINK", "UNLINK",
		"VERSION-CONTROL", "MKWORKSPACE", "UPDATE", "LABEL", "BASELINE-CONTROL",
		"ORDERPATCH", "MKREDIRECTREF", "UPDATEREDIRECTREF",
		// SSDP / GENA over HTTPU, cache purges
		"M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PURGE":
		return true
	}
	return false
}

// plausibleTarget checks the form of the request-target (RFC 9112 3.2); when
// cut, t may be only a prefix of it.
func plausibleTarget(t []byte, connect, cut bool) bool {
	switch {
	case connect:
		return t[0] != '/' // authority-form
	case t[0] == '/':
		return true
	case t[0] == '*':
		return len(t) == 1
	}
	// absolute-form: scheme "://" ...; a cut-off scheme is accepted.
	for i, c := range t {
		switch {
		case 'a' <= c|0x20 && c|0x20 <= 'z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			rest := t[i+1:]
			return bytes.HasPrefix(rest, []byte("//")) || cut && bytes.HasPrefix([]byte("//"), rest)
		default:
			return false
		}
	}
	return cut
}

// absoluteAuthority returns host[:port] of an absolute-form target, or nil.
func absoluteAuthority(t []byte) []byte {
	i := bytes.Index(t, []byte("://"))
	if i <= 0 || t[0] == '/' {
		return nil
	}
	a := t[i+3:]
	if j := bytes.IndexAny(a, "/?#"); j >= 0 {
		a = a[:j]
	}
	if j := bytes.LastIndexByte(a, '@'); j >= 0 {
		a = a[j+1:]
	}
	if len(a) == 0 {
		return nil
	}
	return a[:len(a):len(a)]
}
