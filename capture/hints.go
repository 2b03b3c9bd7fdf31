package capture

import (
	"github.com/flowhound/flowhound/capture/apphint"
	"github.com/flowhound/flowhound/flow"
)

// Application hints are parsed from the first payload packets of a flow
// only: a DNS name, a TLS server name, an HTTP Host or proxy target. After
// maxHintPackets payload packets, or once the hint is known, a flow costs
// nothing more here.
const maxHintPackets = 6

// maxHelloBuffer bounds how much of a ClientHello split over several
// segments is kept for one flow.
const maxHelloBuffer = apphint.MaxHelloLen + 9

// hintParsers holds the reusable parser state of one table.
type hintParsers struct {
	dns  apphint.DNS
	http apphint.HTTPRequest
	tls  apphint.Hello

	// names holds the hint strings seen lately (server names, DNS names
	// and answers, HTTP hosts), so that the many flows that name the same
	// server share one string instead of allocating their own.
	names   map[string]string
	scratch []byte
}

// Bounds of hintParsers.names: it is emptied when it reaches
// maxInternNames, and longer strings are not kept in it, so it never holds
// more than about maxInternNames*maxInternLen bytes (1 MiB).
const (
	maxInternNames = 8192
	maxInternLen   = 128
)

// intern returns b as a string, shared with earlier calls for the same
// bytes while it stays in the table.
func (h *hintParsers) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxInternLen {
		return string(b)
	}
	if s, ok := h.names[string(b)]; ok {
		return s
	}
	if h.names == nil {
		h.names = make(map[string]string)
	} else if len(h.names) >= maxInternNames {
		clear(h.names)
	}
	s := string(b)
	h.names[s] = s
	return s
}

// hint looks at one payload-carrying packet of flow f.
func (t *Table) hint(f *flowState, d *pktView, orig bool) {
	p := d.Payload
	if len(p) == 0 {
		return
	}
	// DNS flows are parsed to the end: a tunnel sends many queries from
	// one socket, and the names are the evidence.
	dnsPort := isDNSPort(d.SrcPort) || isDNSPort(d.DstPort)
	if !dnsPort {
		f.hintPkts++
		if f.hintPkts >= maxHintPackets {
			f.hintDone = true
		}
	}
	switch {
	case d.Proto == 17 && dnsPort:
		t.hintDNS(f, p)
	case d.Proto == 6 && dnsPort:
		if msg, ok := apphint.TCPDNSMessage(p); ok {
			t.hintDNS(f, msg)
		}
	case d.Proto == 6 && orig:
		t.hintTCPClient(f, p)
	}
}

func isDNSPort(p uint16) bool { return p == 53 || p == 5353 || p == 5355 }

// app returns flow f's application hints, making them if it has none.
func (t *Table) app(f *flowState) *flow.App {
	if f.extra == nil {
		// Most flows with extras have only hints: one object, reused
		// from a finished flow when there is one.
		var x *flowExtraApp
		if n := len(t.spareApps); n > 0 {
			x = t.spareApps[n-1]
			t.spareApps = t.spareApps[:n-1]
		} else {
			x = new(flowExtraApp)
		}
		x.a.DNSRcode = -1
		x.app, x.whole = &x.a, x
		f.extra = &x.flowExtra
		return x.app
	}
	if f.extra.app == nil {
		f.extra.app = &flow.App{DNSRcode: -1}
	}
	return f.extra.app
}

// flowExtraApp is a flowExtra allocated together with its App.
type flowExtraApp struct {
	flowExtra
	a flow.App
}

// maxSpareApps bounds the finished flows' hints kept for reuse (~0.8 MiB).
const maxSpareApps = 4096

// spare keeps the hints of a flow that is done, its last record emitted,
// for the next flow that needs some. The record's App pointed there: emit
// functions copy what they keep (NewTable says so). The slices and
// strings the App held are left to whoever kept them.
func (t *Table) spare(x *flowExtra) {
	if w := x.whole; w != nil && len(t.spareApps) < maxSpareApps {
		*w = flowExtraApp{}
		t.spareApps = append(t.spareApps, w)
	}
}

func (t *Table) hintDNS(f *flowState, msg []byte) {
	m := &t.hints.dns
	if err := m.Parse(msg); err != nil && m.QName == nil {
		t.stats.HintErrors++
		return
	}
	a := t.app(f)
	h := &t.hints
	if a.DNSQuery == "" && m.QName != nil {
		a.DNSQuery = h.intern(m.QName)
		a.DNSQType = m.QType
	}
	if !m.Response {
		a.DNSQueries++
		if m.QName != nil && len(a.DNSNames) < flow.MaxDNSNames && !containsName(a.DNSNames, m.QName) {
			a.DNSNames = append(a.DNSNames, h.intern(m.QName))
		}
		return
	}
	if a.DNSRcode >= 0 {
		return // answers of the first response only
	}
	a.DNSRcode = int16(m.Rcode)
	n := 0
	for i := range m.Answers {
		if an := &m.Answers[i]; an.Addr.IsValid() || len(an.Name) > 0 {
			n++
		}
	}
	if n == 0 {
		return
	}
	a.DNSAnswers = make([]string, 0, n)
	for i := range m.Answers {
		an := &m.Answers[i]
		switch {
		case an.Addr.IsValid():
			h.scratch = an.Addr.AppendTo(h.scratch[:0])
			a.DNSAnswers = append(a.DNSAnswers, h.intern(h.scratch))
		case len(an.Name) > 0:
			a.DNSAnswers = append(a.DNSAnswers, h.intern(an.Name))
		}
	}
}

func containsName(names []string, n []byte) bool {
	for _, s := range names {
		if s == string(n) {
			return true
		}
	}
	return false
}

// hintTCPClient looks for a TLS ClientHello or an HTTP request in what the
// originator sends first.
func (t *Table) hintTCPClient(f *flowState, p []byte) {
	var buf *[]byte
	if f.extra != nil && f.extra.hello != nil {
		// The ClientHello began in an earlier segment.
		buf = f.extra.hello
		p = append(*buf, p...)
		*buf = p
	}
	if p[0] == 0x16 {
		res, need := t.hints.tls.Parse(p)
		switch res {
		case apphint.HelloFound:
			t.app(f).TLSSNI = t.hints.intern(t.hints.tls.SNI)
		case apphint.HelloIncomplete:
			if buf == nil && need <= maxHelloBuffer && len(p) < maxHelloBuffer {
				b := make([]byte, len(p), need)
				copy(b, p)
				if f.extra == nil {
					f.extra = &flowExtra{}
				}
				f.extra.hello = &b
			}
			if len(p) < maxHelloBuffer {
				return
			}
		}
		if f.extra != nil {
			f.extra.hello = nil
		}
		f.hintDone = true
		return
	}
	if buf != nil {
		f.extra.hello = nil
	}
	req := &t.hints.http
	if apphint.ParseHTTPRequest(p, req) {
		a := t.app(f)
		a.HTTPMethod = t.hints.intern(req.Method)
		a.HTTPHost = t.hints.intern(req.Host)
		a.HTTPProxyTarget = t.hints.intern(req.ProxyTarget)
	}
	f.hintDone = true
}
