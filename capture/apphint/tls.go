package apphint

import "encoding/binary"

// HelloResult says what [ClientHelloSNI] or [Hello.Parse] found.
type HelloResult uint8

const (
	// HelloNotTLS: the bytes are not the start of a TLS handshake carrying a
	// well-formed ClientHello. This includes SSL 2.0-compatible hellos,
	// handshake messages other than ClientHello, records or ClientHellos
	// claiming more than the TLS limits (2^14-byte records, MaxHelloLen), and
	// ClientHellos whose inner lengths do not add up.
	HelloNotTLS HelloResult = iota
	// HelloIncomplete: the bytes are a plausible prefix of a ClientHello;
	// need says how many bytes to gather before calling again.
	HelloIncomplete
	// HelloNoSNI: a complete ClientHello without a server_name host name.
	HelloNoSNI
	// HelloFound: a complete ClientHello with a hostname-like server name.
	HelloFound
	// HelloBadSNI: a complete ClientHello whose server name is empty, longer
	// than 255 bytes or contains bytes other than ASCII letters, digits, '-',
	// '_' and '.' (or has empty labels). The raw name, cut to 255 bytes, is
	// still returned so it can be logged (escape it first).
	HelloBadSNI
)

func (r HelloResult) String() string {
	switch r {
	case HelloNotTLS:
		return "not-tls"
	case HelloIncomplete:
		return "incomplete"
	case HelloNoSNI:
		return "no-sni"
	case HelloFound:
		return "found"
	case HelloBadSNI:
		return "bad-sni"
	}
	return "invalid"
}

// MaxHelloLen is the largest ClientHello body accepted. Real ClientHellos,
// even with post-quantum key shares, are a few KiB; a larger claim is treated
// as not TLS so that callers never buffer more than about this much.
const MaxHelloLen = 1 << 14

const (
	recordHeaderLen    = 5
	maxRecordLen       = 1 << 14 // RFC 8446 5.1 TLSPlaintext.length
	handshakeHeaderLen = 4
	// minHelloBody: version, random, empty session id, one cipher suite,
	// one compression method.
	minHelloBody = 2 + 32 + 1 + 2 + 2 + 1 + 1

	extServerName        = 0
	extALPN              = 16
	extSupportedVersions = 43
)

// Hello is what [Hello.Parse] extracts from a TLS ClientHello. Reuse one value
// per goroutine; it embeds the buffers for names split across records.
type Hello struct {
	// Version is the ClientHello legacy_version (0x0303 for TLS 1.2 and 1.3).
	Version uint16
	// MaxVersion is the highest version listed in supported_versions,
	// ignoring GREASE values (0x0304 for TLS 1.3), or Version when the
	// extension is absent.
	MaxVersion uint16
	// SNI is the first host_name of the server_name extension, exactly as
	// sent (not lower-cased); see HelloFound and HelloBadSNI.
	SNI []byte
	// ALPN is the first protocol of the ALPN extension, e.g. "h2".
	ALPN []byte
	// Records is how many TLS records carried the ClientHello. Clients send
	// one; more is a known trick to evade DPI.
	Records int
	// Len is how many bytes of the input those records take.
	Len int

	sniBuf  [255]byte
	alpnBuf [255]byte
}

// helloInfo is the result of parseHello, kept free of pointers into the
// output buffers so that ClientHelloSNI's buffers stay on its stack.
type helloInfo struct {
	version, maxVersion uint16
	sniOff, sniLen      int // offset in b, or in sniBuf when sniCopied
	sniCopied, hasSNI   bool
	sniBad              bool // empty or longer than 255 bytes
	alpnOff, alpnLen    int
	alpnCopied          bool
	records, end        int
}

// Parse looks for a TLS handshake record carrying a ClientHello at the start
// of b, which may be the concatenation of a client's first TCP segments and may
// continue past the ClientHello. The ClientHello may span several records.
//
// For HelloIncomplete, need is the number of bytes of b required before
// calling again. It is exact once the headers of the records carrying the
// ClientHello are within b (always, for the usual single record) and a lower
// bound otherwise; it never exceeds the true length. For other results need
// is 0.
//
// SNI and ALPN alias b, except that a value split across records is copied into
// h's own buffers; either way they are valid until b is modified or h is
// reused. Fields are reset on every call; after HelloNotTLS and
// HelloIncomplete they are zero. Parse does not allocate.
func (h *Hello) Parse(b []byte) (res HelloResult, need int) {
	var info helloInfo
	res, need = parseHello(b, &info, &h.sniBuf, &h.alpnBuf)
	if res < HelloNoSNI {
		info = helloInfo{}
	}
	h.Version, h.MaxVersion = info.version, info.maxVersion
	h.Records, h.Len = info.records, info.end
	h.SNI, h.ALPN = nil, nil
	if info.hasSNI {
		if info.sniCopied {
			h.SNI = h.sniBuf[:info.sniLen:info.sniLen]
		} else {
			h.SNI = b[info.sniOff : info.sniOff+info.sniLen : info.sniOff+info.sniLen]
		}
	}
	if info.alpnLen > 0 {
		if info.alpnCopied {
			h.ALPN = h.alpnBuf[:info.alpnLen:info.alpnLen]
		} else {
			h.ALPN = b[info.alpnOff : info.alpnOff+info.alpnLen : info.alpnOff+info.alpnLen]
		}
	}
	return res, need
}

// ClientHelloSNI is [Hello.Parse] reduced to the server name: sni is set for
// HelloFound and HelloBadSNI and aliases b. Only when the name is split across
// TLS records (rare, and then usually deliberate) is sni a fresh copy, the one
// case in which ClientHelloSNI allocates.
func ClientHelloSNI(b []byte) (sni []byte, res HelloResult, need int) {
	var info helloInfo
	var sniBuf, alpnBuf [255]byte
	res, need = parseHello(b, &info, &sniBuf, &alpnBuf)
	if res != HelloFound && res != HelloBadSNI {
		return nil, res, need
	}
	if info.sniCopied {
		return append([]byte(nil), sniBuf[:info.sniLen]...), res, need
	}
	return b[info.sniOff : info.sniOff+info.sniLen : info.sniOff+info.sniLen], res, need
}

// parseHello frames the records first, so that need can be reported before
// anything is decoded, then decodes the ClientHello body across them.
func parseHello(b []byte, info *helloInfo, sniBuf, alpnBuf *[255]byte) (HelloResult, int) {
	msgLen, records, end, res, need := frameHello(b)
	if res != HelloFound {
		return res, need
	}
	info.records, info.end = records, end

	r := hsReader{b: b, pos: recordHeaderLen, recEnd: recordHeaderLen + int(binary.BigEndian.Uint16(b[3:])), left: msgLen}
	if !r.skip(handshakeHeaderLen) {
		return HelloNotTLS, 0
	}
	version, ok := r.u16()
	if !ok || version>>8 != 3 {
		return HelloNotTLS, 0
	}
	info.version, info.maxVersion = uint16(version), uint16(version)
	if !r.skip(32) { // random
		return HelloNotTLS, 0
	}
	if n, ok := r.u8(); !ok || n > 32 || !r.skip(n) { // legacy_session_id
		return HelloNotTLS, 0
	}
	if n, ok := r.u16(); !ok || n < 2 || n%2 != 0 || !r.skip(n) { // cipher_suites
		return HelloNotTLS, 0
	}
	if n, ok := r.u8(); !ok || n < 1 || !r.skip(n) { // compression_methods
		return HelloNotTLS, 0
	}
	if r.left == 0 { // no extensions (SSL 3.0 style)
		return HelloNoSNI, 0
	}
	if n, ok := r.u16(); !ok || n != r.left {
		return HelloNotTLS, 0
	}
	for r.left > 0 {
		var typ, n int
		if p := r.pos; r.left >= 4 && p+4 <= r.recEnd {
			// Both fields in the current record, as nearly always.
			h := binary.BigEndian.Uint32(r.b[p : p+4])
			typ, n = int(h>>16), int(h&0xffff)
			r.pos, r.left = p+4, r.left-4
		} else {
			var ok1, ok2 bool
			typ, ok1 = r.u16()
			n, ok2 = r.u16()
			if !ok1 || !ok2 {
				return HelloNotTLS, 0
			}
		}
		if n > r.left {
			return HelloNotTLS, 0
		}
		// Confine reads to this extension; after it, skip what is left of it.
		outer := r.left - n
		r.left = n
		ok := true
		switch typ {
		case extServerName:
			if !info.hasSNI {
				ok = serverName(&r, info, sniBuf)
			}
		case extALPN:
			if info.alpnLen == 0 {
				ok = alpn(&r, info, alpnBuf)
			}
		case extSupportedVersions:
			ok = supportedVersions(&r, info)
		}
		if !ok {
			return HelloNotTLS, 0
		}
		if rest := r.left; rest <= r.recEnd-r.pos {
			r.pos += rest // what skip(rest) does in this case
		} else if !r.skip(rest) {
			return HelloNotTLS, 0
		}
		r.left = outer
	}
	if !info.hasSNI {
		return HelloNoSNI, 0
	}
	var sni []byte
	if info.sniCopied {
		sni = sniBuf[:info.sniLen]
	} else {
		sni = b[info.sniOff : info.sniOff+info.sniLen]
	}
	if info.sniBad || !hostnameLike(sni) {
		return HelloBadSNI, 0
	}
	return HelloFound, 0
}

// frameHello walks the handshake records at the start of b until they hold the
// whole ClientHello. It returns HelloFound when they do, with the handshake
// message length (header included), the number of records and the bytes of b
// they take.
func frameHello(b []byte) (msgLen, records, end int, res HelloResult, need int) {
	var hdr [handshakeHeaderLen]byte
	pos, have, want := 0, 0, -1 // want is the message length once its header is known
	for {
		if len(b)-pos < recordHeaderLen {
			if !recordHeaderPrefix(b[pos:]) {
				return 0, 0, 0, HelloNotTLS, 0
			}
			return 0, 0, 0, HelloIncomplete, pos + recordHeaderLen + stillNeeded(want, have)
		}
		if !recordHeaderPrefix(b[pos : pos+recordHeaderLen]) {
			return 0, 0, 0, HelloNotTLS, 0
		}
		n := int(binary.BigEndian.Uint16(b[pos+3:]))
		if n > maxRecordLen {
			return 0, 0, 0, HelloNotTLS, 0
		}
		records++
		payEnd := pos + recordHeaderLen + n
		got := min(payEnd, len(b)) - pos - recordHeaderLen
		// The 4-byte handshake header may itself be split across records.
		for i := 0; have+i < handshakeHeaderLen && i < got; i++ {
			hdr[have+i] = b[pos+recordHeaderLen+i]
		}
		have += got
		if have > 0 && hdr[0] != 1 { // client_hello
			return 0, 0, 0, HelloNotTLS, 0
		}
		if want < 0 && have >= handshakeHeaderLen {
			l := int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
			if l < minHelloBody || l > MaxHelloLen {
				return 0, 0, 0, HelloNotTLS, 0
			}
			want = handshakeHeaderLen + l
		}
		if payEnd > len(b) {
			need = payEnd
			if more := stillNeeded(want, have+payEnd-len(b)); more > 0 {
				need += recordHeaderLen + more
			}
			return 0, 0, 0, HelloIncomplete, need
		}
		pos = payEnd
		if want >= 0 && have >= want {
			return want, records, pos, HelloFound, 0
		}
	}
}

// recordHeaderPrefix reports whether p is a prefix of a TLS handshake record
// header: content type 22, version 3.0 to 3.4. SSL 2.0 hellos start with a
// byte with the high bit set and fail here.
func recordHeaderPrefix(p []byte) bool {
	return (len(p) < 1 || p[0] == 22) && (len(p) < 2 || p[1] == 3) && (len(p) < 3 || p[2] <= 4)
}

// stillNeeded is a lower bound on the handshake bytes still missing.
func stillNeeded(want, have int) int {
	if want < 0 {
		want = handshakeHeaderLen + minHelloBody
	}
	return max(want-have, 0)
}

// serverName reads a server_name extension (RFC 6066 3).
func serverName(r *hsReader, info *helloInfo, buf *[255]byte) bool {
	n, ok := r.u16()
	if !ok || n != r.left || n == 0 {
		return false
	}
	for r.left > 0 {
		typ, ok1 := r.u8()
		n, ok2 := r.u16()
		if !ok1 || !ok2 || n > r.left {
			return false
		}
		if typ != 0 || info.hasSNI { // not host_name, or not the first
			if !r.skip(n) {
				return false
			}
			continue
		}
		info.hasSNI = true
		info.sniBad = n == 0 || n > len(buf)
		take := min(n, len(buf))
		info.sniOff, info.sniCopied, ok = r.bytes(take, buf[:])
		info.sniLen = take
		if !ok || !r.skip(n-take) {
			return false
		}
	}
	return true
}

// alpn reads the first protocol of an ALPN extension (RFC 7301 3.1).
func alpn(r *hsReader, info *helloInfo, buf *[255]byte) bool {
	n, ok := r.u16()
	if !ok || n != r.left || n < 2 {
		return false
	}
	l, ok := r.u8()
	if !ok || l == 0 || l > r.left {
		return false
	}
	info.alpnOff, info.alpnCopied, ok = r.bytes(l, buf[:])
	info.alpnLen = l
	return ok
}

// supportedVersions reads the ClientHello form of supported_versions (RFC
// 8446 4.2.1).
func supportedVersions(r *hsReader, info *helloInfo) bool {
	n, ok := r.u8()
	if !ok || n != r.left || n < 2 || n%2 != 0 {
		return false
	}
	// When present it overrides legacy_version.
	best := 0
	for r.left > 0 {
		v, _ := r.u16()
		if v&0x0f0f != 0x0a0a && v > best { // skip GREASE (RFC 8701)
			best = v
		}
	}
	if best != 0 {
		info.maxVersion = uint16(best)
	}
	return true
}

// hostnameLike reports whether s looks like a DNS host name: letters, digits,
// '-', '_' and '.', no empty labels except an optional trailing dot.
func hostnameLike(s []byte) bool {
	if len(s) == 0 || s[0] == '.' {
		return false
	}
	prev := byte(0)
	for _, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		case c == '.':
			if prev == '.' {
				return false
			}
		default:
			return false
		}
		prev = c
	}
	return true
}

// hsReader reads a handshake message that may be fragmented over several TLS
// records already validated by frameHello, hopping over record headers.
type hsReader struct {
	b      []byte
	pos    int // offset in b of the next byte
	recEnd int // offset in b where the current record's payload ends
	left   int // bytes left in the current scope (message or extension)
}

// fill moves to the next record when the current one is used up.
func (r *hsReader) fill() bool {
	for r.pos == r.recEnd {
		h := r.recEnd
		if h+recordHeaderLen > len(r.b) {
			return false
		}
		r.pos = h + recordHeaderLen
		r.recEnd = r.pos + int(binary.BigEndian.Uint16(r.b[h+3:]))
		if r.recEnd > len(r.b) {
			return false
		}
	}
	return true
}

// u8 reads one byte.
func (r *hsReader) u8() (int, bool) {
	if r.left < 1 || r.pos >= r.recEnd && !r.fill() {
		return 0, false
	}
	v := r.b[r.pos]
	r.pos++
	r.left--
	return int(v), true
}

// u16 reads a big-endian 16-bit value, directly when both bytes lie in the
// current record and scope.
func (r *hsReader) u16() (int, bool) {
	if p := r.pos; r.left >= 2 && p+2 <= r.recEnd {
		v := int(r.b[p])<<8 | int(r.b[p+1])
		r.pos = p + 2
		r.left -= 2
		return v, true
	}
	hi, ok1 := r.u8()
	lo, ok2 := r.u8()
	return hi<<8 | lo, ok1 && ok2
}

// skip consumes n bytes, directly when they lie in the current record.
func (r *hsReader) skip(n int) bool {
	if n < 0 || n > r.left {
		return false
	}
	r.left -= n
	if n <= r.recEnd-r.pos {
		r.pos += n
		return true
	}
	for n > 0 {
		if !r.fill() {
			return false
		}
		k := min(n, r.recEnd-r.pos)
		r.pos += k
		n -= k
	}
	return true
}

// bytes consumes n bytes. When they lie within one record it returns their
// offset in b; otherwise it copies them into buf and reports copied.
func (r *hsReader) bytes(n int, buf []byte) (off int, copied, ok bool) {
	if n < 0 || n > r.left || n > len(buf) {
		return 0, false, false
	}
	if n == 0 {
		return r.pos, false, true
	}
	if !r.fill() {
		return 0, false, false
	}
	if r.pos+n <= r.recEnd {
		off = r.pos
		return off, false, r.skip(n)
	}
	for i := range buf[:n] {
		c, ok := r.u8()
		if !ok {
			return 0, false, false
		}
		buf[i] = byte(c)
	}
	return 0, true, true
}
