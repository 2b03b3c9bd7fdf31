package synth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Payload bytes that need no structure come from a fixed pseudo-random pool,
// so filling a segment is one copy. The slack past poolSize repeats the start
// of the pool, which lets any read of up to poolSlack bytes at an offset below
// poolSize be a single contiguous copy.
const (
	poolSize  = 1 << 16
	poolSlack = 1 << 14 // larger than the largest segment (maxMSS)
)

type payloadPool [poolSize + poolSlack]byte

func newPayloadPool() *payloadPool {
	p := new(payloadPool)
	r := newRNG(0x5eed_f10e_b0d1_e5)
	for i := 0; i < poolSize; i += 8 {
		binary.LittleEndian.PutUint64(p[i:], r.next())
	}
	copy(p[poolSize:], p[:poolSlack])
	return p
}

// copyAt fills dst with pool bytes starting at stream position pos.
func (p *payloadPool) copyAt(dst []byte, pos int) {
	q := pos & (poolSize - 1)
	copy(dst, p[q:q+len(dst)])
}

// TLS sizes. A ClientHello is always padded to the same length (as browsers
// do), so a conversation's byte counts do not depend on its server name.
const (
	// TLSClientHelloLen is the length of the ClientHello record that starts
	// the originator's first message of an AppTLS conversation.
	TLSClientHelloLen = 5 + 512
	// TLSServerHelloLen is the length of the ServerHello record that starts
	// the responder's first message.
	TLSServerHelloLen = 5 + 122
	// tlsMaxName is the longest server name that fits the padded hello.
	tlsMaxName = 253

	tlsRecChunk = 5 + 16384 // header + maximum plaintext-sized record
)

// appendClientHello appends a TLS 1.3 ClientHello record (offering 1.2 too)
// with the given SNI, padded to TLSClientHelloLen bytes.
func appendClientHello(dst []byte, r *rng, serverName string) []byte {
	start := len(dst)
	dst = append(dst, 0x16, 0x03, 0x01, 0, 0) // record header, length later
	dst = append(dst, 0x01, 0, 0, 0)          // ClientHello, length later
	dst = append(dst, 0x03, 0x03)
	dst = appendRandom(dst, r, 32)
	dst = append(dst, 32)
	dst = appendRandom(dst, r, 32)
	suites := [...]uint16{0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8}
	dst = be16(dst, 2*len(suites))
	for _, s := range suites {
		dst = be16(dst, int(s))
	}
	dst = append(dst, 1, 0) // null compression only
	extStart := len(dst)
	dst = append(dst, 0, 0)
	if serverName != "" {
		dst = be16(dst, 0x0000)
		dst = be16(dst, 5+len(serverName))
		dst = be16(dst, 3+len(serverName))
		dst = append(dst, 0)
		dst = be16(dst, len(serverName))
		dst = append(dst, serverName...)
	}
	dst = append(dst, 0x00, 0x0b, 0, 2, 1, 0)                                     // ec_point_formats
	dst = append(dst, 0x00, 0x0a, 0, 8, 0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18) // supported_groups
	dst = append(dst, 0x00, 0x23, 0, 0)                                           // session_ticket
	dst = append(dst, 0x00, 0x10, 0, 14, 0, 12, 2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1')
	sigs := [...]uint16{0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601}
	dst = be16(dst, 0x000d)
	dst = be16(dst, 2+2*len(sigs))
	dst = be16(dst, 2*len(sigs))
	for _, s := range sigs {
		dst = be16(dst, int(s))
	}
	dst = append(dst, 0x00, 0x2b, 0, 5, 4, 0x03, 0x04, 0x03, 0x03) // supported_versions
	dst = append(dst, 0x00, 0x2d, 0, 2, 1, 1)                      // psk_key_exchange_modes
	dst = append(dst, 0x00, 0x33, 0, 38, 0, 36, 0x00, 0x1d, 0, 32) // key_share x25519
	dst = appendRandom(dst, r, 32)
	// padding extension (RFC 7685) up to the fixed length
	padLen := TLSClientHelloLen - (len(dst) - start) - 4
	dst = be16(dst, 0x0015)
	dst = be16(dst, padLen)
	for range padLen {
		dst = append(dst, 0)
	}
	rec := dst[start:]
	binary.BigEndian.PutUint16(rec[3:], uint16(len(rec)-5))
	putBE24(rec[6:], len(rec)-9)
	binary.BigEndian.PutUint16(dst[extStart:], uint16(len(dst)-extStart-2))
	return dst
}

// appendServerHello appends a TLS 1.3 ServerHello record of
// TLSServerHelloLen bytes.
func appendServerHello(dst []byte, r *rng) []byte {
	dst = append(dst, 0x16, 0x03, 0x03, 0, 122)
	dst = append(dst, 0x02, 0, 0, 118)
	dst = append(dst, 0x03, 0x03)
	dst = appendRandom(dst, r, 32)
	dst = append(dst, 32)
	dst = appendRandom(dst, r, 32)
	dst = append(dst, 0x13, 0x01, 0) // TLS_AES_128_GCM_SHA256, no compression
	dst = append(dst, 0, 46)
	dst = append(dst, 0x00, 0x2b, 0, 2, 0x03, 0x04)
	dst = append(dst, 0x00, 0x33, 0, 36, 0x00, 0x1d, 0, 32)
	return appendRandom(dst, r, 32)
}

// fillTLSRecords writes bytes [off, off+len(dst)) of a run of bodyLen bytes
// laid out as TLS application-data records of at most 16 KiB. A remainder too
// short for its own record (1–5 bytes) is absorbed by the record before it,
// which stays within the TLS 1.3 ciphertext limit (2^14+256).
func fillTLSRecords(dst []byte, off, bodyLen int, pool *payloadPool, base int) {
	nFull, rem := bodyLen/tlsRecChunk, bodyLen%tlsRecChunk
	nRec := nFull
	if rem >= 6 {
		nRec++
	}
	for len(dst) > 0 {
		k := min(off/tlsRecChunk, nRec-1)
		start := k * tlsRecChunk
		clen := 16384
		switch {
		case k == nFull:
			clen = rem - 5
		case k == nFull-1 && rem < 6:
			clen += rem
		}
		if r := off - start; r < 5 {
			hdr := [5]byte{23, 3, 3, byte(clen >> 8), byte(clen)}
			c := copy(dst, hdr[r:])
			dst, off = dst[c:], off+c
			continue
		}
		c := min(len(dst), start+5+clen-off)
		pool.copyAt(dst[:c], base+off)
		dst, off = dst[c:], off+c
	}
}

// validTLSBody reports whether n bytes can be laid out as records.
func validTLSBody(n int) bool { return n == 0 || n >= 6 }

// HTTP message layout. Requests are GETs padded to their exact length with a
// longer path, common headers and a cookie, or POSTs with a body when large.
const (
	httpGetMax = 2048
	httpUA     = "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n" +
		"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nAccept-Language: en-US,en;q=0.9\r\nConnection: keep-alive\r\n"
	httpRespHead = "HTTP/1.1 200 OK\r\nServer: nginx\r\nCache-Control: max-age=3600\r\nContent-Type: application/octet-stream\r\nContent-Length: "
	// HTTPMinResponseLen is the shortest responder message AppHTTP can
	// build (a 200 with an empty body).
	HTTPMinResponseLen = len(httpRespHead) + 1 + 4
	httpPostHead       = "POST /upload HTTP/1.1\r\n" // then Host, Content-Type and Content-Length
	pathAlphabet       = "abcdefghijklmnopqrstuvwxyz0123456789"
)

// httpMinRequestLen is the shortest AppHTTP request for a host name.
func httpMinRequestLen(host string) int {
	return len("GET / HTTP/1.1\r\nHost: \r\n\r\n") + len(host)
}

// appendHTTPRequest appends the header of a request of exactly n bytes and
// returns it with the length of the body that follows (pool bytes).
func appendHTTPRequest(dst []byte, n int, host string, r *rng) ([]byte, int) {
	if n > httpGetMax {
		fixed := len(httpPostHead) + len("Host: \r\nContent-Type: application/octet-stream\r\nContent-Length: \r\n\r\n") + len(host)
		body, spaces := contentLength(n - fixed)
		dst = append(dst, httpPostHead...)
		dst = append(dst, "Host: "...)
		dst = append(dst, host...)
		dst = append(dst, "\r\nContent-Type: application/octet-stream\r\nContent-Length: "...)
		for range spaces {
			dst = append(dst, ' ')
		}
		dst = strconv.AppendInt(dst, int64(body), 10)
		return append(dst, "\r\n\r\n"...), body
	}
	extra := n - httpMinRequestLen(host)
	path, ua, cookie := extra, false, 0
	if extra > 24 {
		path, extra = 12, extra-12
		if extra >= len(httpUA) {
			ua, extra = true, extra-len(httpUA)
		}
		if extra >= 15 {
			cookie, extra = extra-14, 0
		}
		path += extra
	}
	dst = append(dst, "GET /"...)
	for i := range path {
		if i == 6 && path > 10 {
			dst = append(dst, '/')
			continue
		}
		dst = append(dst, pathAlphabet[r.intn(len(pathAlphabet))])
	}
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\n"...)
	if ua {
		dst = append(dst, httpUA...)
	}
	if cookie > 0 {
		dst = append(dst, "Cookie: sid="...)
		for range cookie {
			dst = append(dst, pathAlphabet[r.intn(len(pathAlphabet))])
		}
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...), 0
}

// appendHTTPResponse appends the header of a 200 response of exactly n bytes
// and returns it with the length of its body.
func appendHTTPResponse(dst []byte, n int) ([]byte, int) {
	body, spaces := contentLength(n - len(httpRespHead) - 4)
	dst = append(dst, httpRespHead...)
	for range spaces {
		dst = append(dst, ' ')
	}
	dst = strconv.AppendInt(dst, int64(body), 10)
	return append(dst, "\r\n\r\n"...), body
}

// contentLength splits avail bytes between the decimal body length and the
// body: it returns the body length and how many extra spaces (optional
// whitespace before the value) make the sum exact.
func contentLength(avail int) (body, spaces int) {
	for d := 1; ; d++ {
		body = avail - d
		if nd := len(strconv.Itoa(body)); nd <= d {
			return body, d - nd
		}
	}
}

// DNS wire format.

// errDNSName is wrapped by validDNSName.
var errDNSName = errors.New("invalid DNS name")

func validDNSName(name string) error {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("%w %q", errDNSName, name)
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%w %q", errDNSName, name)
		}
	}
	return nil
}

func appendDNSName(dst []byte, name string) []byte {
	name = strings.TrimSuffix(name, ".")
	for name != "" {
		label := name
		if i := strings.IndexByte(name, '.'); i >= 0 {
			label, name = name[:i], name[i+1:]
		} else {
			name = ""
		}
		dst = append(dst, byte(len(label)))
		dst = append(dst, label...)
	}
	return append(dst, 0)
}

// appendDNSQuery appends a recursive A query for name with an EDNS0 OPT
// record, as a stub resolver sends it.
func appendDNSQuery(dst []byte, id uint16, name string) []byte {
	dst = be16(dst, int(id))
	dst = append(dst, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1)
	dst = appendDNSName(dst, name)
	dst = append(dst, 0, 1, 0, 1)
	return appendOPT(dst)
}

// appendDNSResponse appends the answer to appendDNSQuery's query: one A
// record for name, pointing back at the question's name.
func appendDNSResponse(dst []byte, id uint16, name string, ttl uint32, a [4]byte) []byte {
	dst = be16(dst, int(id))
	dst = append(dst, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 1)
	dst = appendDNSName(dst, name)
	dst = append(dst, 0, 1, 0, 1)
	dst = append(dst, 0xc0, 12, 0, 1, 0, 1)
	dst = binary.BigEndian.AppendUint32(dst, ttl)
	dst = append(dst, 0, 4)
	dst = append(dst, a[:]...)
	return appendOPT(dst)
}

func appendOPT(dst []byte) []byte {
	return append(dst, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0) // root, OPT, 1232-byte UDP
}

func dnsQueryLen(name string) int { return 12 + len(strings.TrimSuffix(name, ".")) + 2 + 4 + 11 }

func dnsResponseLen(name string) int { return dnsQueryLen(name) + 16 }

func be16(dst []byte, v int) []byte { return append(dst, byte(v>>8), byte(v)) }

func putBE24(b []byte, v int) { b[0], b[1], b[2] = byte(v>>16), byte(v>>8), byte(v) }

func appendRandom(dst []byte, r *rng, n int) []byte {
	for ; n >= 8; n -= 8 {
		dst = binary.LittleEndian.AppendUint64(dst, r.next())
	}
	for ; n > 0; n-- {
		dst = append(dst, byte(r.next()))
	}
	return dst
}
