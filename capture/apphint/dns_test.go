package apphint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// wire builds test messages byte by byte.
type wire []byte

func (w wire) u8(v ...byte) wire { return append(w, v...) }
func (w wire) u16(v ...uint16) wire {
	for _, x := range v {
		w = binary.BigEndian.AppendUint16(w, x)
	}
	return w
}
func (w wire) u32(v uint32) wire { return binary.BigEndian.AppendUint32(w, v) }

// name appends an uncompressed name given as dotted labels ("" for the root).
func (w wire) name(s string) wire {
	if s != "" {
		for _, l := range strings.Split(s, ".") {
			w = append(append(w, byte(len(l))), l...)
		}
	}
	return append(w, 0)
}

// labels appends raw labels followed by either a pointer (ptr >= 0) or the root.
func (w wire) labels(ptr int, ls ...string) wire {
	for _, l := range ls {
		w = append(append(w, byte(len(l))), l...)
	}
	if ptr >= 0 {
		return w.u16(0xc000 | uint16(ptr))
	}
	return append(w, 0)
}

// privateType is an RR type in the private-use range, which Parse does not
// decode; its rdata can hide names for pointers to reach.
const privateType = 0xff00

// rr appends a record owned by the name at ptr with the given rdata.
func (w wire) rr(ptr int, typ uint16, ttl uint32, rdata ...byte) wire {
	return w.u16(0xc000|uint16(ptr), typ, 1).u32(ttl).u16(uint16(len(rdata))).u8(rdata...)
}

func header(id, flags, qd, an, ns, ar uint16) wire {
	return wire(nil).u16(id, flags, qd, an, ns, ar)
}

func query(name string, qtype uint16) []byte {
	return header(0x1234, 0x0100, 1, 0, 0, 0).name(name).u16(qtype, 1)
}

// responseExample: www.Example.COM CNAME web.example.com, A x2, AAAA.
// The question name is at offset 12, "example.com" at 16.
func responseExample() []byte {
	m := header(0xbeef, 0x8180, 1, 4, 0, 0).name("www.Example.COM").u16(DNSTypeA, 1)
	cname := wire(nil).labels(16, "web") // web + ptr to example.com
	m = m.rr(12, DNSTypeCNAME, 300, cname...)
	webAt := len(m) - len(cname)
	m = m.rr(webAt, DNSTypeA, 60, 192, 0, 2, 1)
	m = m.rr(webAt, DNSTypeA, 60, 192, 0, 2, 2)
	m = m.rr(webAt, DNSTypeAAAA, 60, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)
	return m
}

type dnsWant struct {
	id             uint16
	response       bool
	opcode, rcode  uint8
	qname          string // "<nil>" for no question
	qtype, qclass  uint16
	qd, an         uint16
	answers        []string // "type ttl addr-or-name"
	omitted        uint16
	errKind        error
	errOff         int
	errText        string // substring of the error message
	prefixTruncErr bool   // every proper prefix must fail with ErrTruncated
}

func summarize(a DNSAnswer) string {
	s := fmt.Sprintf("%d %d", a.Type, a.TTL)
	if a.Addr.IsValid() {
		s += " " + a.Addr.String()
	}
	if a.Name != nil {
		s += fmt.Sprintf(" %q", a.Name)
	}
	return s
}

func checkDNS(t *testing.T, d *DNS, err error, w dnsWant) {
	t.Helper()
	if w.errKind == nil {
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
	} else {
		var pe *ParseError
		if !errors.Is(err, w.errKind) || !errors.As(err, &pe) {
			t.Fatalf("Parse error = %v, want %v", err, w.errKind)
		}
		if pe.Offset != w.errOff || !strings.Contains(err.Error(), w.errText) {
			t.Errorf("error = %q (offset %d), want offset %d and text %q", err, pe.Offset, w.errOff, w.errText)
		}
	}
	qname := "<nil>"
	if d.QName != nil {
		qname = string(d.QName)
	}
	var answers []string
	for _, a := range d.Answers {
		answers = append(answers, summarize(a))
	}
	got := fmt.Sprintf("id=%#x resp=%v op=%d rc=%d q=%s/%d/%d qd=%d an=%d answers=%q omitted=%d",
		d.ID, d.Response, d.Opcode, d.Rcode, qname, d.QType, d.QClass, d.QDCount, d.ANCount, answers, d.Omitted)
	want := fmt.Sprintf("id=%#x resp=%v op=%d rc=%d q=%s/%d/%d qd=%d an=%d answers=%q omitted=%d",
		w.id, w.response, w.opcode, w.rcode, w.qname, w.qtype, w.qclass, w.qd, w.an, w.answers, w.omitted)
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestDNSParse(t *testing.T) {
	maxLabels := []string{strings.Repeat("a", 63), strings.Repeat("b", 63), strings.Repeat("c", 63), strings.Repeat("d", 61)}
	nonPrint := []string{strings.Repeat("\x00", 63), strings.Repeat("\xff", 63), strings.Repeat(" ", 63), strings.Repeat("\x7f", 61)}
	manyA := header(1, 0x8400, 1, 20, 0, 0).name("many.test").u16(DNSTypeA, 1)
	var manyWant []string
	for i := 0; i < 20; i++ {
		manyA = manyA.rr(12, DNSTypeA, uint32(i), 10, 0, 0, byte(i))
		if i < MaxAnswers {
			manyWant = append(manyWant, fmt.Sprintf("1 %d 10.0.0.%d", i, i))
		}
	}
	// A chain of n pointers, each to the previous one, the first to a root
	// name; following it takes n+1 jumps. It hides in the rdata of a record of a private type (decoded as
	// "65280 0"); a CNAME then points at the last pointer.
	chain := func(n int) []byte {
		m := header(7, 0x8000, 1, 2, 0, 0).name("").u16(DNSTypeNS, 1) // root question at 12..16
		m = m.u16(0xc00c, privateType, 1).u32(0).u16(uint16(1 + 2*n)) // rdata at 29
		m = m.u8(0)
		prev := 29
		for i := 0; i < n; i++ {
			at := len(m)
			m = m.u16(0xc000 | uint16(prev))
			prev = at
		}
		return m.rr(12, DNSTypeCNAME, 1, wire(nil).u16(0xc000|uint16(prev))...)
	}

	tests := []struct {
		name string
		msg  []byte
		want dnsWant
	}{
		{"query", query("www.example.com", DNSTypeA), dnsWant{id: 0x1234, qname: "www.example.com", qtype: 1, qclass: 1, qd: 1, prefixTruncErr: true}},
		{"response with compression", responseExample(), dnsWant{id: 0xbeef, response: true, qname: "www.example.com", qtype: 1, qclass: 1, qd: 1, an: 4,
			answers: []string{`5 300 "web.example.com"`, "1 60 192.0.2.1", "1 60 192.0.2.2", "28 60 2001:db8::1"}, prefixTruncErr: true}},
		{"root", query("", 2), dnsWant{id: 0x1234, qname: ".", qtype: 2, qclass: 1, qd: 1, prefixTruncErr: true}},
		{"escaped bytes", header(1, 0, 1, 0, 0, 0).labels(-1, "A.b", "x y", "\x00\xff\\\"", "@$;()").u16(16, 1),
			dnsWant{id: 1, qname: `a\.b.x\032y.\000\255\\\".\@\$\;\(\)`, qtype: 16, qclass: 1, qd: 1, prefixTruncErr: true}},
		{"255-octet name", header(1, 0, 1, 0, 0, 0).labels(-1, maxLabels...).u16(1, 1),
			dnsWant{id: 1, qname: strings.Join(maxLabels, "."), qtype: 1, qclass: 1, qd: 1, prefixTruncErr: true}},
		{"longest presentation", header(1, 0, 1, 0, 0, 0).labels(-1, nonPrint...).u16(1, 1),
			dnsWant{id: 1, qname: strings.Repeat(`\000`, 63) + "." + strings.Repeat(`\255`, 63) + "." + strings.Repeat(`\032`, 63) + "." + strings.Repeat(`\127`, 61),
				qtype: 1, qclass: 1, qd: 1, prefixTruncErr: true}},
		{"opcode rcode", wire(query("a", 1))[:2:2].u16(0x2803).u8(query("a", 1)[4:]...), dnsWant{id: 0x1234, opcode: 5, rcode: 3, qname: "a", qtype: 1, qclass: 1, qd: 1, prefixTruncErr: true}},
		{"no question (mDNS announcement)", header(0, 0x8400, 0, 1, 0, 0).name("host.local").u16(DNSTypeA, 0x8001).u32(120).u16(4).u8(10, 1, 2, 3),
			dnsWant{response: true, qname: "<nil>", an: 1, answers: []string{"1 120 10.1.2.3"}, prefixTruncErr: true}},
		{"two questions", header(2, 0, 2, 1, 0, 0).name("one.test").u16(1, 1).labels(16, "two").u16(28, 1).rr(12, DNSTypeA, 5, 1, 2, 3, 4),
			dnsWant{id: 2, qname: "one.test", qtype: 1, qclass: 1, qd: 2, an: 1, answers: []string{"1 5 1.2.3.4"}, prefixTruncErr: true}},
		{"TXT MX SRV PTR NS DNAME", header(3, 0x8000, 1, 7, 0, 0).name("x.test").u16(255, 1).
			rr(12, DNSTypeTXT, 1, 5, 'H', 'i', '\x00', 'Q', '!', 2, 'n', 'o').
			rr(12, DNSTypeMX, 2, wire(nil).u16(10).labels(14, "mail")...).
			rr(12, DNSTypeSRV, 3, wire(nil).u16(1, 2, 443).labels(14, "srv")...).
			rr(12, DNSTypePTR, 4, wire(nil).labels(12)...).
			rr(12, DNSTypeNS, 5, wire(nil).name("NS1.Other")...).
			rr(12, DNSTypeDNAME, 6, wire(nil).name("")...).
			rr(12, 6 /* SOA: not decoded */, 7, 1, 2, 3),
			dnsWant{id: 3, response: true, qname: "x.test", qtype: 255, qclass: 1, qd: 1, an: 7, answers: []string{
				"16 1 \"Hi\\x00Q!\"", `15 2 "mail.test"`, `33 3 "srv.test"`, `12 4 "x.test"`, `2 5 "ns1.other"`, `39 6 "."`, "6 7"}, prefixTruncErr: true}},
		{"empty TXT", header(3, 0x8000, 0, 2, 0, 0).u8(0).u16(DNSTypeTXT, 1).u32(1).u16(0).u8(0).u16(DNSTypeTXT, 1).u32(1).u16(1).u8(0),
			dnsWant{id: 3, response: true, qname: "<nil>", an: 2, answers: []string{"16 1", `16 1 ""`}, prefixTruncErr: true}},
		{"more than MaxAnswers", manyA, dnsWant{id: 1, response: true, qname: "many.test", qtype: 1, qclass: 1, qd: 1, an: 20, answers: manyWant, omitted: 4}},
		{"127 jumps", chain(126), dnsWant{id: 7, response: true, qname: ".", qtype: 2, qclass: 1, qd: 1, an: 2, answers: []string{"65280 0", `5 1 "."`}, prefixTruncErr: true}},
		{"pointer into header bytes", header(0x0161, 0, 1, 0, 0, 0).u16(0xc000, 1, 1), dnsWant{id: 0x161, qname: "a", qtype: 1, qclass: 1, qd: 1, prefixTruncErr: true}},

		// Hostile and broken messages.
		{"empty", nil, dnsWant{qname: "<nil>", errKind: ErrTruncated, errOff: 0, errText: "header: shorter than 12 bytes"}},
		{"header only, question missing", header(9, 0, 1, 0, 0, 0), dnsWant{id: 9, qname: "<nil>", qd: 1, errKind: ErrTruncated, errOff: 12, errText: "question name: name runs past end"}},
		{"self pointer", header(9, 0, 1, 0, 0, 0).u16(0xc00c, 1, 1), dnsWant{id: 9, qname: "<nil>", qd: 1, errKind: ErrMalformed, errOff: 12, errText: "compression pointer does not point backwards"}},
		{"forward pointer", header(9, 0, 1, 0, 0, 0).u16(0xc00e).u8(0).u16(1, 1), dnsWant{id: 9, qname: "<nil>", qd: 1, errKind: ErrMalformed, errOff: 12, errText: "does not point backwards"}},
		{"two-name loop", func() []byte {
			// x at 29 points forward to y at 33, which points back to x.
			m := header(9, 0x8000, 1, 2, 0, 0).name("").u16(1, 1)
			m = m.u16(0xc00c, privateType, 1).u32(0).u16(8).labels(33, "x").labels(29, "y")
			return m.rr(12, DNSTypeCNAME, 1, wire(nil).u16(0xc000|29)...)
		}(), dnsWant{id: 9, response: true, qname: ".", qtype: 1, qclass: 1, qd: 1, an: 2, answers: []string{"65280 0"}, errKind: ErrMalformed, errOff: 31, errText: "answer rdata name: compression pointer does not point backwards"}},
		{"pointer to a bad label in the header", header(0x0161, 0x8000, 1, 0, 0, 0).u16(0xc001, 1, 1), dnsWant{id: 0x161, response: true, qname: "<nil>", qd: 1, errKind: ErrMalformed, errOff: 1, errText: "reserved label type"}},
		{"128 jumps", chain(127), dnsWant{id: 7, response: true, qname: ".", qtype: 2, qclass: 1, qd: 1, an: 2, answers: []string{"65280 0"}, errKind: ErrMalformed, errOff: 30, errText: "too many compression pointers"}},
		{"label 64", header(9, 0, 1, 0, 0, 0).u8(64).u8(make([]byte, 64)...).u8(0).u16(1, 1), dnsWant{id: 9, qname: "<nil>", qd: 1, errKind: ErrMalformed, errOff: 12, errText: "label length over 63"}},
		{"label type 10", header(9, 0, 1, 0, 0, 0).u8(0x80, 0).u16(1, 1), dnsWant{id: 9, qname: "<nil>", qd: 1, errKind: ErrMalformed, errOff: 12, errText: "reserved label type"}},
		{"256-octet name", header(9, 0, 1, 0, 0, 0).labels(-1, maxLabels[0], maxLabels[1], maxLabels[2], maxLabels[3]+"d").u16(1, 1),
			dnsWant{id: 9, qname: "<nil>", qd: 1, errKind: ErrMalformed, errOff: 12 + 3*64, errText: "name longer than 255 octets"}},
		{"long name through pointers", func() []byte {
			m := header(9, 0x8000, 1, 1, 0, 0).labels(-1, maxLabels[:3]...).u16(1, 1)   // 193 octets at 12
			return m.rr(12, DNSTypeCNAME, 1, wire(nil).labels(12, maxLabels[3]+"d")...) // 63 + 193 = 256
		}(), dnsWant{id: 9, response: true, qname: strings.Join(maxLabels[:3], "."), qtype: 1, qclass: 1, qd: 1, an: 1, errKind: ErrMalformed, errOff: 12 + 2*64, errText: "answer rdata name: name longer than 255 octets"}},
		{"label past end", header(9, 0, 1, 0, 0, 0).u8(5, 'a', 'b'), dnsWant{id: 9, qname: "<nil>", qd: 1, errKind: ErrTruncated, errOff: 12, errText: "label runs past end"}},
		{"question type cut", header(9, 0, 1, 0, 0, 0).name("a").u8(0, 1, 0), dnsWant{id: 9, qname: "a", qd: 1, errKind: ErrTruncated, errOff: 15, errText: "question: type and class cut off"}},
		{"answers claimed, absent", header(9, 0x8000, 1, 0xffff, 0, 0).name("a").u16(1, 1).rr(12, DNSTypeA, 1, 1, 1, 1, 1),
			dnsWant{id: 9, response: true, qname: "a", qtype: 1, qclass: 1, qd: 1, an: 0xffff, answers: []string{"1 1 1.1.1.1"}, errKind: ErrTruncated, errOff: 35, errText: "answer owner name: name runs past end"}},
		{"rdlength past end", header(9, 0x8000, 1, 1, 0, 0).name("a").u16(1, 1).u16(0xc00c, 1, 1).u32(1).u16(0xffff).u8(1, 2, 3, 4),
			dnsWant{id: 9, response: true, qname: "a", qtype: 1, qclass: 1, qd: 1, an: 1, errKind: ErrTruncated, errOff: 29, errText: "rdata length runs past end"}},
		{"A with 5 bytes", header(9, 0x8000, 1, 1, 0, 0).name("a").u16(1, 1).rr(12, DNSTypeA, 1, 1, 2, 3, 4, 5),
			dnsWant{id: 9, response: true, qname: "a", qtype: 1, qclass: 1, qd: 1, an: 1, errKind: ErrMalformed, errOff: 29, errText: "A rdata length is not 4"}},
		{"AAAA with 4 bytes", header(9, 0x8000, 1, 1, 0, 0).name("a").u16(1, 1).rr(12, DNSTypeAAAA, 1, 1, 2, 3, 4),
			dnsWant{id: 9, response: true, qname: "a", qtype: 1, qclass: 1, qd: 1, an: 1, errKind: ErrMalformed, errOff: 29, errText: "AAAA rdata length is not 16"}},
		{"CNAME shorter than rdata", header(9, 0x8000, 1, 1, 0, 0).name("a").u16(1, 1).rr(12, DNSTypeCNAME, 1, 1, 'b', 0, 0xee),
			dnsWant{id: 9, response: true, qname: "a", qtype: 1, qclass: 1, qd: 1, an: 1, errKind: ErrMalformed, errOff: 34, errText: "does not fill rdata"}},
		{"CNAME longer than rdata", header(9, 0x8000, 1, 1, 0, 0).name("a").u16(1, 1).rr(12, DNSTypeCNAME, 1, 3, 'b', 'c').u8(0xee, 0),
			dnsWant{id: 9, response: true, qname: "a", qtype: 1, qclass: 1, qd: 1, an: 1, errKind: ErrMalformed, errOff: 31, errText: "name runs past rdata"}},
		{"MX without name", header(9, 0x8000, 1, 1, 0, 0).name("a").u16(1, 1).rr(12, DNSTypeMX, 1, 0, 10),
			dnsWant{id: 9, response: true, qname: "a", qtype: 1, qclass: 1, qd: 1, an: 1, errKind: ErrMalformed, errOff: 29, errText: "rdata too short for its name"}},
		{"TXT string past rdata", header(9, 0x8000, 1, 1, 0, 0).name("a").u16(1, 1).rr(12, DNSTypeTXT, 1, 9, 'x').u8(make([]byte, 9)...),
			dnsWant{id: 9, response: true, qname: "a", qtype: 1, qclass: 1, qd: 1, an: 1, errKind: ErrMalformed, errOff: 31, errText: "TXT string runs past rdata"}},
	}
	var d DNS
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDNS(t, &d, d.Parse(tt.msg), tt.want)
			if !tt.want.prefixTruncErr {
				return
			}
			for k := 0; k < len(tt.msg); k++ {
				err := d.Parse(tt.msg[:k])
				if !errors.Is(err, ErrTruncated) {
					t.Fatalf("prefix of %d bytes: err = %v, want ErrTruncated", k, err)
				}
			}
		})
	}
}

// TestDNSPrefixes feeds every prefix of every message to Parse: no panic, and
// whatever was decoded before the cut is a prefix of the full result.
func TestDNSPrefixes(t *testing.T) {
	msgs := [][]byte{query("www.example.com", 1), responseExample(), realDNSResponse, realDNSExfil}
	var full, d DNS
	for i, m := range msgs {
		if err := full.Parse(m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		for k := 0; k <= len(m); k++ {
			err := d.Parse(m[:k])
			if k < len(m) && err != nil && !errors.Is(err, ErrTruncated) {
				t.Fatalf("message %d prefix %d: %v, want ErrTruncated", i, k, err)
			}
			if d.QName != nil && !bytes.Equal(d.QName, full.QName) {
				t.Fatalf("message %d prefix %d: QName %q, full %q", i, k, d.QName, full.QName)
			}
			if len(d.Answers) > len(full.Answers) {
				t.Fatalf("message %d prefix %d: %d answers, full %d", i, k, len(d.Answers), len(full.Answers))
			}
			for j, a := range d.Answers {
				if summarize(a) != summarize(full.Answers[j]) {
					t.Fatalf("message %d prefix %d: answer %d = %s, full %s", i, k, j, summarize(a), summarize(full.Answers[j]))
				}
			}
		}
	}
}

// TestDNSReuse checks that reusing a DNS value leaves nothing behind and that
// names returned by one Parse cannot be overwritten through append.
func TestDNSReuse(t *testing.T) {
	var d DNS
	if err := d.Parse(responseExample()); err != nil {
		t.Fatal(err)
	}
	q := d.QName
	_ = append(q, "XXXXXXXX"...)
	if string(d.Answers[0].Name) != "web.example.com" {
		t.Errorf("append to QName clobbered the next name: %q", d.Answers[0].Name)
	}
	err := d.Parse(header(1, 0, 0, 0, 0, 0))
	if err != nil || d.QName != nil || len(d.Answers) != 0 || d.Response || d.ANCount != 0 || d.QType != 0 {
		t.Errorf("after reuse: err=%v %+v", err, d)
	}
}

func TestDNSErrorText(t *testing.T) {
	var d DNS
	err := d.Parse(header(9, 0, 1, 0, 0, 0).u16(0xc00c, 1, 1))
	const want = "apphint: dns question name: compression pointer does not point backwards at offset 12: malformed"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestTCPDNSMessage(t *testing.T) {
	q := query("example.org", 1)
	stream := wire(nil).u16(uint16(len(q))).u8(q...).u16(5).u8(1, 2)
	tests := []struct {
		in     []byte
		want   []byte
		wantOK bool
	}{
		{nil, nil, false},
		{[]byte{0}, nil, false},
		{[]byte{0, 0}, []byte{}, true},
		{[]byte{0, 3, 1, 2}, nil, false},
		{[]byte{0xff, 0xff, 1, 2}, nil, false},
		{stream, q, true},
		{stream[:len(q)+1], nil, false},
	}
	for i, tt := range tests {
		msg, ok := TCPDNSMessage(tt.in)
		if ok != tt.wantOK || !bytes.Equal(msg, tt.want) || ok && cap(msg) != len(msg) {
			t.Errorf("%d: TCPDNSMessage = %x, %v; want %x, %v", i, msg, ok, tt.want, tt.wantOK)
		}
	}
	var d DNS
	msg, _ := TCPDNSMessage(stream)
	if err := d.Parse(msg); err != nil || string(d.QName) != "example.org" {
		t.Errorf("Parse(TCP message) = %v, %q", err, d.QName)
	}
}

func TestDNSAnswerAddr(t *testing.T) {
	var d DNS
	if err := d.Parse(responseExample()); err != nil {
		t.Fatal(err)
	}
	if got, want := d.Answers[1].Addr, netip.MustParseAddr("192.0.2.1"); got != want || !got.Is4() {
		t.Errorf("A = %v, want %v", got, want)
	}
	if got := d.Answers[3].Addr; !got.Is6() || got.String() != "2001:db8::1" {
		t.Errorf("AAAA = %v", got)
	}
}
