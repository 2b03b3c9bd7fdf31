package synth

import (
	"encoding/binary"
	"strconv"
	"time"
)

// xconv is a conversation the Mixer cannot express: TCP with idle gaps
// longer than MaxGap (long-lived connections with heartbeats) or with
// application heads the Mixer does not build (proxy CONNECT and
// absolute-URI requests, WinRM POSTs), and UDP exchanges with arbitrary
// payloads (NTP, DNS AAAA and TXT). scOut interleaves them with the Mixer's
// output. The packet pattern is the Mixer's: handshake, MSS-sized segments
// each acknowledged by the receiver every second segment and at the end of
// a message, then a FIN or RST close.
type xconv struct {
	proto uint8
	ep    [2]Endpoint
	seed  uint64

	// TCP
	msgs  []xmsg
	close Close
	rtt   int64
	rate  int64 // bytes per second within a message; 0 means 12.5 MB/s
	name  string
	// beats, when set, receives the time of the first segment of every
	// message marked beat.
	beats *[]int64

	// UDP: datagrams in order.
	dgrams []xdgram

	// state
	id        int
	act       int32
	next      int64
	phase     uint8
	r         rng
	mi, moff  int
	closer    int
	nsPerByte float64
	mss       int
	seq       [2]uint32
	ipid      [2]uint16
	flowLabel uint32
	synOpts   [12]byte
	unacked   int
	pre       []byte
	bodyTLS   bool
	poolBase  [2]int
	helloSent [2]bool
	di        int

	pk, by, ipb, frb [2]uint64
	first, last      int64
}

// xmsg is a burst of application data in one direction.
type xmsg struct {
	fromResp bool
	// n is the message length; heads may lengthen it (see begin).
	n     int
	delay time.Duration // idle time before it; any length
	head  xhead
	// target is the request target of HTTP heads ("/wsman", or the
	// absolute URI through a proxy).
	target string
	// tls lays the bytes after the head out as TLS application-data
	// records.
	tls  bool
	beat bool
}

type xhead uint8

const (
	xheadNone        xhead = iota
	xheadClientHello       // TLS ClientHello with the conversation's name as SNI
	xheadServerHello
	xheadConnect   // CONNECT name:443 to an explicit proxy
	xheadConnectOK // the proxy's 200 Connection established
	xheadGet       // GET target with Host name
	xheadPost      // POST target with Host name and a body
	xheadResponse  // HTTP 200 with a body
)

// xdgram is one UDP datagram.
type xdgram struct {
	fromResp bool
	delay    time.Duration // after the previous datagram
	payload  []byte
}

// Conversation phases of an xconv.
const (
	xSYN uint8 = iota
	xSYNACK
	xHSACK
	xData
	xDataACK
	xClose
	xFIN2
	xFIN3
	xUDP
	xDone
)

// start prepares the conversation to send its first packet at ts.
func (c *xconv) start(ts int64) {
	c.next = ts
	c.r = newRNG(c.seed)
	c.ipid[0], c.ipid[1] = uint16(c.r.next()), uint16(c.r.next())
	c.flowLabel = uint32(c.r.next()) & 0xfffff
	if c.proto == ProtoUDP {
		c.phase = xUDP
		return
	}
	c.seq[0], c.seq[1] = uint32(c.r.next()), uint32(c.r.next())
	c.poolBase[0], c.poolBase[1] = c.r.intn(poolSize), c.r.intn(poolSize)
	if c.rtt <= 0 {
		c.rtt = int64(time.Millisecond)
	}
	rate := c.rate
	if rate <= 0 {
		rate = 12_500_000
	}
	c.nsPerByte = 1e9 / float64(rate)
	c.mss = DefaultMSS4
	if !c.ep[0].Addr.Is4() {
		c.mss = DefaultMSS6
	}
	c.synOpts = [12]byte{2, 4, byte(c.mss >> 8), byte(c.mss), 1, 3, 3, 7, 1, 1, 4, 2}
	if c.close == CloseFINResp || c.close == CloseRSTResp {
		c.closer = 1
	}
	c.phase = xSYN
}

func (c *xconv) connState() string {
	if c.proto == ProtoUDP {
		for _, d := range c.dgrams {
			if d.fromResp {
				return "SF"
			}
		}
		return "S0"
	}
	switch c.close {
	case CloseRSTOrig:
		return "RSTO"
	case CloseRSTResp:
		return "RSTR"
	}
	return "SF"
}

// step builds the current packet into o.buf and moves on, like conv.step.
func (c *xconv) step(o *scOut) (frame []byte, dir, payload, ipLen int) {
	p := &o.pkt
	switch c.phase {
	case xSYN:
		c.tcp(p, 0, FlagSYN, c.seq[0], 0, winSYN)
		p.Options = c.synOpts[:]
		c.phase = xSYNACK
		c.next += c.jitter(c.rtt)

	case xSYNACK:
		dir = 1
		c.tcp(p, 1, FlagSYN|FlagACK, c.seq[1], c.seq[0]+1, winSYNACK)
		p.Options = c.synOpts[:]
		c.seq[0]++
		c.seq[1]++
		c.phase = xHSACK
		c.next += c.quick()

	case xHSACK:
		c.tcp(p, 0, FlagACK, c.seq[0], c.seq[1], winOrig)
		c.nextMessage()

	case xData:
		m := &c.msgs[c.mi]
		if m.fromResp {
			dir = 1
		}
		if c.moff == 0 {
			c.begin(dir, m)
			if m.beat && c.beats != nil {
				*c.beats = append(*c.beats, c.next)
			}
		}
		n := min(c.mss, m.n-c.moff)
		last := c.moff+n == m.n
		flags := FlagACK
		if last {
			flags |= FlagPSH
		}
		c.tcp(p, dir, flags, c.seq[dir], c.seq[1-dir], window(dir))
		hl := p.HeaderLen()
		c.fill(o.buf[hl:hl+n], o.pool, m, dir)
		frame = p.Encode(o.buf, n)
		c.seq[dir] += uint32(n)
		c.moff += n
		c.unacked++
		if last || c.unacked == 2 {
			c.phase = xDataACK
			c.next += c.r.between(20_000, 250_000)
		} else {
			c.next += c.segGap(n)
		}
		return frame, dir, n, hl - l2Len(p) + n

	case xDataACK:
		snd := 0
		if c.msgs[c.mi].fromResp {
			snd = 1
		}
		dir = 1 - snd
		c.tcp(p, dir, FlagACK, c.seq[dir], c.seq[snd], window(dir))
		c.unacked = 0
		if c.moff < c.msgs[c.mi].n {
			c.phase = xData
			c.next += c.segGap(c.mss)
		} else {
			c.mi++
			c.moff = 0
			c.nextMessage()
		}

	case xClose:
		dir = c.closer
		if c.close == CloseRSTOrig || c.close == CloseRSTResp {
			c.tcp(p, dir, FlagRST|FlagACK, c.seq[dir], c.seq[1-dir], 0)
			c.phase = xDone
			break
		}
		c.tcp(p, dir, FlagFIN|FlagACK, c.seq[dir], c.seq[1-dir], window(dir))
		c.seq[dir]++
		c.phase = xFIN2
		if dir == 0 {
			c.next += c.jitter(c.rtt)
		} else {
			c.next += c.quick()
		}

	case xFIN2:
		dir = 1 - c.closer
		c.tcp(p, dir, FlagFIN|FlagACK, c.seq[dir], c.seq[1-dir], window(dir))
		c.seq[dir]++
		c.phase = xFIN3
		if dir == 0 {
			c.next += c.jitter(c.rtt)
		} else {
			c.next += c.quick()
		}

	case xFIN3:
		dir = c.closer
		c.tcp(p, dir, FlagACK, c.seq[dir], c.seq[1-dir], window(dir))
		c.phase = xDone

	case xUDP:
		d := &c.dgrams[c.di]
		if d.fromResp {
			dir = 1
		}
		c.header(p, dir)
		p.DontFragment = false
		hl := p.HeaderLen()
		copy(o.buf[hl:], d.payload)
		frame = p.Encode(o.buf, len(d.payload))
		c.di++
		if c.di == len(c.dgrams) {
			c.phase = xDone
		} else {
			c.next += max(int64(c.dgrams[c.di].delay), minGap)
		}
		return frame, dir, len(d.payload), hl - l2Len(p) + len(d.payload)

	default:
		panic("synth: step on a finished extra conversation")
	}
	frame = p.Encode(o.buf, 0)
	return frame, dir, 0, p.HeaderLen() - l2Len(p)
}

func (c *xconv) nextMessage() {
	if c.mi < len(c.msgs) {
		c.phase = xData
		c.next += max(int64(c.msgs[c.mi].delay), minGap)
		return
	}
	c.phase = xClose
	c.next += c.r.between(int64(time.Millisecond), int64(200*time.Millisecond))
}

// begin lays out the message about to be sent; heads may make it longer
// than planned, so that every message can be laid out.
func (c *xconv) begin(dir int, m *xmsg) {
	c.pre = c.pre[:0]
	body := 0
	switch m.head {
	case xheadClientHello:
		c.pre = appendClientHello(c.pre, &c.r, c.name)
		c.helloSent[dir] = true
	case xheadServerHello:
		c.pre = appendServerHello(c.pre, &c.r)
		c.helloSent[dir] = true
	case xheadConnect:
		c.pre = appendConnect(c.pre, c.name)
	case xheadConnectOK:
		c.pre = append(c.pre, "HTTP/1.1 200 Connection established\r\n\r\n"...)
	case xheadGet, xheadPost:
		method := "GET"
		if m.head == xheadPost {
			method = "POST"
		}
		c.pre, body = appendHTTPHead(c.pre, method, m.target, c.name, m.n, &c.r)
	case xheadResponse:
		c.pre, body = appendHTTPResponse(c.pre, max(m.n, HTTPMinResponseLen))
	}
	switch {
	case m.head == xheadConnect || m.head == xheadConnectOK:
		m.n = len(c.pre)
		c.bodyTLS = false
	case m.head == xheadGet || m.head == xheadPost || m.head == xheadResponse:
		m.n = len(c.pre) + body
		c.bodyTLS = false
	case m.tls:
		b := max(m.n-len(c.pre), 0)
		if b > 0 && b < 6 {
			b = 6
		}
		m.n = len(c.pre) + b
		c.bodyTLS = true
	default:
		m.n = max(m.n, len(c.pre), 1)
		c.bodyTLS = false
	}
}

func (c *xconv) fill(dst []byte, pool *payloadPool, m *xmsg, dir int) {
	off := c.moff
	if off < len(c.pre) {
		k := copy(dst, c.pre[off:])
		dst, off = dst[k:], off+k
	}
	if len(dst) == 0 {
		return
	}
	bo := off - len(c.pre)
	base := c.poolBase[dir] + c.mi*4099
	if c.bodyTLS {
		fillTLSRecords(dst, bo, m.n-len(c.pre), pool, base)
		return
	}
	pool.copyAt(dst, base+bo)
}

func (c *xconv) header(p *Packet, dir int) {
	src, dst := &c.ep[dir], &c.ep[1-dir]
	p.SrcMAC, p.DstMAC = src.MAC, dst.MAC
	p.VLAN = 0
	p.Src, p.Dst = src.Addr, dst.Addr
	p.TTL = src.TTL
	p.IPID = c.ipid[dir]
	c.ipid[dir]++
	p.FlowLabel = c.flowLabel
	p.Proto = c.proto
	p.SrcPort, p.DstPort = src.Port, dst.Port
	p.Options = nil
}

func (c *xconv) tcp(p *Packet, dir int, flags TCPFlags, seq, ack uint32, win uint16) {
	c.header(p, dir)
	p.DontFragment = true
	p.Flags, p.Seq, p.Ack, p.Window = flags, seq, ack, win
}

func (c *xconv) jitter(d int64) int64 { return max(d-d/10+c.r.between(0, d/5), minGap) }

func (c *xconv) quick() int64 { return c.r.between(30_000, 300_000) }

func (c *xconv) segGap(n int) int64 { return c.jitter(int64(float64(n) * c.nsPerByte)) }

// Application payloads.

const scUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// appendConnect appends an explicit-proxy CONNECT request for name:443.
func appendConnect(dst []byte, name string) []byte {
	dst = append(dst, "CONNECT "...)
	dst = append(dst, name...)
	dst = append(dst, ":443 HTTP/1.1\r\nHost: "...)
	dst = append(dst, name...)
	dst = append(dst, ":443\r\nUser-Agent: "+scUA+"\r\nProxy-Connection: keep-alive\r\n\r\n"...)
	return dst
}

// appendHTTPHead appends the header of a request of about n bytes and
// returns it with the length of the body that follows. GETs reach n with a
// cookie; POSTs with their body. A request cannot be shorter than its
// mandatory lines.
func appendHTTPHead(dst []byte, method, target, host string, n int, r *rng) ([]byte, int) {
	start := len(dst)
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, target...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUser-Agent: "+scUA+"\r\nAccept: */*\r\nConnection: keep-alive\r\n"...)
	if method == "POST" {
		const ct = "Content-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: "
		dst = append(dst, ct...)
		body, spaces := contentLength(max(n-(len(dst)-start)-4, 1))
		for range spaces {
			dst = append(dst, ' ')
		}
		dst = strconv.AppendInt(dst, int64(body), 10)
		return append(dst, "\r\n\r\n"...), body
	}
	const ck = "Cookie: sid="
	if pad := n - (len(dst) - start) - 2 - len(ck) - 2; pad > 0 {
		dst = append(dst, ck...)
		for range pad {
			dst = append(dst, pathAlphabet[r.intn(len(pathAlphabet))])
		}
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...), 0
}

// DNS resource record types the scenarios use.
const (
	dnsTypeA    = 1
	dnsTypeTXT  = 16
	dnsTypeAAAA = 28
)

// appendDNSMsg appends a DNS query for name and type qtype, or with resp the
// response carrying one answer per rdata (pointing back at the question),
// both with an EDNS0 OPT record as in appendDNSQuery.
func appendDNSMsg(dst []byte, id uint16, resp bool, name string, qtype uint16, ttl uint32, rdata [][]byte) []byte {
	dst = be16(dst, int(id))
	if resp {
		dst = append(dst, 0x81, 0x80)
	} else {
		dst = append(dst, 0x01, 0x00)
	}
	dst = append(dst, 0, 1)
	dst = be16(dst, len(rdata))
	dst = append(dst, 0, 0, 0, 1)
	dst = appendDNSName(dst, name)
	dst = be16(dst, int(qtype))
	dst = append(dst, 0, 1)
	for _, rd := range rdata {
		dst = append(dst, 0xc0, 12)
		dst = be16(dst, int(qtype))
		dst = append(dst, 0, 1)
		dst = binary.BigEndian.AppendUint32(dst, ttl)
		dst = be16(dst, len(rd))
		dst = append(dst, rd...)
	}
	return appendOPT(dst)
}

// txtRData makes the rdata of a TXT record holding s (in strings of at most
// 255 bytes).
func txtRData(s string) []byte {
	var b []byte
	for len(s) > 0 {
		n := min(len(s), 255)
		b = append(b, byte(n))
		b = append(b, s[:n]...)
		s = s[n:]
	}
	return b
}

// ntpEpoch is the NTP era-0 time of the Unix epoch in seconds.
const ntpEpoch = 2208988800

func appendNTPTime(dst []byte, ns int64) []byte {
	sec := uint64(ns/1e9) + ntpEpoch
	frac := uint64(ns%1e9) << 32 / 1e9
	return binary.BigEndian.AppendUint64(dst, sec<<32|frac)
}

// ntpClient returns an NTPv4 client-mode request sent at ts, as chrony sends
// it (only the transmit timestamp set).
func ntpClient(ts int64, poll int) []byte {
	b := make([]byte, 0, 48)
	b = append(b, 0<<6|4<<3|3, 0, byte(poll), 0xe9)
	b = append(b, make([]byte, 36)...)
	return appendNTPTime(b, ts)
}

// ntpServer returns the answer of a stratum-2 server to a request sent at
// sent, received at recv and answered at xmit.
func ntpServer(sent, recv, xmit int64, poll int, refID [4]byte) []byte {
	b := make([]byte, 0, 48)
	b = append(b, 0<<6|4<<3|4, 2, byte(poll), 0xe8)
	b = append(b, 0, 0, 0x02, 0x1f) // root delay ≈ 8 ms
	b = append(b, 0, 0, 0x03, 0x44) // root dispersion ≈ 13 ms
	b = append(b, refID[:]...)
	b = appendNTPTime(b, recv-int64(37*time.Second))
	b = appendNTPTime(b, sent)
	b = appendNTPTime(b, recv)
	return appendNTPTime(b, xmit)
}
