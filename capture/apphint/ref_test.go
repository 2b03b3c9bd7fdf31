package apphint

// The parsers as they were before their fast paths were added, kept
// verbatim (bar renaming) as references that the current ones must match
// on every input; see TestHelloMatchesRef, FuzzHelloMatchesRef and their
// DNS counterparts. They are an oracle for speed work only: a change that
// means to alter what a parser returns changes its reference too.

import (
	"encoding/binary"
	"net/netip"
)

func refParseHello(b []byte, info *helloInfo, sniBuf, alpnBuf *[255]byte) (HelloResult, int) {
	msgLen, records, end, res, need := frameHello(b)
	if res != HelloFound {
		return res, need
	}
	info.records, info.end = records, end

	r := refReader{b: b, pos: recordHeaderLen, recEnd: recordHeaderLen + int(binary.BigEndian.Uint16(b[3:])), left: msgLen}
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
		typ, ok1 := r.u16()
		n, ok2 := r.u16()
		if !ok1 || !ok2 || n > r.left {
			return HelloNotTLS, 0
		}
		// Confine reads to this extension; after it, skip what is left of it.
		outer := r.left - n
		r.left = n
		ok := true
		switch typ {
		case extServerName:
			if !info.hasSNI {
				ok = refServerName(&r, info, sniBuf)
			}
		case extALPN:
			if info.alpnLen == 0 {
				ok = refALPN(&r, info, alpnBuf)
			}
		case extSupportedVersions:
			ok = refSupportedVersions(&r, info)
		}
		if !ok || !r.skip(r.left) {
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

func refServerName(r *refReader, info *helloInfo, buf *[255]byte) bool {
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

func refALPN(r *refReader, info *helloInfo, buf *[255]byte) bool {
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

func refSupportedVersions(r *refReader, info *helloInfo) bool {
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

type refReader struct {
	b      []byte
	pos    int // offset in b of the next byte
	recEnd int // offset in b where the current record's payload ends
	left   int // bytes left in the current scope (message or extension)
}

func (r *refReader) fill() bool {
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

func (r *refReader) u8() (int, bool) {
	if r.left < 1 || !r.fill() {
		return 0, false
	}
	v := r.b[r.pos]
	r.pos++
	r.left--
	return int(v), true
}

func (r *refReader) u16() (int, bool) {
	hi, ok1 := r.u8()
	lo, ok2 := r.u8()
	return hi<<8 | lo, ok1 && ok2
}

func (r *refReader) skip(n int) bool {
	if n < 0 || n > r.left {
		return false
	}
	r.left -= n
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

func (r *refReader) bytes(n int, buf []byte) (off int, copied, ok bool) {
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

// refDNS is DNS with the reference parser.
type refDNS struct{ DNS }

func (d *refDNS) Parse(msg []byte) error {
	d.reset()
	if len(msg) < dnsHeaderLen {
		return d.fail(ErrTruncated, len(msg), "header", "shorter than 12 bytes")
	}
	d.ID = binary.BigEndian.Uint16(msg[0:])
	d.Flags = binary.BigEndian.Uint16(msg[2:])
	d.Response = d.Flags&0x8000 != 0
	d.Opcode = uint8(d.Flags>>11) & 0xf
	d.Rcode = uint8(d.Flags & 0xf)
	d.QDCount = binary.BigEndian.Uint16(msg[4:])
	d.ANCount = binary.BigEndian.Uint16(msg[6:])
	d.NSCount = binary.BigEndian.Uint16(msg[8:])
	d.ARCount = binary.BigEndian.Uint16(msg[10:])

	off := dnsHeaderLen
	var err error
	for i := 0; i < int(d.QDCount); i++ {
		if i == 0 {
			d.QName, off, err = d.name(msg, off, "question name")
		} else {
			off, err = d.skipName(msg, off, "question name")
		}
		if err != nil {
			return err
		}
		if len(msg)-off < 4 {
			return d.fail(ErrTruncated, off, "question", "type and class cut off")
		}
		if i == 0 {
			d.QType = binary.BigEndian.Uint16(msg[off:])
			d.QClass = binary.BigEndian.Uint16(msg[off+2:])
		}
		off += 4
	}

	for i := 0; i < int(d.ANCount); i++ {
		if len(d.Answers) == MaxAnswers {
			d.Omitted = d.ANCount - uint16(i)
			break
		}
		if off, err = d.answer(msg, off); err != nil {
			return err
		}
	}
	return nil
}

func (d *refDNS) answer(msg []byte, off int) (int, error) {
	off, err := d.skipName(msg, off, "answer owner name")
	if err != nil {
		return 0, err
	}
	if len(msg)-off < 10 {
		return 0, d.fail(ErrTruncated, off, "answer", "type, class, TTL or rdata length cut off")
	}
	a := DNSAnswer{
		Type: binary.BigEndian.Uint16(msg[off:]),
		TTL:  binary.BigEndian.Uint32(msg[off+4:]),
	}
	rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
	rd := off + 10
	end := rd + rdlen
	if end > len(msg) {
		return 0, d.fail(ErrTruncated, off+8, "answer", "rdata length runs past end")
	}

	nameAt := -1 // offset of a domain name inside the rdata
	switch a.Type {
	case DNSTypeA:
		if rdlen != 4 {
			return 0, d.fail(ErrMalformed, off+8, "answer", "A rdata length is not 4")
		}
		a.Addr = netip.AddrFrom4([4]byte(msg[rd:end]))
	case DNSTypeAAAA:
		if rdlen != 16 {
			return 0, d.fail(ErrMalformed, off+8, "answer", "AAAA rdata length is not 16")
		}
		a.Addr = netip.AddrFrom16([16]byte(msg[rd:end]))
	case DNSTypeCNAME, DNSTypeNS, DNSTypePTR, DNSTypeDNAME:
		nameAt = rd
	case DNSTypeMX:
		nameAt = rd + 2 // preference
	case DNSTypeSRV:
		nameAt = rd + 6 // priority, weight, port
	case DNSTypeTXT:
		if rdlen > 0 {
			n := int(msg[rd])
			if rd+1+n > end {
				return 0, d.fail(ErrMalformed, rd, "answer", "TXT string runs past rdata")
			}
			// A character-string is at most 255 bytes, well within a slot.
			start := d.used
			d.used += copy(d.names[start:], msg[rd+1:rd+1+n])
			a.Name = d.names[start:d.used:d.used]
		}
	}
	if nameAt >= 0 {
		if nameAt >= end {
			return 0, d.fail(ErrMalformed, off+8, "answer", "rdata too short for its name")
		}
		var next int
		if a.Name, next, err = d.name(msg[:end], nameAt, "answer rdata name"); err != nil {
			if d.err.Kind == ErrTruncated && end < len(msg) {
				// Cut off by rdlength, not by the end of the message.
				d.err.Kind, d.err.Reason = ErrMalformed, "name runs past rdata"
			}
			return 0, err
		}
		if next != end {
			return 0, d.fail(ErrMalformed, next, "answer rdata name", "does not fill rdata")
		}
	}
	d.Answers = append(d.Answers, a)
	return end, nil
}

func (d *refDNS) name(msg []byte, off int, what string) ([]byte, int, error) {
	start := d.used
	buf := d.names[start : start+maxNamePres]
	n := 0
	pos, run, next := off, off, -1
	wire, jumps := 0, 0
	for {
		if pos >= len(msg) {
			return nil, 0, d.fail(ErrTruncated, pos, what, "name runs past end")
		}
		c := int(msg[pos])
		switch {
		case c == 0:
			if next < 0 {
				next = pos + 1
			}
			if n == 0 {
				buf[0] = '.'
				n = 1
			}
			d.used += n
			return d.names[start:d.used:d.used], next, nil
		case c&0xc0 == 0xc0:
			if pos+1 >= len(msg) {
				return nil, 0, d.fail(ErrTruncated, pos, what, "compression pointer cut off")
			}
			ptr := (c&0x3f)<<8 | int(msg[pos+1])
			if ptr >= run {
				return nil, 0, d.fail(ErrMalformed, pos, what, "compression pointer does not point backwards")
			}
			if jumps++; jumps > maxJumps {
				return nil, 0, d.fail(ErrMalformed, pos, what, "too many compression pointers")
			}
			if next < 0 {
				next = pos + 2
			}
			pos, run = ptr, ptr
		case c&0xc0 != 0:
			return nil, 0, d.fail(ErrMalformed, pos, what, "label length over 63 (reserved label type)")
		default:
			if pos+1+c > len(msg) {
				return nil, 0, d.fail(ErrTruncated, pos, what, "label runs past end")
			}
			// +1 for the root label that must still follow.
			if wire += 1 + c; wire+1 > maxNameWire {
				return nil, 0, d.fail(ErrMalformed, pos, what, "name longer than 255 octets")
			}
			if n > 0 {
				buf[n] = '.'
				n++
			}
			label := msg[pos+1 : pos+1+c]
			n = refAppendLabel(buf, n, label)
			pos += 1 + c
		}
	}
}

func (d *refDNS) skipName(msg []byte, off int, what string) (int, error) {
	pos, wire := off, 0
	for {
		if pos >= len(msg) {
			return 0, d.fail(ErrTruncated, pos, what, "name runs past end")
		}
		c := int(msg[pos])
		switch {
		case c == 0:
			return pos + 1, nil
		case c&0xc0 == 0xc0:
			if pos+1 >= len(msg) {
				return 0, d.fail(ErrTruncated, pos, what, "compression pointer cut off")
			}
			if ptr := (c&0x3f)<<8 | int(msg[pos+1]); ptr >= off {
				return 0, d.fail(ErrMalformed, pos, what, "compression pointer does not point backwards")
			}
			return pos + 2, nil
		case c&0xc0 != 0:
			return 0, d.fail(ErrMalformed, pos, what, "label length over 63 (reserved label type)")
		default:
			if pos+1+c > len(msg) {
				return 0, d.fail(ErrTruncated, pos, what, "label runs past end")
			}
			if wire += 1 + c; wire+1 > maxNameWire {
				return 0, d.fail(ErrMalformed, pos, what, "name longer than 255 octets")
			}
			pos += 1 + c
		}
	}
}

func refAppendLabel(buf []byte, n int, label []byte) int {
	for _, c := range label {
		if !nameVerbatim[c] {
			for _, c := range label {
				n = appendNameByte(buf, n, c)
			}
			return n
		}
	}
	return n + copy(buf[n:], label) // the common case
}
