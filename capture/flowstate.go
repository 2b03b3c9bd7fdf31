package capture

import (
	"encoding/base64"
	"encoding/binary"
	"net/netip"
	"time"
	"unsafe"

	"github.com/flowhound/flowhound/flow"
)

// TCP endpoint states, as Zeek's TCP analyzer names them.
const (
	tcpInactive = iota
	tcpSynSent
	tcpSynAckSent
	tcpPartial
	tcpEstablished
	tcpClosed
	tcpReset
)

// flowState is one tracked flow. It is exactly four cache lines, laid out
// so that a packet touches the first three only: line 0 holds the key and
// the per-packet flags, lines 1 and 2 the two directions. Timers, list links
// and the history letters (written rarely) come last. The table keeps flows
// in one large slice, whose backing array is page-aligned, so every flow
// starts on a cache line.
type flowState struct {
	key      flowKey
	last     int64
	histSeen uint16 // which once-per-direction letters hist holds
	origSide uint8  // key side of the originator
	class    uint8
	live     bool
	flipped  bool // originator is the receiver of the first packet (first seen was a SYN-ACK)
	// fragments: some packets arrived as fragments, so TCP bytes come from
	// payload sums.
	fragments bool
	hintDone  bool // application hints known or given up on
	hintPkts  uint8
	histLen   uint8
	// tcpStates mirrors dir[0].tcpState | dir[1].tcpState<<4, so that a
	// packet reads its peer's state here rather than on the peer's line.
	tcpStates uint8
	_         [5]byte

	dir [2]dirState // by key side: 0 = a, 1 = b

	first    int64
	lastEmit int64
	queued   int64 // value of last when queued in its idle list

	prev, next   uint32 // idle list
	aprev, anext uint32 // active (interim) list

	hist [16]byte // history letters in order of first occurrence (the first 16)

	extra *flowExtra
}

// dirState is what one side of a flow sent.
type dirState struct {
	pkts, ipBytes, frameBytes uint64
	payload                   uint64 // sum of payload lengths from headers
	seqEnd                    uint64 // TCP: highest payload byte seen, relative to seqBase
	seqBase                   uint32
	holeStart, holeEnd        uint32 // most recent sequence gap, relative
	missed                    uint32 // payload bytes skipped by sequence gaps (capped)
	tcpState                  uint8
	seqInit                   bool
	synSeen                   bool
	histCnt                   [3]uint8 // log-scale counters for T, W, G
	// memo spares tcpLetters most packets of a connection. A packet
	// without SYN, FIN or RST adds letters and moves endpoint states by
	// nothing but whether it has ACK, whether it carries data, and the
	// two endpoint states; and once applied, applying it again changes
	// nothing. So the low byte holds the flow's tcpStates and bits 8-11
	// (memoBit) the kinds of such packets this side sent, applied, since
	// the states were last that value: a packet of a kind set there skips
	// tcpLetters. Four kinds, not one, because a side alternates between
	// segments with data and bare ACKs.
	memo uint16
}

const unsafeSizeofFlowState = unsafe.Sizeof(flowState{})

// flowExtra holds what few flows need: encapsulation details and app hints.
type flowExtra struct {
	encap *flow.Encap
	app   *flow.App
	hello *[]byte // a ClientHello split across segments, until complete
	// whole is the flowExtraApp this extra is the head of, if it is one:
	// the table reuses those once their flow is done.
	whole *flowExtraApp
}

func (f *flowState) init(d *Decoded, fromA bool) {
	f.live = true
	sender := uint8(1)
	if fromA {
		sender = 0
	}
	f.origSide = sender
	if d.Proto == 6 && d.TCPFlags&(flagSYN|flagACK) == flagSYN|flagACK {
		// The first packet we saw is the responder's SYN-ACK: the
		// originator is its receiver (Zeek marks this with '^').
		f.origSide = 1 - sender
		f.flipped = true
	}
	if d.NVLAN > 0 || d.NMPLS > 0 || d.Tunnel != TunnelNone {
		f.extra = &flowExtra{encap: encapOf(d)}
	}
}

func encapOf(d *Decoded) *flow.Encap {
	e := &flow.Encap{}
	for i := 0; i < int(d.NVLAN) && i < len(d.VLANs); i++ {
		e.VLANs = append(e.VLANs, d.VLANs[i])
	}
	for i := 0; i < int(d.NMPLS) && i < len(d.MPLS); i++ {
		e.MPLSLabels = append(e.MPLSLabels, d.MPLS[i])
	}
	if d.Tunnel != TunnelNone {
		e.Tunnel = d.Tunnel.String()
		e.OuterSrc = addrOf(&d.OuterSrc)
		e.OuterDst = addrOf(&d.OuterDst)
		e.VNI = d.VNI
	}
	return e
}

func addrOf(b *[16]byte) netip.Addr {
	return netip.AddrFrom16(*b).Unmap()
}

// update counts a packet sent by key side `side`.
func (f *flowState) update(d *pktView, side int, ts int64, wireLen int) {
	if ts > f.last {
		f.last = ts
	}
	ds := &f.dir[side]
	ds.pkts++
	ds.ipBytes += uint64(d.IPLen)
	ds.frameBytes += uint64(wireLen)
	if d.PayloadLen > 0 {
		ds.payload += uint64(d.PayloadLen)
	}
	if d.Frag {
		f.fragments = true
	}
	orig := uint8(side) == f.origSide
	switch d.Proto {
	case 6:
		if d.HasPorts {
			f.updateTCP(d, side, orig)
		}
	case 17:
		if d.PayloadLen > 0 {
			f.addHist('D', orig)
		}
	}
}

func (f *flowState) updateTCP(d *pktView, side int, orig bool) {
	ds := &f.dir[side]
	fl := d.TCPFlags
	if fl&(flagSYN|flagFIN|flagRST) != 0 {
		f.tcpLetters(d, ds, &f.dir[1-side], orig)
	} else if bit := memoBit(fl, d.PayloadLen > 0); ds.memo&bit == 0 || uint8(ds.memo) != f.tcpStates {
		f.tcpLetters(d, ds, &f.dir[1-side], orig)
		if uint8(ds.memo) != f.tcpStates {
			ds.memo = uint16(f.tcpStates)
		}
		ds.memo |= bit
	}
	if d.Window == 0 && fl&(flagRST|flagSYN) == 0 {
		f.addLogHist('W', orig, &ds.histCnt[1])
	}
	f.trackSeq(d, ds, orig)
}

// memoBit is the bit of dirState.memo that stands for a packet without
// SYN, FIN or RST, by whether it has ACK and whether it carries data: what
// tcpLetters reads of such a packet. memo's low byte is the flow's
// tcpStates when those bits were set.
func memoBit(fl uint8, data bool) uint16 {
	i := fl >> 3 & 2 // ACK (0x10) -> 2
	if data {
		i |= 1
	}
	return 1 << (8 + i)
}

// tcpLetters adds the history letters of a TCP packet (but W, counted on
// every packet) and moves the endpoint states.
func (f *flowState) tcpLetters(d *pktView, ds, peer *dirState, orig bool) {
	fl := d.TCPFlags
	if fl&flagSYN != 0 {
		if fl&flagACK != 0 {
			f.addHist('H', orig)
			if ds.tcpState == tcpInactive || ds.tcpState == tcpPartial {
				ds.tcpState = tcpSynAckSent
			}
		} else {
			f.addHist('S', orig)
			if ds.tcpState == tcpInactive {
				ds.tcpState = tcpSynSent
			}
		}
		if fl&(flagFIN|flagRST) != 0 {
			f.addHist('Q', orig)
		}
	}
	if fl&flagFIN != 0 {
		f.addHist('F', orig)
	}
	if fl&flagRST != 0 {
		f.addHist('R', orig)
	}
	if d.PayloadLen > 0 {
		f.addHist('D', orig)
	} else if fl&(flagACK|flagSYN|flagFIN|flagRST) == flagACK {
		f.addHist('A', orig)
	}

	// Endpoint state machine (Zeek's TCP_ENDPOINT_* semantics).
	switch {
	case fl&flagRST != 0:
		ds.tcpState = tcpReset
	case fl&flagSYN == 0:
		switch ds.tcpState {
		case tcpInactive:
			ds.tcpState = tcpPartial
		case tcpSynSent, tcpSynAckSent:
			if fl&flagACK != 0 {
				ds.tcpState = tcpEstablished
				if peer.tcpState == tcpSynAckSent {
					peer.tcpState = tcpEstablished
				}
			}
		}
		if fl&flagFIN != 0 && ds.tcpState != tcpReset {
			ds.tcpState = tcpClosed
		}
	}
	f.tcpStates = f.dir[0].tcpState | f.dir[1].tcpState<<4
}

// trackSeq keeps per-direction payload bytes from sequence numbers, as
// Zeek's conn.log does: retransmissions count once and bytes missing from the
// capture still count. Relative offsets are 64-bit so multi-gigabyte flows
// survive sequence wrap-around.
func (f *flowState) trackSeq(d *pktView, ds *dirState, orig bool) {
	fl := d.TCPFlags
	if fl&flagSYN != 0 {
		if !ds.synSeen || !ds.seqInit {
			ds.seqBase = d.Seq + 1
			ds.seqInit, ds.synSeen = true, true
			ds.seqEnd = 0
		}
		return
	}
	if fl&flagRST != 0 && d.PayloadLen == 0 {
		return // RSTs carry arbitrary sequence numbers
	}
	if !ds.seqInit {
		ds.seqBase = d.Seq
		ds.seqInit = true
	}
	n := d.PayloadLen
	if n <= 0 || d.Frag {
		return
	}
	cur := ds.seqBase + uint32(ds.seqEnd)
	delta := int64(int32(d.Seq - cur))
	if delta > 1<<30 || delta < -(1<<30) {
		return // not plausibly this stream's sequence space
	}
	start := int64(ds.seqEnd) + delta
	end := start + int64(n)
	if start < 0 {
		if ds.synSeen {
			return
		}
		// Data from before the first segment we saw (reordering at the
		// start of a mid-stream flow): move the base back.
		shift := -start
		ds.seqBase -= uint32(shift)
		ds.seqEnd += uint64(shift)
		start, end = 0, end+shift
	}
	switch {
	case delta > 0:
		gap := uint64(delta)
		if m := uint64(ds.missed) + gap; m < 1<<32 {
			ds.missed = uint32(m)
		} else {
			ds.missed = 1<<32 - 1
		}
		ds.holeStart, ds.holeEnd = uint32(ds.seqEnd), uint32(start)
		ds.seqEnd = uint64(end)
		f.addLogHist('G', orig, &ds.histCnt[2])
	case end > int64(ds.seqEnd):
		ds.seqEnd = uint64(end)
	default:
		// Entirely below the highest byte: a retransmission, or a late
		// segment filling the most recent hole.
		hs, he := int64(ds.holeStart), int64(ds.holeEnd)
		if lo, hi := max(start, hs), min(end, he); lo < hi {
			fill := uint32(hi - lo)
			if fill > ds.missed {
				fill = ds.missed
			}
			ds.missed -= fill
			if lo == hs {
				ds.holeStart = uint32(hi)
			} else if hi == he {
				ds.holeEnd = uint32(lo)
			}
			return
		}
		f.addLogHist('T', orig, &ds.histCnt[0])
	}
}

// addHist records a history letter the first time it happens in a
// direction: upper case for the originator, lower case for the responder.
func (f *flowState) addHist(c byte, orig bool) {
	if !orig {
		c += 'a' - 'A'
	}
	bit := histBits[c]
	if f.histSeen&bit != 0 {
		return
	}
	f.histSeen |= bit
	f.pushHist(c)
}

// histBits gives each once-per-direction history letter a bit of
// flowState.histSeen.
var histBits = [256]uint16{
	'S': 1 << 0, 'H': 1 << 1, 'A': 1 << 2, 'D': 1 << 3, 'F': 1 << 4, 'R': 1 << 5, 'Q': 1 << 6,
	's': 1 << 7, 'h': 1 << 8, 'a': 1 << 9, 'd': 1 << 10, 'f': 1 << 11, 'r': 1 << 12, 'q': 1 << 13,
}

func (f *flowState) pushHist(c byte) {
	if int(f.histLen) < len(f.hist) {
		f.hist[f.histLen] = c
		f.histLen++
	}
}

// addLogHist records letters that Zeek repeats on a log scale: the 1st,
// 10th, 100th ... occurrence.
func (f *flowState) addLogHist(c byte, orig bool, cnt *uint8) {
	if *cnt == 255 {
		return
	}
	*cnt++
	switch *cnt {
	case 1, 10, 100:
		if !orig {
			c += 'a' - 'A'
		}
		f.pushHist(c)
	}
}

func (f *flowState) timeoutClass() uint8 {
	switch f.key.proto() {
	case 6:
		a, b := f.dir[0].tcpState, f.dir[1].tcpState
		if a == tcpReset || b == tcpReset || (a == tcpClosed && b == tcpClosed) {
			return classTCPClosed
		}
		o, r := f.dir[f.origSide].tcpState, f.dir[1-f.origSide].tcpState
		if o == tcpSynSent && (r == tcpInactive || r == tcpSynAckSent) {
			return classTCPAttempt
		}
		return classTCP
	case 17:
		return classUDP
	case 1, 58:
		return classICMP
	}
	return classOther
}

// connState computes Zeek's conn_state.
func (f *flowState) connState() string {
	o, r := &f.dir[f.origSide], &f.dir[1-f.origSide]
	switch f.key.proto() {
	case 6:
	case 17:
		switch {
		case o.pkts > 0 && r.pkts > 0:
			return "SF"
		case o.pkts > 0:
			return "S0"
		case r.pkts > 0:
			return "SHR"
		}
		return "OTH"
	default:
		return "OTH"
	}
	os, rs := o.tcpState, r.tcpState
	oInactive := os == tcpInactive || os == tcpPartial
	rInactive := rs == tcpInactive || rs == tcpPartial
	switch {
	case rs == tcpReset:
		if os == tcpSynSent || os == tcpSynAckSent || (os == tcpReset && o.seqEnd == 0 && r.seqEnd == 0) {
			return "REJ"
		}
		if oInactive {
			return "RSTRH"
		}
		return "RSTR"
	case os == tcpReset:
		if rInactive {
			if f.historyIsSynThenReset() {
				return "RSTOS0"
			}
			return "OTH"
		}
		return "RSTO"
	case rs == tcpClosed && os == tcpClosed:
		return "SF"
	case os == tcpClosed:
		if rInactive {
			return "SH"
		}
		return "S2"
	case rs == tcpClosed:
		if oInactive {
			return "SHR"
		}
		return "S3"
	case os == tcpSynSent && rs == tcpInactive:
		return "S0"
	case os == tcpEstablished && rs == tcpEstablished:
		return "S1"
	}
	return "OTH"
}

// historyIsSynThenReset matches Zeek's /\^?S[^HAFGIQ]*R.*/ on the history.
func (f *flowState) historyIsSynThenReset() bool {
	h := f.hist[:f.histLen]
	if len(h) > 0 && h[0] == '^' {
		h = h[1:]
	}
	if len(h) == 0 || h[0] != 'S' {
		return false
	}
	for _, c := range h[1:] {
		switch c {
		case 'R':
			return true
		case 'H', 'A', 'F', 'G', 'I', 'Q':
			return false
		}
	}
	return false
}

func (f *flowState) payloadBytes(ds *dirState) uint64 {
	if f.key.proto() == 6 && !f.fragments && ds.seqInit {
		return ds.seqEnd
	}
	return ds.payload
}

// fillRecord writes the flow into r. scratch is space to build the
// record's strings in.
func (f *flowState) fillRecord(r *flow.Record, scratch []byte, cfg *TableConfig) {
	o, s := f.origSide, 1-f.origSide
	k := &f.key
	a, b := k.addrA(), k.addrB()
	oa, ra := &a, &b
	op, rp := k.portA(), k.portB()
	if o == 1 {
		oa, ra, op, rp = ra, oa, rp, op
	}
	orig, resp := &f.dir[o], &f.dir[s]
	*r = flow.Record{
		Start:          time.Unix(0, f.first).UTC(),
		End:            time.Unix(0, f.last).UTC(),
		OrigAddr:       addrOf(oa),
		OrigPort:       op,
		RespAddr:       addrOf(ra),
		RespPort:       rp,
		Proto:          flow.Proto(k.proto()),
		OrigBytes:      f.payloadBytes(orig),
		RespBytes:      f.payloadBytes(resp),
		MissedBytes:    uint64(orig.missed) + uint64(resp.missed),
		OrigPkts:       orig.pkts,
		RespPkts:       resp.pkts,
		OrigIPBytes:    orig.ipBytes,
		RespIPBytes:    resp.ipBytes,
		OrigFrameBytes: orig.frameBytes,
		RespFrameBytes: resp.frameBytes,
		ConnState:      f.connState(),
	}
	// The three strings of a record share one allocation.
	strs := f.appendUID(scratch)
	nUID := len(strs)
	strs = flow.AppendCommunityID(strs, 0, r.OrigAddr, r.RespAddr, r.OrigPort, r.RespPort, r.Proto)
	nCID := len(strs)
	if f.flipped {
		strs = append(strs, '^')
	}
	strs = append(strs, f.hist[:f.histLen]...)
	all := string(strs)
	r.UID, r.CommunityID, r.History = all[:nUID], all[nUID:nCID], all[nCID:]
	r.LocalOrig = cfg.HomeNets.Contains(r.OrigAddr)
	r.LocalResp = cfg.HomeNets.Contains(r.RespAddr)
	if f.extra != nil {
		r.Encap = f.extra.encap
		r.App = f.extra.app
	}
	r.Service = guessService(r)
}

// appendUID appends the flow's uid: a Zeek-style connection id ("C" + 16
// characters) derived from the canonical key and the start time, so that
// replays agree and interim records share their flow's uid.
func (f *flowState) appendUID(b []byte) []byte {
	h1 := f.key.hash(0x5eed)
	h2 := mum(h1^uint64(f.first), 0x9e3779b97f4a7c15)
	var raw [12]byte
	binary.LittleEndian.PutUint64(raw[:], h1^h2)
	binary.LittleEndian.PutUint32(raw[8:], uint32(h2>>32))
	b = append(b, 'C')
	return base64.RawURLEncoding.AppendEncode(b, raw[:])
}

// The layout above depends on these sizes; the build fails if they drift.
var (
	_ [0]struct{} = [unsafe.Sizeof(dirState{}) - 64]struct{}{}
	_ [0]struct{} = [unsafe.Sizeof(flowState{}) - 256]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(flowState{}.dir) - 64]struct{}{}
)
