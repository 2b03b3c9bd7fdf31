package detect

import (
	"math"
	"strconv"
	"unsafe"

	"github.com/flowhound/flowhound/flow"
)

// Heartbeats inside one long-lived connection (variant "long-lived"). An
// implant that keeps its connection open checks in over it, so there is
// one connection start and nothing for the interval statistics to see.
// What the sensor does report are interim records every active timeout
// with cumulative counts, so each interval between two records tells how
// many client messages were sent in it and how big they were. A heartbeat
// shows up as:
//
//   - activity in every interval, at a steady rate: the number of messages
//     per interval hardly varies (index of dispersion against a constant
//     rate well under the 1 of random messages, and far under bursty
//     interactive use);
//   - request-sized messages: at least beaconMinMessage bytes each on
//     average. Protocol keepalives — TCP keepalive, TLS/HTTP2/WebSocket
//     ping frames of push channels — carry a few dozen bytes; a check-in
//     carries a request;
//   - little volume: not a download, upload or stream;
//   - a message every few seconds to a few minutes.
//
// The state is per connection 5-tuple rather than per UID because a flow
// table ends a connection that is idle longer than its TCP timeout, and a
// heartbeat of a few minutes with jitter splits into flows that share the
// 5-tuple. Consecutive records are pooled into samples of at least a
// minute and three client messages (so that a heartbeat of a few minutes
// is not judged on one or two messages per interval); the score grows with
// the samples, damped by prevalence like the rest. Three samples (at
// least fifteen minutes with the usual five-minute active timeout) are
// needed: with two, a dispersion test cannot tell a heartbeat from random
// messages.

const (
	beaconMinMessage      = 100   // bytes per client message, on average
	beaconLongMinInterval = 600   // deciseconds of packet time per sample, at least
	beaconLongMaxInterval = 36000 // deciseconds: a sample closes after this even with few messages
	beaconLongMinMsgs     = 3     // client messages per sample, unless it reached the maximum
	beaconLongMaxRate     = 2048  // client bytes per second, on average
	beaconLongMaxHeart    = 3600  // seconds: slower is not a heartbeat
	beaconLongScale       = 1.5
	beaconLongMinSamples  = 3   // samples before a connection is scored
	beaconLongMaxDisp     = 0.7 // index of dispersion that counts for nothing (Poisson: 1)
)

type longEntry struct {
	key      uint64 // 5-tuple hash; 0 is free
	slotKey  uint64 // the slot's key when the entry was made
	uid      uint64 // hash of the current flow's UID
	slot     uint32
	first    uint32 // first record's start (ds)
	lastEnd  uint32 // end of the last sample (ds)
	pendEnd  uint32 // end of the latest record (ds)
	cumPkts  uint32 // cumulative counts of the current flow
	cumBytes uint32
	// pending interval (not yet beaconLongMinInterval long)
	pendPkts, pendBytes uint32
	// samples
	n                uint16
	flags            uint8
	handshake        uint8   // client packets of the handshake, still in the pending counts
	sumT, sumP, sumB float64 // seconds, client packets, client bytes
	minR             float64 // lowest per-sample message rate (per minute)
	t, c             [beaconLongSamples]float32
}

// beaconLongSamples is how many recent samples a connection keeps for the
// dispersion test.
const beaconLongSamples = 16

const (
	longInit     uint8 = 1 << iota // the entry belongs to slot
	longReported                   // proposed at least once
)

type longTable struct {
	index   map[uint64]uint32
	entries []longEntry
	max     int
	hand    int
}

func newLongTable(n int) longTable {
	return longTable{index: map[uint64]uint32{}, max: n}
}

func (t *longTable) bytes() int {
	return cap(t.entries)*int(unsafe.Sizeof(longEntry{})) + mapBytes(len(t.index), 16)
}

// forget is called when a slot is dropped; entries check their slot's key
// instead, so nothing needs doing.
func (t *longTable) forget(uint32) {}

func fiveTuple(r *flow.Record) uint64 {
	s, d := r.OrigAddr.As16(), r.RespAddr.As16()
	return hashAddr(&d, hashAddr(&s, uint64(r.OrigPort)<<24|uint64(r.RespPort)<<8|uint64(r.Proto)))
}

// entry finds the 5-tuple's entry; create makes one (replacing the stalest
// of eight under a clock hand when full).
func (t *longTable) entry(key uint64, create bool) *longEntry {
	if i, ok := t.index[key]; ok {
		return &t.entries[i]
	}
	if !create {
		return nil
	}
	var i int
	if len(t.entries) < t.max {
		i = len(t.entries)
		t.entries = append(t.entries, longEntry{})
	} else {
		i = t.hand
		for k := 0; k < 8; k++ {
			j := (t.hand + k) % len(t.entries)
			if t.entries[j].pendEnd < t.entries[i].pendEnd {
				i = j
			}
		}
		t.hand = (t.hand + 8) % len(t.entries)
		delete(t.index, t.entries[i].key)
	}
	t.entries[i] = longEntry{key: key}
	t.index[key] = uint32(i)
	return &t.entries[i]
}

// heartbeat accounts an interim record (or a later record of a connection
// that had one) to its connection and scores the connection.
func (b *beacon) heartbeat(idx uint32, s *beaconSlot, r *flow.Record, propose func(*Finding)) {
	key := fiveTuple(r)
	e := b.long.entry(key, !r.Final)
	if e == nil {
		return
	}
	slotKey := s.key
	uid := hashUID(r.UID)
	start, end := b.ds(r.Start), b.ds(r.End)
	if e.flags&longInit == 0 || e.slotKey != slotKey || e.slot != idx {
		*e = longEntry{key: key, slotKey: slotKey, slot: idx, first: start, lastEnd: start, pendEnd: start, flags: longInit}
		if h := r.History; h != "" && h[0] == 'S' {
			// The first sample holds the handshake: SYN and ACK, and for
			// TLS the ClientHello and the client's Finished.
			e.handshake = 2
			if s.flags&slotTLS != 0 || r.RespPort == 443 {
				e.handshake = 4
			}
		}
	}
	pkts, bytes := uint32(min(r.OrigPkts, math.MaxUint32)), uint32(min(r.OrigBytes, math.MaxUint32))
	if e.uid != uid { // a new flow of the same connection: counts restart
		e.uid, e.cumPkts, e.cumBytes = uid, 0, 0
	}
	if pkts < e.cumPkts || bytes < e.cumBytes {
		return // out of order
	}
	e.pendPkts += pkts - e.cumPkts
	e.pendBytes += bytes - e.cumBytes
	e.cumPkts, e.cumBytes = pkts, bytes
	e.pendEnd = max(e.pendEnd, end)
	if e.pendEnd-e.lastEnd < beaconLongMinInterval || e.pendPkts < 2*beaconLongMinMsgs && e.pendEnd-e.lastEnd < beaconLongMaxInterval {
		return
	}
	if h := uint32(e.handshake); h > 0 {
		e.pendPkts -= min(h, e.pendPkts)
		e.pendBytes -= min(600*h/4, e.pendBytes)
		e.handshake = 0
		if e.pendPkts < 2*beaconLongMinMsgs && e.pendEnd-e.lastEnd < beaconLongMaxInterval {
			return
		}
	}
	// One more sample.
	dt := float64(e.pendEnd-e.lastEnd) / 10
	msgs := float64(e.pendPkts) / 2
	rate := msgs / (dt / 60) // client messages per minute
	if e.n == 0 || rate < e.minR {
		e.minR = rate
	}
	i := int(e.n) % beaconLongSamples
	e.t[i], e.c[i] = float32(dt), float32(msgs)
	e.n++
	e.sumT += dt
	e.sumP += float64(e.pendPkts)
	e.sumB += float64(e.pendBytes)
	e.lastEnd, e.pendPkts, e.pendBytes = e.pendEnd, 0, 0
	if e.n >= beaconLongMinSamples {
		b.scoreLong(idx, s, e, propose)
	}
}

// dispersion is the index of dispersion of the kept samples' message
// counts against a constant rate: Σ (c − λt)² / λt / (n − 1). Random
// (Poisson) messages give about 1, bursty use more, and a heartbeat far
// less: its count per interval hardly varies.
func (e *longEntry) dispersion() float64 {
	n := min(int(e.n), beaconLongSamples)
	var st, sc float64
	for i := range n {
		st += float64(e.t[i])
		sc += float64(e.c[i])
	}
	if st <= 0 || sc <= 0 || n < 2 {
		return math.Inf(1)
	}
	lambda := sc / st
	d := 0.0
	for i := range n {
		want := lambda * float64(e.t[i])
		d += (float64(e.c[i]) - want) * (float64(e.c[i]) - want) / want
	}
	return d / float64(n-1)
}

// scoreLong scores a connection's heartbeat samples.
func (b *beacon) scoreLong(idx uint32, s *beaconSlot, e *longEntry, propose func(*Finding)) {
	n := float64(e.n)
	msgs := e.sumP / 2
	score := 0.0
	var reg, heart, disp float64
	switch {
	case e.minR <= 0:
		// an hour without a message: not a heartbeat
	case e.sumB/msgs < beaconMinMessage:
		// keepalive-sized messages: a push channel or a TCP keepalive
	case e.sumB/e.sumT > beaconLongMaxRate:
		// a transfer or a stream
	default:
		heart = e.sumT / msgs
		if heart < b.cfg.MinPeriod.Seconds() || heart > beaconLongMaxHeart {
			break
		}
		disp = e.dispersion()
		reg = math.Max(0, 1-disp/beaconLongMaxDisp)
		score = 1 - math.Exp(-min(n, beaconMaxGaps)*reg/beaconLongScale)
	}
	pd := prevalenceDamping(int(b.dsts.entries[s.dst].keyRefs), b.hosts.live(), b.cfg.MaxPrevalence)
	raw := score
	score *= pd
	if score < b.cfg.Threshold && e.flags&longReported == 0 {
		return
	}
	e.flags |= longReported
	b.subs = [6]SubScore{
		{"interval", reg}, // 1 − dispersion/beaconLongMaxDisp
		{"size", 1},       // request-sized messages (a gate, not a grade)
		{"coverage", 1},   // a message in every sample (a gate)
		{"evidence", raw},
		{"prevalence", pd},
		{"duty", 1},
	}
	st := beatStats{gaps: int(e.n), period: heart}
	nm := b.longNames(idx, s)
	b.fillFinding(idx, s, score, &st)
	f := &b.f
	f.UID = nm
	f.Evidence.Coverage = 1
	f.Evidence.Connections = 1
	f.Evidence.Count = uint64(msgs)
	f.Evidence.Duration = float64(e.pendEnd-e.first) / 10
	f.Evidence.BytesOut, f.Evidence.BytesIn = uint64(e.sumB), 0
	f.FirstSeen, f.LastSeen = b.time(e.first), b.time(e.pendEnd)
	f.Evidence.Notes = longLivedNote
	propose(f)
}

// longNames returns the uid of a key's long-lived finding: its own, so
// that it and the key's interval finding update independently.
func (b *beacon) longNames(idx uint32, s *beaconSlot) string {
	nm := b.slotNames(idx, s)
	if nm.longUID == "" {
		src := b.hosts.addr(s.src)
		dst := nm.fqdn
		if dst == "" {
			dst = b.dsts.addr(s.dst).String()
		}
		nm.longUID = FindingUID(KindBeacon, src.String(), dst, strconv.Itoa(int(s.port)), "long-lived")
		b.names[idx] = nm
	}
	return nm.longUID
}
