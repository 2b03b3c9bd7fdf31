package synth

import "time"

// minGap keeps consecutive packets of a conversation apart, so that their
// order survives microsecond timestamps in most cases and zero delays are
// still a forward step.
const minGap = int64(time.Microsecond)

// Conversation phases: each names the packet the conversation sends next.
const (
	phSYN uint8 = iota
	phSYNACK
	phHandshakeACK
	phData    // next segment of msgs[mi]
	phDataACK // receiver acknowledges what it has
	phClose   // closer's FIN or RST
	phFIN2    // the other side's FIN-ACK
	phFIN3    // closer's final ACK
	phReject  // responder's RST-ACK to the SYN
	phAbort   // originator's RST after the SYN-ACK
	phQuery
	phResponse
	phDone
)

// quickAckSegs is how many segments at the start of each message the
// receiver acknowledges one by one.
const quickAckSegs = 8

// Advertised windows: the SYN values of a Linux client and server, then
// values that with window scale 7 mean about 64 KB.
const (
	winSYN    = 64240
	winSYNACK = 65160
	winOrig   = 502
	winResp   = 509
)

type convMsg struct {
	fromResp bool
	n        int
	delay    int64
}

// conv is the state of one open conversation. It produces its packets one at
// a time in step; the Mixer keeps it in the heap by next and reuses it for a
// later conversation when it is done.
type conv struct {
	id     int // index into Truth.Flows; also the heap's tie-breaker
	next   int64
	phase  uint8
	proto  uint8
	closer int // 0 originator, 1 responder
	ep     [2]Endpoint
	vlan   uint16
	r      rng

	flowLabel  uint32
	setup      Setup
	close      Close
	app        App
	name       string
	rtt        int64
	nsPerByte  float64
	mss        int
	synRetries int // also DNS retries
	sent       int // SYNs or queries sent so far
	closeDelay int64
	synOpts    [12]byte

	msgs         []convMsg
	mi, moff     int // current message and bytes of it sent
	unacked      int // segments since the receiver last acknowledged
	seq          [2]uint32
	ipid         [2]uint16
	poolBase     [2]int
	helloSent    [2]bool
	pre          []byte // structured start of the current message
	bodyLen      int    // bytes after pre
	bodyTLS      bool
	bodyPoolBase int

	query, resp []byte
	answered    bool

	pk, by, ipb, frb [2]uint64
	first, last      int64
}

// step builds the conversation's current packet into m.buf and moves to the
// next one, setting next (or phase to phDone). It returns the frame, its
// direction (0 from the originator), and its transport payload and IP
// lengths.
func (s *conv) step(m *Mixer) (frame []byte, dir, payload, ipLen int) {
	p := &m.pkt
	switch s.phase {
	case phSYN:
		s.tcp(p, 0, FlagSYN, s.seq[0], 0, winSYN)
		p.Options = s.synOpts[:]
		s.sent++
		switch {
		case s.setup == Unanswered && s.sent > s.synRetries:
			s.phase = phDone
		case s.setup == Unanswered:
			// retransmission timer: 1, 2, 4 s
			s.next += int64(time.Second)<<(s.sent-1) + s.r.between(0, int64(5*time.Millisecond))
		case s.setup == Rejected:
			s.phase = phReject
			s.next += s.jitter(s.rtt)
		default:
			s.phase = phSYNACK
			s.next += s.jitter(s.rtt)
		}

	case phSYNACK:
		dir = 1
		s.tcp(p, 1, FlagSYN|FlagACK, s.seq[1], s.seq[0]+1, winSYNACK)
		p.Options = s.synOpts[:]
		s.seq[0]++
		s.seq[1]++
		s.phase = phHandshakeACK
		if s.setup == HalfOpen {
			s.phase = phAbort
		}
		s.next += s.quick()

	case phHandshakeACK:
		s.tcp(p, 0, FlagACK, s.seq[0], s.seq[1], winOrig)
		s.nextMessage()

	case phData:
		msg := &s.msgs[s.mi]
		if msg.fromResp {
			dir = 1
		}
		if s.moff == 0 {
			s.beginMessage(dir, msg.n)
		}
		n := min(s.mss, msg.n-s.moff)
		last := s.moff+n == msg.n
		flags := FlagACK
		if last {
			flags |= FlagPSH
		}
		s.tcp(p, dir, flags, s.seq[dir], s.seq[1-dir], window(dir))
		hl := p.HeaderLen()
		s.fill(m.buf[hl:hl+n], m.pool)
		frame = p.Encode(m.buf, n)
		s.seq[dir] += uint32(n)
		s.moff += n
		s.unacked++
		// Quick ACKs at the start of a burst, delayed ACKs (every second
		// segment) once it is under way, as Linux receivers do.
		if last || s.unacked == 2 || s.moff <= quickAckSegs*s.mss {
			s.phase = phDataACK
			s.next += s.r.between(20_000, 250_000)
		} else {
			s.next += s.segGap(n)
		}
		return frame, dir, n, hl - l2Len(p) + n

	case phDataACK:
		msg := &s.msgs[s.mi]
		snd := 0
		if msg.fromResp {
			snd = 1
		}
		dir = 1 - snd
		s.tcp(p, dir, FlagACK, s.seq[dir], s.seq[snd], window(dir))
		s.unacked = 0
		if s.moff < msg.n {
			s.phase = phData
			s.next += s.segGap(s.mss)
		} else {
			s.mi++
			s.moff = 0
			s.nextMessage()
		}

	case phClose:
		dir = s.closer
		if s.close == CloseRSTOrig || s.close == CloseRSTResp {
			s.tcp(p, dir, FlagRST|FlagACK, s.seq[dir], s.seq[1-dir], 0)
			s.phase = phDone
			break
		}
		s.tcp(p, dir, FlagFIN|FlagACK, s.seq[dir], s.seq[1-dir], window(dir))
		s.seq[dir]++
		s.phase = phFIN2
		s.next += s.towards(1 - dir)

	case phFIN2:
		dir = 1 - s.closer
		s.tcp(p, dir, FlagFIN|FlagACK, s.seq[dir], s.seq[1-dir], window(dir))
		s.seq[dir]++
		s.phase = phFIN3
		s.next += s.towards(s.closer)

	case phFIN3:
		dir = s.closer
		s.tcp(p, dir, FlagACK, s.seq[dir], s.seq[1-dir], window(dir))
		s.phase = phDone

	case phReject:
		dir = 1
		s.tcp(p, 1, FlagRST|FlagACK, 0, s.seq[0]+1, 0)
		s.phase = phDone

	case phAbort:
		s.tcp(p, 0, FlagRST, s.seq[0], 0, 0)
		s.phase = phDone

	case phQuery:
		frame, payload, ipLen = s.udp(m, 0, s.query)
		s.sent++
		switch {
		case s.sent <= s.synRetries:
			s.next += int64(time.Second)<<(s.sent-1) + s.r.between(0, int64(5*time.Millisecond))
		case s.answered:
			s.phase = phResponse
			s.next += s.jitter(s.rtt)
		default:
			s.phase = phDone
		}
		return frame, 0, payload, ipLen

	case phResponse:
		frame, payload, ipLen = s.udp(m, 1, s.resp)
		s.phase = phDone
		return frame, 1, payload, ipLen

	default:
		panic("synth: step on a finished conversation")
	}
	// A TCP packet without payload.
	frame = p.Encode(m.buf, 0)
	return frame, dir, 0, p.HeaderLen() - l2Len(p)
}

func (s *conv) nextMessage() {
	if s.mi < len(s.msgs) {
		s.phase = phData
		s.next += s.msgs[s.mi].delay
		return
	}
	s.phase = phClose
	s.next += s.closeDelay
}

// beginMessage lays out the message about to be sent: its structured start
// (hello, HTTP header) and what kind of bytes follow.
func (s *conv) beginMessage(dir, n int) {
	s.pre = s.pre[:0]
	s.bodyTLS = false
	switch s.app {
	case AppTLS:
		if !s.helloSent[dir] {
			if dir == 0 {
				s.pre = appendClientHello(s.pre, &s.r, s.name)
			} else {
				s.pre = appendServerHello(s.pre, &s.r)
			}
			s.helloSent[dir] = true
		}
		s.bodyTLS = true
		s.bodyLen = n - len(s.pre)
	case AppHTTP:
		if dir == 0 {
			s.pre, s.bodyLen = appendHTTPRequest(s.pre, n, s.name, &s.r)
		} else {
			s.pre, s.bodyLen = appendHTTPResponse(s.pre, n)
		}
	default:
		s.bodyLen = n
	}
	// Each message reads the pool from its own place.
	s.bodyPoolBase = s.poolBase[dir] + s.mi*4099
}

// fill writes the current message's bytes [moff, moff+len(dst)).
func (s *conv) fill(dst []byte, pool *payloadPool) {
	off := s.moff
	if off < len(s.pre) {
		c := copy(dst, s.pre[off:])
		dst, off = dst[c:], off+c
	}
	if len(dst) == 0 {
		return
	}
	bo := off - len(s.pre)
	if s.bodyTLS {
		fillTLSRecords(dst, bo, s.bodyLen, pool, s.bodyPoolBase)
		return
	}
	pool.copyAt(dst, s.bodyPoolBase+bo)
}

// header fills the fields every packet of the conversation shares.
func (s *conv) header(p *Packet, dir int) {
	src, dst := &s.ep[dir], &s.ep[1-dir]
	p.SrcMAC, p.DstMAC = src.MAC, dst.MAC
	p.VLAN = s.vlan
	p.Src, p.Dst = src.Addr, dst.Addr
	p.TTL = src.TTL
	p.IPID = s.ipid[dir]
	s.ipid[dir]++
	p.FlowLabel = s.flowLabel
	p.Proto = s.proto
	p.SrcPort, p.DstPort = src.Port, dst.Port
	p.Options = nil
}

func (s *conv) tcp(p *Packet, dir int, flags TCPFlags, seq, ack uint32, win uint16) {
	s.header(p, dir)
	p.DontFragment = true
	p.Flags, p.Seq, p.Ack, p.Window = flags, seq, ack, win
}

func (s *conv) udp(m *Mixer, dir int, payload []byte) (frame []byte, n, ipLen int) {
	p := &m.pkt
	s.header(p, dir)
	p.DontFragment = false
	hl := p.HeaderLen()
	copy(m.buf[hl:], payload)
	frame = p.Encode(m.buf, len(payload))
	return frame, len(payload), hl - l2Len(p) + len(payload)
}

func window(dir int) uint16 {
	if dir == 0 {
		return winOrig
	}
	return winResp
}

func l2Len(p *Packet) int {
	if p.VLAN != 0 {
		return 18
	}
	return 14
}

// jitter returns d ± 10 %.
func (s *conv) jitter(d int64) int64 {
	return max(d-d/10+s.r.between(0, d/5), minGap)
}

// quick is a host's turnaround for a packet that needs no work.
func (s *conv) quick() int64 { return s.r.between(30_000, 300_000) }

// towards is the delay before a packet from side to: the sensor sits near
// the originator, so the responder's packets come a round trip after what
// prompted them and the originator's right away.
func (s *conv) towards(to int) int64 {
	if to == 1 {
		return s.jitter(s.rtt)
	}
	return s.quick()
}

// segGap spaces segments of n bytes at the conversation's rate.
func (s *conv) segGap(n int) int64 {
	return s.jitter(int64(float64(n) * s.nsPerByte))
}
