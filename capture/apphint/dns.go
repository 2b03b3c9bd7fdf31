package apphint

import (
	"encoding/binary"
	"net/netip"
	"strings"
)

// MaxAnswers is how many records of the answer section [DNS.Parse] decodes.
// Records beyond it are neither decoded nor validated; see [DNS.Omitted].
const MaxAnswers = 16

// DNS record types that Parse looks into.
const (
	DNSTypeA     = 1
	DNSTypeNS    = 2
	DNSTypeCNAME = 5
	DNSTypePTR   = 12
	DNSTypeMX    = 15
	DNSTypeTXT   = 16
	DNSTypeAAAA  = 28
	DNSTypeSRV   = 33
	DNSTypeDNAME = 39
)

const (
	dnsHeaderLen = 12
	maxNameWire  = 255 // RFC 1035 3.1, including length octets and the root label
	// maxNamePres bounds the presentation form of one name: 4 labels of
	// 63+63+63+61 octets, every octet escaped as \DDD, plus 3 dots = 1003.
	maxNamePres = 1024
	// maxJumps bounds compression pointers followed for one name. Pointers
	// must also point strictly before the run of labels they end, which
	// alone rules out loops; the bound caps the work of pointer chains.
	maxJumps = 127
)

// DNSAnswer is one decoded record of the answer section.
type DNSAnswer struct {
	Type uint16
	TTL  uint32
	// Addr is the address of an A or AAAA record, otherwise the zero Addr.
	Addr netip.Addr
	// Name is the target of a CNAME, NS, PTR, DNAME, MX or SRV record in the
	// same presentation form as [DNS.QName], or the first character-string
	// of a TXT record as raw bytes (neither lower-cased nor escaped). It is
	// nil for other types. It aliases the owning DNS value's buffer.
	Name []byte
}

// DNS is a parsed DNS message (RFC 1035 section 4), as carried by UDP or TCP
// port 53, mDNS or LLMNR. Only the header, the first question and the first
// MaxAnswers answer records are decoded.
//
// A DNS value is about 18 KiB because it embeds the buffers that names are
// decoded into; allocate one per goroutine and reuse it so that Parse never
// allocates.
type DNS struct {
	ID       uint16
	Flags    uint16 // the raw flags word (QR, Opcode, AA, TC, RD, RA, Z, AD, CD, Rcode)
	Response bool   // QR bit
	Opcode   uint8
	Rcode    uint8

	// QName is the name of the first question, lower-cased, dotted, without
	// the trailing dot, "." for the root. Octets other than printable ASCII
	// are escaped as \DDD (decimal) and the special characters . \ " ; ( ) @ $
	// inside a label as \c, as dig prints them. It aliases d's buffer and is
	// nil when the message has no question.
	QName  []byte
	QType  uint16
	QClass uint16 // raw, so the mDNS unicast-response bit is kept

	QDCount, ANCount, NSCount, ARCount uint16

	// Answers holds the decoded answer records, at most MaxAnswers. It
	// aliases d's buffer.
	Answers []DNSAnswer
	// Omitted counts answer records announced by ANCount that were not
	// decoded because Answers was full.
	Omitted uint16

	answers [MaxAnswers]DNSAnswer
	names   [(MaxAnswers + 1) * maxNamePres]byte // arena for QName and answer names
	used    int                                  // bytes of names in use
	err     ParseError
}

func (d *DNS) reset() {
	d.ID, d.Flags, d.Response, d.Opcode, d.Rcode = 0, 0, false, 0, 0
	d.QName, d.QType, d.QClass = nil, 0, 0
	d.QDCount, d.ANCount, d.NSCount, d.ARCount = 0, 0, 0, 0
	d.Answers = d.answers[:0]
	d.Omitted = 0
	d.used = 0
}

// fail records the error in d so that returning it does not allocate.
func (d *DNS) fail(kind error, off int, field, reason string) error {
	d.err = ParseError{Kind: kind, Proto: "dns", Field: field, Reason: reason, Offset: off}
	return &d.err
}

// Parse resets d and decodes msg, a DNS message without the TCP length prefix
// (see [TCPDNSMessage]). It does not retain msg: all slices in d point into
// d's own buffers and stay valid until the next Parse.
//
// On failure d keeps whatever was decoded before the problem (the header, often
// QName) and the error wraps [ErrTruncated] or [ErrMalformed]; it is a
// *[ParseError] naming the offending byte offset. The error value is owned by
// d and is overwritten by the next Parse. Parse does not allocate.
func (d *DNS) Parse(msg []byte) error {
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

// answer decodes the resource record at msg[off:] and appends it to d.Answers.
func (d *DNS) answer(msg []byte, off int) (int, error) {
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

// name decodes the possibly compressed name at msg[off:] into d's arena and
// returns it with the offset just past its in-place encoding.
//
// Loops are impossible because a pointer must point strictly before the start
// of the run of labels that ends with it, so successive jump targets strictly
// decrease; maxJumps additionally caps the work.
func (d *DNS) name(msg []byte, off int, what string) ([]byte, int, error) {
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
			if c < 8 && pos+9 <= len(msg) && n+8 <= len(buf) {
				// A short label, read and written as eight octets:
				// what follows it in msg is masked to 'a' for the
				// check and lands in buf past the name, to be
				// overwritten by the rest of it or left outside it.
				x := binary.LittleEndian.Uint64(msg[pos+1:])
				m := uint64(1)<<(8*c) - 1
				if !maybeSpecial8(x&m | 0x6161616161616161&^m) {
					binary.LittleEndian.PutUint64(buf[n:], x)
					n += c
					pos += 1 + c
					continue
				}
			}
			label := msg[pos+1 : pos+1+c]
			n = appendLabel(buf, n, label)
			pos += 1 + c
		}
	}
}

// skipName validates the in-place encoding of the name at msg[off:] without
// following compression pointers and returns the offset just past it.
func (d *DNS) skipName(msg []byte, off int, what string) (int, error) {
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

// nameVerbatim marks the octets that appear as themselves in presentation
// form: printable ASCII except upper case and the special characters.
var nameVerbatim = func() (t [256]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = !('A' <= c && c <= 'Z') && !strings.ContainsRune(`."\;()@$`, c)
	}
	return t
}()

// appendLabel writes the presentation form of a label at buf[n:], which has
// room for 4 bytes per octet, and returns the new length.
func appendLabel(buf []byte, n int, label []byte) int {
	if len(label) >= 8 && len(buf)-n >= len(label) {
		// Eight octets at a time, copying as it goes; the last chunk
		// overlaps the one before. Any chunk that may hold an octet
		// other than a verbatim one sends the whole label to the exact
		// loop below.
		dst := buf[n : n+len(label)]
		i := 0
		for {
			x := binary.LittleEndian.Uint64(label[i:])
			if maybeSpecial8(x) {
				break
			}
			binary.LittleEndian.PutUint64(dst[i:], x)
			if i == len(label)-8 {
				return n + len(label)
			}
			i = min(i+8, len(label)-8)
		}
	}
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

// maybeSpecial8 reports whether any of the eight octets in x may be other
// than verbatim (see nameVerbatim). It answers true for every such octet:
// 0x80 and above, below '-' (which covers the controls, space, '"', '$',
// '(' and ')'), '.', ':' to '\\' (covering ';', '@' and the upper case
// letters) and 0x7f. It also answers true for a few verbatim octets ('!',
// '#' and the like), which only costs the exact check.
func maybeSpecial8(x uint64) bool {
	const (
		lo = 0x0101010101010101
		hi = 0x8080808080808080
	)
	// With no octet at or above 0x80, adding less than 0x80 to each
	// octet carries into no other octet, and subtracting borrows only
	// from octets that are themselves below the subtrahend.
	low := x - lo*'-'          // high bit set where an octet is below '-'
	dot := (x ^ lo*'.') - lo   // ... where an octet is '.'
	ge3a := x + lo*(0x80-':')  // ... where an octet is ':' or above
	ge5d := x + lo*(0x80-0x5d) // ... where an octet is ']' or above
	del := x + lo              // ... where an octet is 0x7f
	return (x|low|dot|(ge3a&^ge5d)|del)&hi != 0
}

// appendNameByte writes the presentation form of one label octet at buf[n:]
// and returns the new length. Each octet takes at most 4 bytes.
func appendNameByte(buf []byte, n int, c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		buf[n] = c + ('a' - 'A')
		return n + 1
	case c == '.', c == '\\', c == '"', c == ';', c == '(', c == ')', c == '@', c == '$':
		buf[n], buf[n+1] = '\\', c
		return n + 2
	case c <= ' ' || c >= 0x7f:
		buf[n], buf[n+1], buf[n+2], buf[n+3] = '\\', '0'+c/100, '0'+c/10%10, '0'+c%10
		return n + 4
	}
	buf[n] = c
	return n + 1
}

// TCPDNSMessage returns the first DNS message of a DNS-over-TCP stream, which
// prefixes every message with its 2-byte length (RFC 1035 4.2.2). msg aliases
// stream. ok is false when stream does not yet hold the whole message.
func TCPDNSMessage(stream []byte) (msg []byte, ok bool) {
	if len(stream) < 2 {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(stream))
	if len(stream)-2 < n {
		return nil, false
	}
	return stream[2 : 2+n : 2+n], true
}
