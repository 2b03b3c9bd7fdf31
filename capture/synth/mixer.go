package synth

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// ErrOutOfOrder is returned when a conversation starts before packets the
// Mixer has already written.
var ErrOutOfOrder = errors.New("synth: conversation starts before already written packets")

// ErrTupleReused is returned when a conversation would reuse the 5-tuple of
// an earlier one; a flow tracker could not tell the two apart.
var ErrTupleReused = errors.New("synth: 5-tuple already used in this capture")

// A Mixer interleaves conversations into one capture in packet-time order and
// records their ground truth. Conversations are added in order of start time
// (or at least never starting before the last packet written); Advance writes
// every packet before a given time, Finish writes the rest. Many
// conversations may be open at once: the Mixer keeps them in a heap ordered by
// the time of each one's next packet, so the cost per packet is logarithmic in
// the number of open conversations and nothing is allocated per packet.
type Mixer struct {
	w       PacketWriter
	snaplen int

	pkt  Packet
	buf  []byte
	pool *payloadPool

	heap []*conv
	free []*conv
	used map[tupleKey]struct{}

	truth    Truth
	now      int64 // time of the last packet written
	finished bool
	err      error
}

type tupleKey struct {
	a, b  netip.AddrPort
	proto uint8
}

// NewMixer returns a Mixer writing to w. Frames longer than snaplen (when
// snaplen > 0) are handed to w cut to snaplen bytes; the truth always counts
// the full frames.
func NewMixer(w PacketWriter, snaplen int) *Mixer {
	return &Mixer{
		w:       w,
		snaplen: snaplen,
		buf:     make([]byte, 16<<10),
		pool:    newPayloadPool(),
		used:    make(map[tupleKey]struct{}),
		now:     math.MinInt64,
	}
}

// InUse reports whether a conversation between a and b over proto has
// already been added, in either direction.
func (m *Mixer) InUse(proto uint8, a, b netip.AddrPort) bool {
	_, ok := m.used[makeTupleKey(proto, a, b)]
	return ok
}

// Active returns the number of conversations that have started and not yet
// ended.
func (m *Mixer) Active() int { return len(m.heap) }

func makeTupleKey(proto uint8, a, b netip.AddrPort) tupleKey {
	if a.Compare(b) > 0 {
		a, b = b, a
	}
	return tupleKey{a: a, b: b, proto: proto}
}

// AddTCP schedules a TCP conversation. It fails if c is invalid (see
// TCPConv.Validate), starts before packets already written, or reuses a
// 5-tuple.
func (m *Mixer) AddTCP(c *TCPConv) error {
	if err := c.Validate(); err != nil {
		return err
	}
	s, err := m.admit(ProtoTCP, c.Orig, c.Resp, c.Start, c.ConnState())
	if err != nil {
		return err
	}
	s.vlan = c.VLAN
	s.setup, s.close, s.app, s.name = c.Setup, c.Close, c.App, c.ServerName
	s.rtt = int64(c.RTT)
	if s.rtt == 0 {
		s.rtt = int64(time.Millisecond)
	}
	rate := c.Rate
	if rate == 0 {
		rate = 12_500_000
	}
	s.nsPerByte = 1e9 / float64(rate)
	s.mss = c.mss()
	s.synRetries = c.SYNRetries
	s.closeDelay = max(int64(c.CloseDelay), minGap)
	s.closer = 0
	if c.Close == CloseFINResp || c.Close == CloseRSTResp {
		s.closer = 1
	}
	for _, msg := range c.Messages {
		s.msgs = append(s.msgs, convMsg{fromResp: msg.FromResp, n: msg.Len, delay: max(int64(msg.Delay), minGap)})
	}
	s.r = newRNG(c.Seed)
	s.seq[0], s.seq[1] = uint32(s.r.next()), uint32(s.r.next())
	s.ipid[0], s.ipid[1] = uint16(s.r.next()), uint16(s.r.next())
	s.flowLabel = uint32(s.r.next()) & 0xfffff
	s.poolBase[0], s.poolBase[1] = s.r.intn(poolSize), s.r.intn(poolSize)
	// SYN options: MSS, NOP, window scale 7, NOP, NOP, SACK permitted.
	s.synOpts = [12]byte{2, 4, byte(s.mss >> 8), byte(s.mss), 1, 3, 3, 7, 1, 1, 4, 2}
	s.phase = phSYN
	m.push(s)
	return nil
}

// AddDNS schedules a DNS lookup. It fails if q is invalid (see
// DNSQuery.Validate), starts before packets already written, or reuses a
// 5-tuple.
func (m *Mixer) AddDNS(q *DNSQuery) error {
	if err := q.Validate(); err != nil {
		return err
	}
	s, err := m.admit(ProtoUDP, q.Client, q.Server, q.Start, q.ConnState())
	if err != nil {
		return err
	}
	s.vlan = q.VLAN
	s.rtt = int64(q.RTT)
	if s.rtt == 0 {
		s.rtt = int64(time.Millisecond)
	}
	s.synRetries = q.Retries
	s.answered = !q.Unanswered
	s.r = newRNG(q.Seed)
	s.ipid[0], s.ipid[1] = uint16(s.r.next()), uint16(s.r.next())
	s.flowLabel = uint32(s.r.next()) & 0xfffff
	s.query = appendDNSQuery(s.query, q.ID, q.Name)
	if s.answered {
		s.resp = appendDNSResponse(s.resp, q.ID, q.Name, q.TTL, q.Answer.As4())
	}
	s.phase = phQuery
	m.push(s)
	return nil
}

// admit does what every Add shares: order and 5-tuple checks, a conversation
// state from the free list, and the flow's truth entry.
func (m *Mixer) admit(proto uint8, orig, resp Endpoint, start time.Time, state string) (*conv, error) {
	if m.finished {
		return nil, errors.New("synth: Mixer already finished")
	}
	if m.err != nil {
		return nil, m.err
	}
	ts := start.UnixNano()
	if ts < m.now {
		return nil, fmt.Errorf("%w: %v", ErrOutOfOrder, start)
	}
	key := makeTupleKey(proto, netip.AddrPortFrom(orig.Addr, orig.Port), netip.AddrPortFrom(resp.Addr, resp.Port))
	if _, ok := m.used[key]; ok {
		return nil, fmt.Errorf("%w: %d %v %v", ErrTupleReused, proto, key.a, key.b)
	}
	m.used[key] = struct{}{}

	var s *conv
	if n := len(m.free); n > 0 {
		s = m.free[n-1]
		m.free = m.free[:n-1]
		*s = conv{msgs: s.msgs[:0], pre: s.pre[:0], query: s.query[:0], resp: s.resp[:0]}
	} else {
		s = &conv{pre: make([]byte, 0, 2048)}
	}
	s.id = len(m.truth.Flows)
	s.proto = proto
	s.ep = [2]Endpoint{orig, resp}
	s.next = ts
	m.truth.Flows = append(m.truth.Flows, FlowTruth{
		Proto:     proto,
		OrigAddr:  orig.Addr,
		RespAddr:  resp.Addr,
		OrigPort:  orig.Port,
		RespPort:  resp.Port,
		ConnState: state,
	})
	return s, nil
}

// Advance writes every packet dated before t.
func (m *Mixer) Advance(t time.Time) error { return m.run(t.UnixNano()) }

// Finish writes all remaining packets, flushes the writer and returns the
// truth. The Mixer cannot be used afterwards.
func (m *Mixer) Finish() (*Truth, error) {
	if m.finished {
		return nil, errors.New("synth: Mixer already finished")
	}
	if err := m.run(math.MaxInt64); err != nil {
		return nil, err
	}
	m.finished = true
	if err := m.w.Flush(); err != nil {
		return nil, err
	}
	t := m.truth
	m.truth = Truth{}
	return &t, nil
}

func (m *Mixer) run(until int64) error {
	if m.err != nil {
		return m.err
	}
	for len(m.heap) > 0 && m.heap[0].next < until {
		s := m.heap[0]
		ts := s.next
		frame, dir, payload, ipLen := s.step(m)
		capt := frame
		if m.snaplen > 0 && len(capt) > m.snaplen {
			capt = capt[:m.snaplen]
		}
		if err := m.w.WritePacket(ts, capt, len(frame)); err != nil {
			m.err = fmt.Errorf("synth: writing packet: %w", err)
			return m.err
		}
		m.now = ts
		if m.truth.Packets == 0 {
			m.truth.Start = time.Unix(0, ts).UTC()
		}
		m.truth.Packets++
		m.truth.Bytes += uint64(len(frame))
		if s.pk[0]+s.pk[1] == 0 {
			s.first = ts
		}
		s.last = ts
		s.pk[dir]++
		s.by[dir] += uint64(payload)
		s.ipb[dir] += uint64(ipLen)
		s.frb[dir] += uint64(len(frame))
		if s.phase == phDone {
			m.retire(s)
			m.pop()
		} else {
			m.down(0)
		}
	}
	if m.truth.Packets > 0 {
		m.truth.End = time.Unix(0, m.now).UTC()
	}
	return nil
}

func (m *Mixer) retire(s *conv) {
	f := &m.truth.Flows[s.id]
	f.Start, f.End = time.Unix(0, s.first).UTC(), time.Unix(0, s.last).UTC()
	f.OrigPkts, f.RespPkts = s.pk[0], s.pk[1]
	f.OrigBytes, f.RespBytes = s.by[0], s.by[1]
	f.OrigIPBytes, f.RespIPBytes = s.ipb[0], s.ipb[1]
	f.OrigFrameBytes, f.RespFrameBytes = s.frb[0], s.frb[1]
	m.free = append(m.free, s)
}

// The heap orders open conversations by next packet time, then by the order
// they were added, so equal times are broken the same way on every run.
func before(a, b *conv) bool { return a.next < b.next || a.next == b.next && a.id < b.id }

func (m *Mixer) push(s *conv) {
	m.heap = append(m.heap, s)
	h := m.heap
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !before(h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (m *Mixer) pop() {
	n := len(m.heap) - 1
	m.heap[0] = m.heap[n]
	m.heap[n] = nil
	m.heap = m.heap[:n]
	if n > 0 {
		m.down(0)
	}
}

func (m *Mixer) down(i int) {
	h := m.heap
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		j := l
		if r := l + 1; r < n && before(h[r], h[l]) {
			j = r
		}
		if !before(h[j], h[i]) {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}
