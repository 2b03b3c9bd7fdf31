package detect

import (
	"math"
	"math/bits"
	"net/netip"
	"strings"
	"time"

	"github.com/flowhound/flowhound/flow"
)

// Exfil finds uploads from internal hosts to the outside: a lot of data to
// one destination within an hour (bulk), a steady trickle over a day
// (low-and-slow), or an upload far above what the host usually sends.
//
// Volume is counted as it flows: interim records carry cumulative counts, so
// each is turned into a delta per flow UID, and an upload still in progress
// is seen at the next active timeout rather than when it ends. Per
// (internal source, external destination) and per source, outbound and
// inbound payload bytes go into a ring of 24 slots spanning SlowWindow (one
// hour each by default); a sliding sum over Window or SlowWindow gives the
// volume and the producer-consumer ratio PCR = (out−in)/(out+in), which is
// near +1 for uploads and negative for downloads. Each source keeps an
// exponentially weighted baseline of its hourly outbound volume.
//
// Raised when, with PCR ≥ MinPCR over the window concerned:
//   - bulk: ≥ MinBytes out within Window (Slips: 100 MB per hour);
//   - low-and-slow: ≥ SlowBytes out within SlowWindow in at least 3 active
//     hours, or in at least 4 active hours at a pace that reaches SlowBytes
//     per SlowWindow (and at least a quarter of it so far);
//   - anomalous: ≥ MinBytes/8 within Window from a host whose learned
//     baseline (≥ 2 hours) is at least 8 times smaller.
//
// An hour is active when it carries at least SlowBytes/100 out. Downloads
// (PCR < MinPCR), internal destinations and allowlisted addresses or names
// are never reported. Requests to an explicit proxy in the home networks
// (HTTP CONNECT, absolute URIs) count as uploads to their target: the
// finding names the proxy as Dst and the target as FQDN. A source whose
// upload is spread over many destinations, none of which crosses a
// threshold alone, gets one finding without a destination.
//
// Memory is bounded: MaxKeys (source, destination) pairs, a quarter as many
// sources and open flows; the least recently used are evicted and counted.
// Only pairs that have carried an upload-like record (more out than in, or
// ≥ 1 MiB out) get state, so browsing and downloads cost a source entry at
// most. Observe does not allocate for records that raise nothing.
type Exfil struct {
	cfg   ExfilConfig
	allow *Allowlist

	slotDur      int64 // ns per ring slot
	win, slowWin int64 // ns
	anomalyBytes uint64
	activeBytes  uint64

	pairs *keyedLRU[uint64, exfilPair] // by exfilPairHash
	// hosts by latKey.hash of the address: a uint64 key is a cheaper map
	// lookup than 16 bytes, and addresses would have to collide in 64 bits
	// to share a host.
	hosts *keyedLRU[uint64, exfilHost]
	uids  cumDeltas
	names strTable // the pairs' server names

	now int64
}

// exfilPairHash identifies a pair; through an explicit proxy, dst is the
// proxy and target a hash of the name the client asked it for (0
// otherwise). Two pairs would have to collide in 64 bits to share state.
func exfilPairHash(src, dst latKey, target uint64) uint64 {
	return exfilPairHashOf(src.hash(), dst.hash(), target)
}

// exfilPairHashOf is exfilPairHash given the addresses' latKey.hash.
func exfilPairHashOf(src, dst, target uint64) uint64 {
	return splitmixFinal(src ^ dst*0x9e3779b97f4a7c15 ^ target)
}

// exfilPair is one pair's state, 184 bytes: the ring, the pair's
// addresses and an interned name.
type exfilPair struct {
	ring     volRing
	first    int64
	src, dst latKey
	conns    uint32
	name     uint32 // in Exfil.names
	port     uint16
	proto    flow.Proto
	proxied  bool
	fired    proposalGate
}

type exfilHost struct {
	ring      volRing
	base      float64 // EWMA of completed slots' outbound bytes (winsorized)
	slots     uint32  // completed slots folded into base
	first     int64
	pairFired int64     // last time a pair finding of this host was proposed
	peers     [4]latKey // recent upload destinations, newest first
	fired     proposalGate
}

// Exfil constants that the configuration does not (yet) expose.
const (
	exfilSlots = 24
	// exfilBaseFloor is added to a host's baseline before comparing: a
	// host that never uploads is not 1000 times anomalous for 1 MB.
	exfilBaseFloor = 1 << 20
	// exfilBaseSlots is how many completed slots make a baseline.
	exfilBaseSlots = 2
	// exfilAnomalyRatio is how far above its baseline a host must upload
	// (below MinBytes) to be reported.
	exfilAnomalyRatio = 8
	// exfilBaseAlpha is the EWMA weight of a new slot.
	exfilBaseAlpha = 1.0 / 8
	// exfilUploadLike is the outbound delta that makes a record an upload
	// even when more came back.
	exfilUploadLike = 1 << 20
)

// NewExfil returns the exfiltration detector. Zero thresholds take
// DefaultConfig's values.
func NewExfil(cfg Config) Detector {
	c := cfg.Exfil.normalized()
	d := &Exfil{
		cfg: c, allow: cfg.Allow,
		slotDur:      max(int64(c.SlowWindow)/exfilSlots, 1),
		win:          int64(c.Window),
		slowWin:      int64(c.SlowWindow),
		anomalyBytes: c.MinBytes / 8,
		activeBytes:  max(c.SlowBytes/100, 1),
		pairs:        newKeyedLRU[uint64, exfilPair](c.MaxKeys),
		hosts:        newKeyedLRU[uint64, exfilHost](max(c.MaxKeys/4, 64)),
		uids:         newCumDeltas(max(c.MaxKeys/4, 64)),
		names:        newStrTable(),
	}
	d.pairs.onDrop = func(_ *uint64, p *exfilPair) { d.names.unref(p.name) }
	return d
}

// Kind implements Detector.
func (d *Exfil) Kind() Kind { return KindExfil }

// Observe implements Detector.
func (d *Exfil) Observe(r *flow.Record, propose func(*Finding)) {
	if !r.LocalOrig {
		return
	}
	proxied := false
	if r.LocalResp {
		if !viaProxy(r) {
			return
		}
		proxied = true
	}
	now := r.End.UnixNano()
	if now > d.now {
		d.now = now
	}
	// A connection that carried nothing either way is not traffic: it
	// neither uploads nor counts as one of a pair's connections. Its
	// counts are cumulative, so no earlier record of its flow carried
	// anything either.
	if r.OrigBytes == 0 && r.RespBytes == 0 {
		return
	}
	if allowedOut(d.allow, r, proxied) {
		return
	}
	// The name is needed up front only to check it against the
	// allowlist; otherwise only a proxied record or a pair needs it.
	name, named := "", false
	if proxied || d.allow != nil && len(d.allow.Domains) > 0 {
		name, named = RecordName(r), true
		if name != "" && d.allow.AllowedName(name) {
			return
		}
	}
	dl := d.uids.delta(r, now)
	if dl.out == 0 && dl.in == 0 && !dl.first {
		return
	}
	slot := now / d.slotDur

	src, dst := latKeyOf(r.OrigAddr), latKeyOf(r.RespAddr)
	srcH := src.hash()
	h := d.hosts.get(srcH, now)
	if h == nil {
		h = d.hosts.insert(srcH, now)
		h.ring.slot = slot
		h.first = r.Start.UnixNano()
	}
	d.rollHost(h, slot)
	h.ring.add(dl.out, dl.in)
	if dl.out >= exfilUploadLike {
		h.addPeer(dst)
	}

	upload := dl.out > dl.in || dl.out >= exfilUploadLike
	var target uint64
	if proxied {
		target = fnv1aString(fnv1aOffset, name)
	}
	k := exfilPairHashOf(srcH, dst.hash(), target)
	p := d.pairs.get(k, now)
	if p == nil {
		if !upload {
			return // a download to a new pair: the host's volume only
		}
		p = d.pairs.insert(k, now)
		p.ring.slot = slot
		p.first = r.Start.UnixNano()
		p.src, p.dst, p.proxied = src, dst, proxied
	}
	p.ring.roll(slot)
	p.ring.add(dl.out, dl.in)
	if dl.first {
		p.conns++
	}
	if dl.out > 0 || p.port == 0 {
		p.port, p.proto = r.RespPort, r.Proto
	}
	if !named {
		name = RecordName(r)
	}
	if name != "" {
		d.names.set(&p.name, name)
	}
	if d.evalPair(p, h, now, propose) {
		h.pairFired = now
	}
	if upload {
		d.evalHost(src, h, now, propose)
	}
}

// rollHost moves a host's ring to slot, folding each completed slot into
// its baseline. An upload far above the baseline is clipped (to four times
// the baseline plus the floor) so that one exfiltration does not teach the
// baseline that it is normal; a sustained one still raises it slowly.
func (d *Exfil) rollHost(h *exfilHost, slot int64) {
	v := &h.ring
	if slot <= v.slot {
		return
	}
	fold := func(x float64) {
		if h.slots == 0 {
			h.base = min(x, 4*exfilBaseFloor)
		} else {
			h.base += exfilBaseAlpha * (min(x, 4*h.base+exfilBaseFloor) - h.base)
		}
		h.slots++
	}
	fold(float64(v.cur[0]))
	for i := min(slot-v.slot-1, 2*exfilSlots); i > 0; i-- {
		fold(0)
	}
	v.roll(slot)
}

// Tiers of an exfil finding, in order of precedence.
const (
	exfilNone = iota
	exfilBulk
	exfilSlow
	exfilAnomaly
)

var exfilTierNames = [...]string{"", "bulk", "low-and-slow", "anomalous"}

// exfilMeasure is what one evaluation of a ring found.
type exfilMeasure struct {
	out1, in1, outS, inS uint64
	pcr1, pcrS           float64
	active               int
	tier                 int
	score                float64
	sub                  [4]float64 // volume, pcr, baseline, persistence
}

func (d *Exfil) measure(v *volRing, h *exfilHost, first, now int64) exfilMeasure {
	var m exfilMeasure
	c := &d.cfg
	// Every tier needs at least this much out within one of the windows:
	// most rings are nowhere near, which a bound on both sums tells.
	if v.outBound() < min(c.MinBytes, c.SlowBytes/4, d.anomalyBytes) {
		return m
	}
	m.out1, m.in1 = v.sum(now, d.win, d.slotDur)
	m.outS, m.inS = v.sum(now, d.slowWin, d.slotDur)
	m.pcr1, m.pcrS = pcrOf(m.out1, m.in1), pcrOf(m.outS, m.inS)
	m.active = v.active(d.activeBytes)
	ratio := float64(m.out1) / (h.base + exfilBaseFloor)
	learned := h.slots >= exfilBaseSlots
	span := max(now-first, d.slotDur)
	pcrT := m.pcr1
	switch {
	case m.out1 >= c.MinBytes && m.pcr1 >= c.MinPCR:
		m.tier = exfilBulk
	case m.pcrS >= c.MinPCR && (m.outS >= c.SlowBytes && m.active >= 3 ||
		m.active >= 4 && m.outS >= c.SlowBytes/4 && float64(m.outS)*float64(d.slowWin)/float64(span) >= float64(c.SlowBytes)):
		m.tier = exfilSlow
		pcrT = m.pcrS
	case m.out1 >= d.anomalyBytes && m.pcr1 >= c.MinPCR && learned && ratio >= exfilAnomalyRatio:
		m.tier = exfilAnomaly
	default:
		return m // nothing to report: the score is not needed
	}
	volRatio := float64(m.out1) / float64(c.MinBytes)
	if m.tier == exfilSlow {
		volRatio = float64(m.outS) / float64(c.SlowBytes)
	}
	m.sub[0] = clampScore(math.Log2(1+volRatio) / 2) // 3× the threshold scores 1
	m.sub[1] = clampScore(pcrT)
	m.sub[2] = 0.5 // unknown until the baseline is learned
	if learned {
		m.sub[2] = clampScore(math.Log2(max(ratio, 1)) / 6)
	}
	m.sub[3] = clampScore(float64(m.active) / 8)
	m.score = 0.5*m.sub[0] + 0.2*m.sub[1] + 0.15*m.sub[2] + 0.15*m.sub[3]
	return m
}

func (d *Exfil) evalPair(p *exfilPair, h *exfilHost, now int64, propose func(*Finding)) bool {
	m := d.measure(&p.ring, h, p.first, now)
	if m.tier == exfilNone || !p.fired.due(m.score) {
		return m.tier != exfilNone
	}
	p.fired.mark(m.score)
	src, dst, name := p.src.addr(), p.dst.addr(), d.names.str(p.name)
	var uid string
	if p.proxied {
		uid = FindingUID(KindExfil, src.String(), dst.String(), name)
	} else {
		uid = FindingUID(KindExfil, src.String(), dst.String())
	}
	f := d.finding(uid, src, m, p.first, now)
	f.Dst, f.DstPort, f.Proto, f.FQDN = dst, p.port, p.proto.String(), name
	f.Evidence.Connections = uint64(p.conns)
	f.MITRE = exfilMITRE(p.port, name, m)
	propose(f)
	return true
}

// evalHost raises a finding without a destination when a host's total
// upload crosses a threshold that none of its pairs did.
func (d *Exfil) evalHost(src latKey, h *exfilHost, now int64, propose func(*Finding)) {
	if h.ring.cur[0] < d.activeBytes || now-h.pairFired < d.win {
		return
	}
	m := d.measure(&h.ring, h, h.first, now)
	if m.tier == exfilNone || m.tier == exfilAnomaly || !h.fired.due(m.score) {
		return
	}
	h.fired.mark(m.score)
	a := src.addr()
	f := d.finding(FindingUID(KindExfil, a.String(), "*"), a, m, h.first, now)
	for _, p := range h.peers {
		if p != (latKey{}) {
			f.Evidence.Peers = append(f.Evidence.Peers, p.addr())
		}
	}
	f.Evidence.Notes = append(f.Evidence.Notes, "upload spread over several destinations")
	f.MITRE = []string{"T1048"}
	propose(f)
}

func (d *Exfil) finding(uid string, src netip.Addr, m exfilMeasure, first, now int64) *Finding {
	out, in, p := m.out1, m.in1, m.pcr1
	if m.tier == exfilSlow {
		out, in, p = m.outS, m.inS, m.pcrS
	}
	return &Finding{
		UID: uid, Time: time.Unix(0, now).UTC(), Kind: KindExfil, Score: m.score,
		SubScores: []SubScore{{"volume", m.sub[0]}, {"pcr", m.sub[1]}, {"baseline", m.sub[2]}, {"persistence", m.sub[3]}},
		Src:       src,
		Evidence: Evidence{
			BytesOut: out, BytesIn: in, PCR: p, Duration: float64(now-first) / 1e9,
			Notes: []string{exfilTierNames[m.tier]},
			Extra: map[string]any{"bytes_out_window": m.out1, "bytes_out_slow_window": m.outS, "active_slots": m.active},
		},
		FirstSeen: time.Unix(0, first).UTC(), LastSeen: time.Unix(0, now).UTC(),
	}
}

// exfilMITRE: T1048 (exfiltration over an alternative protocol) always;
// T1041 too when the upload uses a web port, the usual C2 channel; T1567.002
// when the name looks like a cloud storage or file-sharing service; T1029
// for a scheduled trickle.
func exfilMITRE(port uint16, name string, m exfilMeasure) []string {
	ids := []string{"T1048"}
	switch port {
	case 80, 443, 8080, 8443:
		ids = append(ids, "T1041")
	}
	if cloudStorageName(name) {
		ids = append(ids, "T1567.002")
	}
	if m.tier == exfilSlow && m.active >= 4 {
		ids = append(ids, "T1029")
	}
	return ids
}

// cloudStorageName reports whether a server name looks like a cloud storage
// or file transfer service: a known one, or a name made of words such
// services use.
func cloudStorageName(name string) bool {
	if name == "" {
		return false
	}
	for _, s := range cloudStorageSuffixes {
		if name == s || strings.HasSuffix(name, "."+s) {
			return true
		}
	}
	for _, w := range cloudStorageWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

var (
	cloudStorageSuffixes = []string{"dropbox.com", "dropboxapi.com", "box.com", "drive.google.com",
		"storage.googleapis.com", "blob.core.windows.net", "s3.amazonaws.com", "onedrive.live.com",
		"sharepoint.com", "mega.nz", "mega.io", "wetransfer.com", "transfer.sh", "file.io", "anonfiles.com",
		"gofile.io", "pcloud.com", "backblazeb2.com", "icloud-content.com"}
	cloudStorageWords = []string{"upload", "storage", "bucket", "drive", "dropbox", "files", "share", "transfer",
		"vault", "s3.", "blob.", "dav."}
)

func (h *exfilHost) addPeer(a latKey) {
	i := 0
	for i < len(h.peers)-1 && h.peers[i] != a {
		i++
	}
	copy(h.peers[1:i+1], h.peers[:i])
	h.peers[0] = a
}

// viaProxy reports whether a record is an internal client's request to an
// explicit web proxy in the home networks (HTTP CONNECT or an absolute URI):
// traffic to the outside whose real destination is the proxy target.
func viaProxy(r *flow.Record) bool {
	return r.LocalOrig && r.LocalResp && r.App != nil && r.App.HTTPProxyTarget != ""
}

// allowedOut applies the allowlist to outbound (or proxied) traffic. The
// proxy's own address does not allow what goes through it: operators list
// their proxy to quiet other detectors.
func allowedOut(a *Allowlist, r *flow.Record, proxied bool) bool {
	if a == nil {
		return false
	}
	if proxied {
		return a.AllowedAddr(r.OrigAddr) || len(a.Pairs) > 0 && a.Pairs[[2]netip.Addr{r.OrigAddr, r.RespAddr}]
	}
	return a.AllowedPair(r.OrigAddr, r.RespAddr)
}

// pcrOf is the producer-consumer ratio (out−in)/(out+in), 0 without traffic.
func pcrOf(out, in uint64) float64 {
	if out+in == 0 {
		return 0
	}
	return (float64(out) - float64(in)) / (float64(out) + float64(in))
}

func clampScore(x float64) float64 {
	switch {
	case x < 0 || math.IsNaN(x):
		return 0
	case x > 1:
		return 1
	}
	return x
}

// Tick implements Detector: it drops state idle for longer than it can
// matter (SlowWindow for pairs and hosts, an hour for open flows).
func (d *Exfil) Tick(now time.Time, _ func(*Finding)) {
	n := now.UnixNano()
	if n > d.now {
		d.now = n
	}
	d.pairs.expire(d.now - d.slowWin - d.slotDur)
	d.hosts.expire(d.now - d.slowWin - d.slotDur)
	d.uids.expire(d.now - int64(cumIdle))
}

// Stats implements Detector.
func (d *Exfil) Stats() DetectorStats {
	return DetectorStats{
		Keys:      d.pairs.len() + d.hosts.len() + d.uids.t.len(),
		Bytes:     d.pairs.bytes() + d.hosts.bytes() + d.uids.bytes() + d.names.bytes(),
		Evictions: d.pairs.evictions + d.hosts.evictions + d.uids.t.evictions,
	}
}

// volRing holds outbound and inbound payload bytes per time slot: the
// current slot exactly, the exfilSlots-1 before it in KiB packed into 16
// bits (see packKiB), 116 bytes in all.
type volRing struct {
	slot int64     // number of the current slot (time / slot length)
	cur  [2]uint64 // out, in
	past [exfilSlots - 1][2]uint16
}

func (v *volRing) add(out, in uint64) {
	v.cur[0] += out
	v.cur[1] += in
}

// roll makes slot the current one; earlier slots are never reopened (a
// late record counts in the current slot).
func (v *volRing) roll(slot int64) {
	k := slot - v.slot
	if k <= 0 {
		return
	}
	if k >= exfilSlots {
		v.past = [exfilSlots - 1][2]uint16{}
	} else {
		copy(v.past[k:], v.past[:len(v.past)-int(k)])
		v.past[k-1] = [2]uint16{packKiB(v.cur[0]), packKiB(v.cur[1])}
		for i := range k - 1 {
			v.past[i] = [2]uint16{}
		}
	}
	v.cur = [2]uint64{}
	v.slot = slot
}

// sum returns the bytes of the last window ns before now: the current
// slot, whole earlier slots, and the overlapping part of the oldest one
// pro rata. The ring must have been rolled to now's slot.
func (v *volRing) sum(now, window, slotDur int64) (out, in uint64) {
	out, in = v.cur[0], v.cur[1]
	rem := window - (now - v.slot*slotDur)
	for i := 0; i < len(v.past) && rem > 0; i++ {
		o, n := unpackKiB(v.past[i][0])*1024, unpackKiB(v.past[i][1])*1024
		if rem < slotDur {
			f := float64(rem) / float64(slotDur)
			o, n = uint64(float64(o)*f), uint64(float64(n)*f)
		}
		out += o
		in += n
		rem -= slotDur
	}
	return out, in
}

// outBound is at least what sum can return as out for any window: the
// current slot and every past one, whole.
func (v *volRing) outBound() uint64 {
	out := v.cur[0]
	for _, p := range v.past {
		out += unpackKiB(p[0]) * 1024
	}
	return out
}

// active counts the slots with at least min bytes out.
func (v *volRing) active(min uint64) int {
	n := 0
	if v.cur[0] >= min {
		n++
	}
	for _, p := range v.past {
		if unpackKiB(p[0])*1024 >= min {
			n++
		}
	}
	return n
}

// packKiB packs a byte count into 16 bits as KiB, rounded up: below 4 MiB
// exactly, above as a 12-bit mantissa and a 4-bit exponent (at most 0.05 %
// high), saturating at 128 GiB, far above any threshold. Halving the ring
// this way is what keeps a pair within its memory budget.
func packKiB(b uint64) uint16 {
	k := (b + 1023) / 1024
	if k < 1<<12 {
		return uint16(k)
	}
	e := bits.Len64(k) - 12
	m := (k + 1<<e - 1) >> e
	if m == 1<<12 { // rounding carried into a new bit
		m >>= 1
		e++
	}
	if e > 15 {
		return math.MaxUint16
	}
	return uint16(e)<<12 | uint16(m&(1<<12-1))
}

// unpackKiB returns the KiB a packed count stands for.
func unpackKiB(p uint16) uint64 {
	e, m := p>>12, uint64(p&(1<<12-1))
	if e == 0 {
		return m
	}
	return (m | 1<<11) << e
}
