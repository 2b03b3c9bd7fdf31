package synth

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// scOut sits between the Mixer and the caller's PacketWriter. It merges the
// extra conversations (xconv) into the Mixer's packet stream in time order,
// then applies what the sensor's vantage point adds: the snaplen cut,
// 802.1Q tags, an ERSPAN or VXLAN mirror tunnel and duplicated frames. It
// counts the frames it writes.
type scOut struct {
	w       PacketWriter
	snaplen int
	vlan    bool
	tunnel  uint8
	dup     bool
	r       rng

	pkt  Packet
	buf  []byte
	pool *payloadPool

	heap  []*xconv
	flows []FlowTruth
	acts  []int32

	dups    []scDup
	dupSeq  uint64
	spare   [][]byte
	tagged  []byte
	wrapped []byte

	packets uint64
	last    int64
	greSeq  uint32
	outerID uint16
}

const (
	tunnelNone uint8 = iota
	tunnelERSPAN
	tunnelVXLAN
)

// scDup is a duplicate frame waiting for its time.
type scDup struct {
	ts    int64
	seq   uint64
	frame []byte
	wire  int
}

func newScOut(w PacketWriter, s scSetup) *scOut {
	o := &scOut{
		w:       w,
		snaplen: s.Snaplen,
		vlan:    s.variants["vlan"],
		dup:     s.variants["dup"],
		r:       newRNG(uint64(s.Seed) ^ 0x3c6ef372fe94f82b),
		buf:     make([]byte, 16<<10),
		pool:    newPayloadPool(),
		last:    math.MinInt64,
	}
	switch {
	case s.variants["erspan"]:
		o.tunnel = tunnelERSPAN
	case s.variants["vxlan"]:
		o.tunnel = tunnelVXLAN
	}
	return o
}

// add starts an extra conversation at ts, which must not be before frames
// already written.
func (o *scOut) add(c *xconv, ts int64, act int32) {
	c.id = len(o.flows)
	c.act = act
	c.start(ts)
	o.flows = append(o.flows, FlowTruth{
		Proto: c.proto, OrigAddr: c.ep[0].Addr, RespAddr: c.ep[1].Addr,
		OrigPort: c.ep[0].Port, RespPort: c.ep[1].Port, ConnState: c.connState(),
	})
	o.acts = append(o.acts, act)
	o.push(c)
}

// WritePacket implements PacketWriter for the Mixer: extra packets due by
// ts go first.
func (o *scOut) WritePacket(ts int64, frame []byte, wireLen int) error {
	if err := o.drain(ts); err != nil {
		return err
	}
	return o.emit(ts, frame, wireLen)
}

// Flush implements PacketWriter. The Mixer calls it when it finishes; the
// extra conversations may still have packets, which finish writes.
func (o *scOut) Flush() error { return o.w.Flush() }

// drain writes every extra packet dated at or before until.
func (o *scOut) drain(until int64) error {
	for len(o.heap) > 0 && o.heap[0].next <= until {
		c := o.heap[0]
		ts := c.next
		frame, dir, payload, ipLen := c.step(o)
		if err := o.emit(ts, frame, len(frame)); err != nil {
			return err
		}
		if c.pk[0]+c.pk[1] == 0 {
			c.first = ts
		}
		c.last = ts
		c.pk[dir]++
		c.by[dir] += uint64(payload)
		c.ipb[dir] += uint64(ipLen)
		c.frb[dir] += uint64(len(frame))
		if c.phase == xDone {
			f := &o.flows[c.id]
			f.Start, f.End = time.Unix(0, c.first).UTC(), time.Unix(0, c.last).UTC()
			f.OrigPkts, f.RespPkts = c.pk[0], c.pk[1]
			f.OrigBytes, f.RespBytes = c.by[0], c.by[1]
			f.OrigIPBytes, f.RespIPBytes = c.ipb[0], c.ipb[1]
			f.OrigFrameBytes, f.RespFrameBytes = c.frb[0], c.frb[1]
			o.pop()
		} else {
			o.down(0)
		}
	}
	return nil
}

// finish writes everything left and flushes.
func (o *scOut) finish() error {
	if err := o.drain(math.MaxInt64); err != nil {
		return err
	}
	if err := o.flushDups(math.MaxInt64); err != nil {
		return err
	}
	return o.w.Flush()
}

// emit writes one frame as the sensor sees it, and schedules its duplicate
// a few microseconds later (rarely up to a millisecond, the other
// direction's copy having queued behind other frames).
func (o *scOut) emit(ts int64, frame []byte, wire int) error {
	if err := o.flushDups(ts); err != nil {
		return err
	}
	if err := o.write(ts, frame, wire, 1); err != nil {
		return err
	}
	if o.dup {
		var b []byte
		if n := len(o.spare); n > 0 {
			b, o.spare = o.spare[n-1][:0], o.spare[:n-1]
		}
		d := scDup{
			ts:    ts + 2_000 + int64(min(o.r.exp(30_000), 1e6)),
			seq:   o.dupSeq,
			frame: append(b, frame...),
			wire:  wire,
		}
		o.dupSeq++
		o.pushDup(d)
	}
	return nil
}

func (o *scOut) flushDups(until int64) error {
	for len(o.dups) > 0 && o.dups[0].ts <= until {
		d := o.dups[0]
		if err := o.write(d.ts, d.frame, d.wire, 2); err != nil {
			return err
		}
		o.spare = append(o.spare, d.frame)
		o.popDup()
	}
	return nil
}

// write applies tag, cut and tunnel to an inner frame. port is the mirror
// port index the copy came from (ERSPAN records it).
func (o *scOut) write(ts int64, frame []byte, wire, port int) error {
	if ts < o.last {
		return fmt.Errorf("synth: scenario frame at %d before %d", ts, o.last)
	}
	o.last = ts
	keep := o.snaplen <= 0 || appHead(frame)
	var vlan uint16
	if o.vlan {
		vlan = scVLAN(frame)
		o.tagged = append(o.tagged[:0], frame[:12]...)
		o.tagged = binary.BigEndian.AppendUint16(o.tagged, 0x8100)
		o.tagged = binary.BigEndian.AppendUint16(o.tagged, vlan)
		o.tagged = append(o.tagged, frame[12:]...)
		frame, wire = o.tagged, wire+4
	}
	if !keep && len(frame) > o.snaplen {
		frame = frame[:o.snaplen]
	}
	if o.tunnel != tunnelNone {
		frame, wire = o.wrap(frame, wire, vlan, port)
	}
	o.packets++
	return o.w.WritePacket(ts, frame, wire)
}

// Mirror tunnel endpoints: a switch (ERSPAN source) or VTEP, and the
// sensor's collector address.
var (
	mirrorSrcMAC = [6]byte{0x02, 0x00, 0x5e, 0xff, 0x00, 0x02}
	mirrorDstMAC = [6]byte{0x02, 0x00, 0x5e, 0xff, 0x00, 0x64}
	mirrorSrc    = netip.AddrFrom4([4]byte{172, 16, 255, 2})
	mirrorDst    = netip.AddrFrom4([4]byte{172, 16, 255, 100})
)

const (
	erspanSession = 100
	vxlanVNI      = 5001
	tunnelHdrLen  = 14 + 20 + 8 + 8 // both: Ethernet, IPv4, GRE+seq or UDP, ERSPAN II or VXLAN
)

// wrap puts the (possibly cut) inner frame into the mirror tunnel.
func (o *scOut) wrap(inner []byte, innerWire int, vlan uint16, port int) ([]byte, int) {
	var zero [tunnelHdrLen]byte
	b := append(o.wrapped[:0], zero[:]...)
	be := binary.BigEndian
	copy(b[0:6], mirrorDstMAC[:])
	copy(b[6:12], mirrorSrcMAC[:])
	be.PutUint16(b[12:], 0x0800)
	ip := b[14:34]
	ip[0] = 0x45
	be.PutUint16(ip[2:], uint16(20+8+8+innerWire))
	be.PutUint16(ip[4:], o.outerID)
	o.outerID++
	be.PutUint16(ip[6:], 0x4000)
	ip[8] = 62
	s, d := mirrorSrc.As4(), mirrorDst.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	t := b[34:]
	if o.tunnel == tunnelERSPAN {
		ip[9] = 47
		be.PutUint16(t[0:], 0x1000) // sequence number present
		be.PutUint16(t[2:], 0x88be)
		be.PutUint32(t[4:], o.greSeq)
		o.greSeq++
		en := uint16(0)
		if vlan != 0 {
			en = 3 // the original VLAN tag is preserved in the frame
		}
		be.PutUint16(t[8:], 1<<12|vlan&0x0fff)
		be.PutUint16(t[10:], en<<11|erspanSession)
		be.PutUint32(t[12:], uint32(port))
	} else {
		ip[9] = 17
		be.PutUint16(t[0:], 49152|uint16(flowHash(inner))&0x3fff)
		be.PutUint16(t[2:], 4789)
		be.PutUint16(t[4:], uint16(8+8+innerWire))
		// UDP checksum zero: allowed over IPv4 and what VTEPs send.
		t[8] = 0x08
		be.PutUint32(t[12:], vxlanVNI<<8)
	}
	be.PutUint16(ip[10:], ^fold(sum(0, ip)))
	b = append(b, inner...)
	o.wrapped = b
	return b, tunnelHdrLen + innerWire
}

// frameLayout finds the transport header and payload of an Ethernet frame
// built by Packet (optionally 802.1Q-tagged).
func frameLayout(f []byte) (l3, l4, pay int, proto uint8, ok bool) {
	if len(f) < 14 {
		return
	}
	et := binary.BigEndian.Uint16(f[12:])
	l3 = 14
	if et == 0x8100 {
		if len(f) < 18 {
			return
		}
		et = binary.BigEndian.Uint16(f[16:])
		l3 = 18
	}
	switch et {
	case 0x0800:
		if len(f) < l3+20 {
			return
		}
		l4 = l3 + int(f[l3]&0x0f)*4
		proto = f[l3+9]
	case 0x86dd:
		l4 = l3 + 40
		if len(f) < l4 {
			return
		}
		proto = f[l3+6]
	default:
		return
	}
	switch proto {
	case ProtoTCP:
		if len(f) < l4+20 {
			return
		}
		pay = l4 + int(f[l4+12]>>4)*4
	case ProtoUDP:
		pay = l4 + 8
	default:
		return
	}
	return l3, l4, pay, proto, pay <= len(f)
}

// appHead reports whether a frame starts an application message that a
// sensor parses for names: DNS, a TLS handshake record, an HTTP request.
// Such frames are kept whole under a snaplen, as a sensor that slices
// packets must keep them to see names at all.
func appHead(f []byte) bool {
	_, l4, pay, proto, ok := frameLayout(f)
	if !ok || pay >= len(f) {
		return false
	}
	sp, dp := binary.BigEndian.Uint16(f[l4:]), binary.BigEndian.Uint16(f[l4+2:])
	if proto == ProtoUDP {
		return sp == 53 || dp == 53
	}
	p := f[pay:]
	if len(p) >= 2 && p[0] == 0x16 && p[1] == 0x03 {
		return true
	}
	for _, m := range [...]string{"GET ", "POST ", "CONNECT ", "HEAD ", "PUT "} {
		if len(p) >= len(m) && string(p[:len(m)]) == m {
			return true
		}
	}
	return false
}

// scVLAN picks the access VLAN a frame belongs to: the workstations' (10)
// when either end is a workstation, else the servers' (20).
func scVLAN(f []byte) uint16 {
	l3, _, _, _, ok := frameLayout(f)
	if !ok {
		return 20
	}
	ws := func(a netip.Addr) bool { return scWorkstationNet4.Contains(a) || scWorkstationNet6.Contains(a) }
	var src, dst netip.Addr
	if f[l3]>>4 == 4 {
		src, _ = netip.AddrFromSlice(f[l3+12 : l3+16])
		dst, _ = netip.AddrFromSlice(f[l3+16 : l3+20])
	} else {
		src, _ = netip.AddrFromSlice(f[l3+8 : l3+24])
		dst, _ = netip.AddrFromSlice(f[l3+24 : l3+40])
	}
	if ws(src) || ws(dst) {
		return 10
	}
	return 20
}

// flowHash hashes the inner addresses and ports (FNV-1a), as a VTEP
// chooses the outer UDP source port.
func flowHash(f []byte) uint32 {
	l3, l4, _, _, ok := frameLayout(f)
	h := uint32(2166136261)
	if !ok {
		return h
	}
	var b []byte
	if f[l3]>>4 == 4 {
		b = f[l3+12 : l3+20]
	} else {
		b = f[l3+8 : l3+40]
	}
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	for _, c := range f[l4 : l4+4] {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

// Heaps: extra conversations by next packet time, then id; duplicates by
// time, then order of scheduling.

func xbefore(a, b *xconv) bool { return a.next < b.next || a.next == b.next && a.id < b.id }

func (o *scOut) push(c *xconv) {
	o.heap = append(o.heap, c)
	h := o.heap
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !xbefore(h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (o *scOut) pop() {
	n := len(o.heap) - 1
	o.heap[0] = o.heap[n]
	o.heap[n] = nil
	o.heap = o.heap[:n]
	if n > 0 {
		o.down(0)
	}
}

func (o *scOut) down(i int) {
	h := o.heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		j := l
		if r := l + 1; r < len(h) && xbefore(h[r], h[l]) {
			j = r
		}
		if !xbefore(h[j], h[i]) {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

func dupBefore(a, b *scDup) bool { return a.ts < b.ts || a.ts == b.ts && a.seq < b.seq }

func (o *scOut) pushDup(d scDup) {
	o.dups = append(o.dups, d)
	h := o.dups
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !dupBefore(&h[i], &h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (o *scOut) popDup() {
	n := len(o.dups) - 1
	o.dups[0] = o.dups[n]
	o.dups = o.dups[:n]
	h := o.dups
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		j := l
		if r := l + 1; r < len(h) && dupBefore(&h[r], &h[l]) {
			j = r
		}
		if !dupBefore(&h[j], &h[i]) {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}
