package detect

import (
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/flowhound/flowhound/flow"
)

// LongConn finds long-lived outbound connections: C2 sessions and tunnels
// that stay open for hours. Slips flags a connection longer than 1500 s;
// here the measure is the cumulative duration per (internal source,
// external destination, port, protocol) of its connections that lasted at
// least MinTotal/5 each, so a session that reconnects every ten minutes adds
// up as one that never closes, while keep-alive web connections of a
// minute or two never count. Interim records carry each open connection's
// duration so far, so an open session is reported at the active timeout
// after it crosses MinTotal, not when it ends.
//
// A destination that several internal hosts keep long connections to is a
// shared service (chat push channels, a VPN concentrator, a mail server)
// and is not reported: two hosts for a named destination (TLS SNI, HTTP
// Host, proxy target), three for a bare address. Internal destinations (an
// admin's jump-host sessions) are never considered, except an explicit
// proxy in the home networks, whose CONNECT tunnels count as connections to
// their target.
//
// The score is 0.45 at MinTotal on a standard port (low: Slips' rule alone
// is noisy) and grows with the logarithm of the duration (+0.4 at
// 16×MinTotal), with +0.15 for a port that is not a standard one for long
// sessions (T1571); a bare address that one other host also uses loses
// 0.05. Memory: MaxPairs pairs and as many destinations, plus open
// flows; state is created only for connections that reached MinTotal/5.
type LongConn struct {
	minTotal, minPart int64
	allow             *Allowlist

	pairs *keyedLRU[uint64, longConnPair] // by longConnHash
	dsts  *keyedLRU[uint64, longConnDst]
	flows cumDeltas
	names strTable // the pairs' server names

	now int64
}

// longConnHash identifies a pair and port; through an explicit proxy, dst
// is the proxy and target a hash of the name the client asked it for (0
// otherwise).
func longConnHash(src, dst latKey, target uint64, port uint16, proto flow.Proto) uint64 {
	return splitmixFinal(src.hash() ^ dst.hash()*0x9e3779b97f4a7c15 ^ target ^ uint64(port)<<40 ^ uint64(proto)<<56)
}

// longConnPair is one pair's state, 104 bytes.
type longConnPair struct {
	total    int64 // ns, summed over connections that lasted ≥ minPart
	longest  int64
	out, in  uint64
	first    int64
	src, dst latKey
	conns    uint32
	name     uint32 // in LongConn.names
	port     uint16
	proto    flow.Proto
	proxied  bool
	fired    proposalGate
}

// longConnDst counts the internal hosts holding long connections to one
// destination (up to 8, by a hash of their address).
type longConnDst struct {
	srcs [8]uint32
	n    uint8
}

const (
	// A destination is a shared service when this many internal hosts hold
	// long connections to it: two for a named service (a C2 name is rarely
	// shared by two hosts' long sessions, chat and push services always
	// are), three for a bare address (hosting and CDN addresses carry many
	// names).
	longConnSharedName = 2
	longConnSharedAddr = 3
	// longConnIdle is how long a pair or destination is remembered
	// without a record.
	longConnIdle = 24 * time.Hour
)

// NewLongConn returns the long-connection detector. Zero thresholds take
// DefaultConfig's values.
func NewLongConn(cfg Config) Detector {
	c := cfg.LongConn.normalized()
	d := &LongConn{
		minTotal: int64(c.MinTotal), minPart: int64(c.MinTotal) / 5, allow: cfg.Allow,
		pairs: newKeyedLRU[uint64, longConnPair](c.MaxPairs),
		dsts:  newKeyedLRU[uint64, longConnDst](c.MaxPairs),
		flows: newCumDeltas(max(c.MaxPairs/4, 64)),
		names: newStrTable(),
	}
	d.pairs.onDrop = func(_ *uint64, p *longConnPair) { d.names.unref(p.name) }
	return d
}

// Kind implements Detector.
func (d *LongConn) Kind() Kind { return KindLongConnection }

// Observe implements Detector.
func (d *LongConn) Observe(r *flow.Record, propose func(*Finding)) {
	now := r.End.UnixNano()
	if now > d.now {
		d.now = now
	}
	// A flow's records report its duration so far, which only grows: one
	// shorter than minPart counts for nothing, and neither did its
	// earlier records, so its flow needs no delta state yet.
	if now-r.Start.UnixNano() < d.minPart || !r.LocalOrig {
		return
	}
	proxied := viaProxy(r)
	if !proxied && r.LocalResp {
		return
	}
	if allowedOut(d.allow, r, proxied) {
		return
	}
	dl := d.flows.delta(r, now)
	if dl.dur < d.minPart {
		return
	}
	name := RecordName(r)
	if name != "" && d.allow.AllowedName(name) {
		return
	}
	var target uint64
	if proxied {
		target = fnv1aString(fnv1aOffset, name)
	}
	src, dst := latKeyOf(r.OrigAddr), latKeyOf(r.RespAddr)
	k := longConnHash(src, dst, target, r.RespPort, r.Proto)
	p := d.pairs.get(k, now)
	if p == nil {
		p = d.pairs.insert(k, now)
		p.first = r.Start.UnixNano()
		p.src, p.dst, p.port, p.proto, p.proxied = src, dst, r.RespPort, r.Proto, proxied
	}
	if dl.prevDur >= d.minPart {
		p.total += max(dl.dur-dl.prevDur, 0)
		p.out += dl.out
		p.in += dl.in
	} else { // the connection just became long enough to count
		p.total += dl.dur
		p.out += r.OrigBytes
		p.in += r.RespBytes
		p.conns++
	}
	p.longest = max(p.longest, dl.dur)
	if name != "" {
		d.names.set(&p.name, name)
	}
	pname := d.names.str(p.name)
	dk := mixAddr(fnv1aOffset, r.RespAddr)
	if pname != "" {
		dk = fnv1aString(fnv1aOffset^1, pname)
	}
	prev := d.addPrevalence(dk, r.OrigAddr, now)
	shared := prev >= longConnSharedAddr
	if pname != "" {
		shared = prev >= longConnSharedName
	}
	if p.total < d.minTotal || shared {
		return
	}
	ratio := float64(p.total) / float64(d.minTotal)
	sDur := clampScore(math.Log2(ratio) / 4)
	sPort := 0.0
	if !standardLongPort(p.port, p.proto) {
		sPort = 1
	}
	sRare := 1 / float64(max(prev, 1))
	score := 0.35 + 0.4*sDur + 0.15*sPort + 0.1*sRare
	if !p.fired.due(score) {
		return
	}
	p.fired.mark(score)
	srcA, dstA := src.addr(), dst.addr()
	parts := []string{srcA.String(), dstA.String(), strconv.Itoa(int(p.port)), p.proto.String()}
	if p.proxied {
		parts = append(parts, pname)
	}
	mitre := []string{"T1071"}
	if sPort > 0 {
		mitre = append(mitre, "T1571")
	}
	propose(&Finding{
		UID: FindingUID(KindLongConnection, parts...), Time: time.Unix(0, now).UTC(), Kind: KindLongConnection, Score: score,
		SubScores: []SubScore{{"duration", sDur}, {"port", sPort}, {"rarity", sRare}},
		Src:       srcA, Dst: dstA, DstPort: p.port, Proto: p.proto.String(), FQDN: pname,
		Evidence: Evidence{
			Duration: float64(p.total) / 1e9, Connections: uint64(p.conns),
			BytesOut: p.out, BytesIn: p.in, PCR: pcrOf(p.out, p.in),
			Extra: map[string]any{"longest_s": float64(p.longest) / 1e9, "prevalence": prev},
		},
		MITRE:     mitre,
		FirstSeen: time.Unix(0, p.first).UTC(), LastSeen: time.Unix(0, now).UTC(),
	})
}

// addPrevalence notes that src holds a long connection to the destination
// dk and returns how many internal hosts do.
func (d *LongConn) addPrevalence(dk uint64, src netip.Addr, now int64) int {
	e := d.dsts.get(dk, now)
	if e == nil {
		e = d.dsts.insert(dk, now)
	}
	h := uint32(splitmixFinal(mixAddr(fnv1aOffset, src))) | 1
	for _, s := range e.srcs[:e.n] {
		if s == h {
			return int(e.n)
		}
	}
	if int(e.n) < len(e.srcs) {
		e.srcs[e.n] = h
		e.n++
	}
	return int(e.n)
}

// standardLongPort reports whether a long session on this port is
// expected: web, mail, SSH, RDP, VPN, push and chat services.
func standardLongPort(port uint16, proto flow.Proto) bool {
	switch port {
	case 22, 25, 80, 110, 143, 465, 587, 853, 993, 995, 3389, 5222, 5223, 5228, 8080, 8443:
		return proto == flow.ProtoTCP
	case 443, 500, 4500, 1194, 3478, 51820: // 443/udp is QUIC
		return true
	case 123:
		return proto == flow.ProtoUDP
	}
	return false
}

// Tick implements Detector: it forgets pairs and destinations idle for a
// day and open flows idle for an hour.
func (d *LongConn) Tick(now time.Time, _ func(*Finding)) {
	if n := now.UnixNano(); n > d.now {
		d.now = n
	}
	d.pairs.expire(d.now - int64(longConnIdle))
	d.dsts.expire(d.now - int64(longConnIdle))
	d.flows.expire(d.now - int64(cumIdle))
}

// Stats implements Detector.
func (d *LongConn) Stats() DetectorStats {
	return DetectorStats{
		Keys:      d.pairs.len() + d.dsts.len() + d.flows.t.len(),
		Bytes:     d.pairs.bytes() + d.dsts.bytes() + d.flows.bytes() + d.names.bytes(),
		Evictions: d.pairs.evictions + d.dsts.evictions + d.flows.t.evictions,
	}
}
