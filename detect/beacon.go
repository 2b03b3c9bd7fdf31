package detect

import (
	"math"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/flowhound/flowhound/flow"
)

// The beacon detector finds hosts that call home on a schedule: C2
// implants checking in for tasking. It keys what it sees by source and
// destination — the name the source asked for when there is one (proxy
// CONNECT target, TLS SNI, HTTP Host, or the name the source itself
// resolved to the address), else the address, port and protocol — and
// keeps per key a ring of the latest beats (connection start times) and
// their request sizes. Each new beat is scored on:
//
//   - interval regularity, robust to jitter and missed beats (see
//     beacon_score.go);
//   - size regularity of the requests;
//   - the number of gaps seen, so the score rises as evidence accumulates;
//   - damping by prevalence (how many internal sources use the destination)
//     and by duty cycle (sessions that are re-established are not
//     check-ins).
//
// What is never a beat: failed connections (S0, REJ, ... or no payload:
// retries against a dead port), DNS and NTP (their own detectors and
// well-known periodic services), internal-to-internal traffic other than
// to an explicit proxy, and allowlisted sources, destinations, pairs and
// names. Gaps under MinPeriod make a strobe, which is not reported; gaps
// over MaxPeriod are not a schedule.
//
// A long-lived connection that carries a heartbeat inside it is scored
// from its interim records (variant "long-lived", see beacon_long.go).

// beaconRing is how many recent beats a key keeps.
const beaconRing = 24

// beaconBurstGap groups connections into one beat: implants that make
// several requests per check-in open them within seconds of each other.
// A key becomes bursty once it shows both such short gaps and gaps of
// twice that or more, and not many more short gaps than long ones (a
// strobe or a fast poller has only short ones); from then on a connection
// within beaconBurstGap of a check-in's latest connection joins it.
const beaconBurstGap = 30 // deciseconds

// beaconSlot is the state of one key, 184 bytes with no pointers.
type beaconSlot struct {
	key      uint64             // the index's key (see keyHash)
	starts   [beaconRing]uint32 // beat starts (deciseconds since the epoch), oldest at head
	sizes    [beaconRing]uint8  // log2(1+request bytes) in eighths, of each beat's first connection
	src, dst uint32             // host and destination ids
	first    uint32             // first beat
	lastConn uint32             // start of the latest connection
	busyEnd  uint32             // end of the union of connection spans so far
	busy     uint32             // length of that union
	beats    uint32             // beats ever counted
	conns    uint32             // connections ever counted
	bytesOut uint32             // saturating, from final records
	bytesIn  uint32
	port     uint16
	head, n  uint8
	shortGap uint8 // connection gaps under beaconBurstGap (saturating, halved together)
	longGap  uint8 // connection gaps of 2 × beaconBurstGap or more
	score    uint8 // last score × 255
	flags    uint8
	proto    uint8
}

const (
	slotName     uint8 = 1 << iota // keyed by name
	slotTLS                        // saw TLS
	slotHTTP                       // saw HTTP
	slotProxy                      // through an explicit proxy
	slotBursty                     // beats are bursts of connections
	slotReported                   // proposed at least once
	slotStrobe                     // scored as a strobe
	slotLive                       // in use
)

// beaconSlotSize is the size of a slot.
const beaconSlotSize = int(unsafe.Sizeof(beaconSlot{}))

// beaconNames are the strings a reported key needs; kept aside so that
// slots stay pointer-free and only reported keys pay for them.
type beaconNames struct {
	uid, fqdn, longUID string
	// gate is the score of the key's last interval finding: a key that
	// was reported is rescored at every beat, and a finding that the
	// engine would drop is not worth filling in.
	gate proposalGate
}

type beacon struct {
	cfg   BeaconConfig
	allow *Allowlist

	epoch int64     // ns; deciseconds count from here
	index hashIndex // key → slot
	slots []beaconSlot
	free  []uint32
	hand  uint32 // eviction clock hand
	hosts hostTable
	dsts  dstTable
	dns   dnsCache
	uids  uidFilter
	names map[uint32]beaconNames
	long  longTable

	evictions, strobes, failed, scored uint64

	sc  beatScratch
	buf struct {
		gaps     [beaconRing]float64
		sizes    [beaconRing]uint8
		gapsUsed []float64 // the gaps of the key being scored
	}
	f    Finding
	subs [6]SubScore
	// lastAddr is the address the record being observed went to: a key
	// by name reports the one its latest connection used.
	lastAddr netip.Addr
}

// NewBeacon returns the beacon detector (kind "beacon").
func NewBeacon(cfg Config) Detector {
	bc := cfg.Beacon.normalized()
	b := &beacon{
		cfg:   bc,
		allow: cfg.Allow,
		index: newHashIndex(),
		hosts: hostTable{index: map[[16]byte]uint32{}},
		dsts:  dstTable{index: map[uint64]uint32{}},
		dns:   newDNSCache(max(bc.MaxPairs/4, 1<<12)),
		uids:  newUIDFilter(max(bc.MaxPairs/16, 1<<12)),
		names: map[uint32]beaconNames{},
		long:  newLongTable(max(bc.MaxPairs/16, 1<<10)),
	}
	return b
}

func (b *beacon) Kind() Kind { return KindBeacon }

// Stats reports the tracked keys, the bytes of state (slabs and tables by
// capacity, maps estimated) and the keys evicted to stay within MaxPairs.
func (b *beacon) Stats() DetectorStats {
	n := cap(b.slots)*beaconSlotSize + cap(b.free)*4 + b.index.bytes() +
		b.hosts.bytes() + b.dsts.bytes() + b.dns.bytes() + b.uids.bytes() + b.long.bytes()
	for _, v := range b.names {
		n += int(unsafe.Sizeof(v)) + len(v.uid) + len(v.fqdn) + len(v.longUID)
	}
	return DetectorStats{Keys: b.index.len(), Bytes: n, Evictions: b.evictions}
}

// Tick does nothing: keys are scored when their beats arrive, and state
// leaves only by eviction (a silent key is the least useful one).
func (b *beacon) Tick(now time.Time, propose func(*Finding)) {}

// ds converts a time to deciseconds since the epoch.
func (b *beacon) ds(t time.Time) uint32 {
	d := (t.UnixNano() - b.epoch) / 1e8
	if d < 0 {
		return 0
	}
	if d > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(d)
}

func (b *beacon) time(ds uint32) time.Time { return time.Unix(0, b.epoch+int64(ds)*1e8).UTC() }

// failedConn reports connections that carried no exchange: retries against
// a closed or filtered port, or a dead server.
func failedConn(r *flow.Record) bool {
	switch r.Proto {
	case flow.ProtoTCP:
		switch r.ConnState {
		case "S0", "REJ", "RSTOS0", "RSTRH", "SH", "SHR":
			return true
		}
		return r.OrigBytes == 0
	default:
		return r.RespPkts == 0
	}
}

// wellKnownPeriodic reports services whose schedule is their nature and
// that other detectors watch: DNS (the DNS tunnel detector) and NTP
// (clients poll every 64–1024 s by design). An NTP client request is a
// 48-byte datagram; anything else on port 123 is scored like any traffic.
func wellKnownPeriodic(r *flow.Record) bool {
	switch r.RespPort {
	case 53:
		return r.Proto == flow.ProtoUDP || r.Proto == flow.ProtoTCP
	case 123:
		return r.Proto == flow.ProtoUDP && r.OrigPkts > 0 && r.OrigBytes == 48*r.OrigPkts
	}
	return false
}

// rawHost returns the name the originator used, as sent (no allocation):
// proxy target, TLS SNI or HTTP Host, without port or trailing dot.
func rawHost(a *flow.App) string {
	n := a.HTTPProxyTarget
	if n == "" {
		n = a.TLSSNI
	}
	if n == "" {
		n = a.HTTPHost
	}
	if n == "" {
		return ""
	}
	if n[0] == '[' { // [v6]:port
		for i := 1; i < len(n); i++ {
			if n[i] == ']' {
				return n[1:i]
			}
		}
		return ""
	}
	if i := strings.IndexByte(n, ':'); i >= 0 && strings.IndexByte(n[i+1:], ':') < 0 {
		n = n[:i] // host:port; more colons make an IPv6 literal
	}
	for len(n) > 0 && n[len(n)-1] == '.' {
		n = n[:len(n)-1]
	}
	return n
}

// literalAddr parses names that are IP literals ("http://5.2.136.90/").
// Real names end in a letter, so most never reach the parser.
func literalAddr(n string) (netip.Addr, bool) {
	if n == "" {
		return netip.Addr{}, false
	}
	if c := n[len(n)-1]; (c < '0' || c > '9') && c != ':' && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(n)
	return a.Unmap(), err == nil
}

// learnDNS remembers which name a local source resolved to which address.
func (b *beacon) learnDNS(r *flow.Record) {
	a := r.App
	q := a.DNSQuery
	for len(q) > 0 && q[len(q)-1] == '.' {
		q = q[:len(q)-1]
	}
	if q == "" || len(q) > maxName {
		return
	}
	if b.epoch == 0 {
		b.epoch = r.Start.UnixNano() - int64(24*time.Hour)
	}
	now := b.ds(r.End)
	// Most lookups repeat what the cache holds: they cost an address
	// parse, a hash and a probe, and the name is compared in place. The
	// name is hashed only once an answer is an address (a tunnel's TXT
	// answers never are).
	var (
		h, srcH uint64
		name    uint32
		have    bool
		hashed  bool
	)
	for _, s := range a.DNSAnswers {
		ip, ok := parseAnswerAddr(s)
		if !ok {
			continue // a CNAME
		}
		if !hashed {
			srcK := r.OrigAddr.As16()
			h, srcH, hashed = hashName(q), srcHash(&srcK), true
		}
		ipK := ip.As16()
		k := hashAddr(&ipK, srcH)
		e, ok := b.dns.lookup(k)
		if ok && (have && e.name == name || !have && b.dsts.isName(e.name, q)) {
			e.when = now
			continue
		}
		if !have {
			name, have = b.dsts.nameIDHash(q, h), true
		}
		b.dsts.entries[name].dnsRefs++
		if old, ok := b.dns.put(k, h, name, now); ok {
			b.dsts.unrefDNS(old)
		}
	}
}

// parseAnswerAddr parses an address from a DNS answer as netip.ParseAddr
// does (and unmaps it), reading plain dotted quads without the general
// parser: they are nearly all the answers.
func parseAnswerAddr(s string) (netip.Addr, bool) {
	var b [4]byte
	i := 0
	for k := range b {
		if k > 0 {
			if i >= len(s) || s[i] != '.' {
				return parseAddrSlow(s)
			}
			i++
		}
		v, start := 0, i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' && i-start < 3 {
			v = v*10 + int(s[i]-'0')
			i++
		}
		if i == start || v > 255 || i-start > 1 && s[start] == '0' {
			return parseAddrSlow(s)
		}
		b[k] = byte(v)
	}
	if i != len(s) {
		return parseAddrSlow(s)
	}
	return netip.AddrFrom4(b), true
}

// parseAddrSlow is the general parser for what is not a plain dotted
// quad. Without a colon it can only be an IPv4 address that the fast path
// has already refused (or a name): netip would refuse it too, at the cost
// of an error value. An IPv6 address has its first colon within five bytes
// (a field has at most four digits), so long TXT answers are refused
// without a scan.
func parseAddrSlow(s string) (netip.Addr, bool) {
	if strings.IndexByte(s[:min(len(s), 5)], ':') < 0 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	return a.Unmap(), err == nil
}

// Key hashing. A key is identified by a 64-bit hash of its source address
// and its destination (the lower-case name, or the address with port and
// protocol), so that the steady path is one map lookup. Two keys would
// have to collide in 64 bits to share state: with a million keys that is
// a chance of about 3 in 10⁸, and the worst it does is mix two schedules.

func srcHash(a *[16]byte) uint64 { return hashAddr(a, 0x737263) }

func keyHash(src, dst uint64) uint64 { return mix64(src ^ (dst<<17 | dst>>47) ^ 0x6b6579) }

// Observe consumes one record.
func (b *beacon) Observe(r *flow.Record, propose func(*Finding)) {
	if !b.cfg.Enabled || !r.LocalOrig {
		return
	}
	app := r.App
	if app != nil && app.DNSQuery != "" && len(app.DNSAnswers) > 0 {
		b.learnDNS(r)
	}
	proxied := app != nil && app.HTTPProxyTarget != ""
	if r.LocalResp && !proxied || wellKnownPeriodic(r) {
		return
	}
	if failedConn(r) {
		b.failed++
		return
	}
	src, dst := r.OrigAddr.Unmap(), r.RespAddr.Unmap()
	if b.allow != nil {
		if b.allow.AllowedAddr(src) || !proxied && (b.allow.AllowedAddr(dst) || len(b.allow.Pairs) > 0 && b.allow.Pairs[[2]netip.Addr{src, dst}]) {
			return
		}
	}
	if b.epoch == 0 {
		b.epoch = r.Start.UnixNano() - int64(24*time.Hour)
	}

	// The destination: the name the source used, else the name it
	// resolved, else the address.
	var (
		name   string
		dnsID  uint32
		dstH   uint64
		flags  uint8
		byName bool
		viaDNS bool
	)
	if app != nil {
		if app.TLSSNI != "" {
			flags |= slotTLS
		}
		if app.HTTPHost != "" || app.HTTPMethod != "" {
			flags |= slotHTTP
		}
		if proxied {
			flags |= slotProxy
		}
		if n := rawHost(app); n != "" {
			if ip, ok := literalAddr(n); ok {
				if proxied { // CONNECT 1.2.3.4:443: the address behind the proxy
					dst = ip
				}
			} else {
				if len(n) > maxName {
					n = n[len(n)-maxName:]
				}
				name, dstH, byName = n, hashName(n), true
			}
		}
	}
	srcK, dstK := src.As16(), dst.As16()
	srcH := srcHash(&srcK)
	if !byName && !proxied {
		if e, ok := b.dns.lookup(hashAddr(&dstK, srcH)); ok {
			dnsID, dstH, byName, viaDNS = e.name, e.hash, true, true
		}
	}
	if !byName {
		dstH = hashAddr(&dstK, uint64(r.RespPort)<<8|uint64(r.Proto))
	}
	key := keyHash(srcH, dstH)
	idx, ok := b.find(key)
	if !ok {
		// A new key: intern the destination (its reference count is the
		// prevalence) and check the allowlist once for it.
		var dstID uint32
		switch {
		case viaDNS:
			dstID = dnsID
		case byName:
			dstID = b.dsts.nameID(name)
		default:
			dstID = b.dsts.addrID(dst, r.RespPort, uint8(r.Proto))
		}
		if byName && b.nameAllowed(dstID) {
			b.dsts.release(dstID) // in case it was just made
			return
		}
		idx = b.newSlot(key, src, dstID, r, byName)
	}
	s := &b.slots[idx]
	s.flags |= flags
	b.lastAddr = netip.Addr{}
	if byName && !proxied {
		b.lastAddr = dst
	}
	b.record(idx, s, r, propose)
}

// find returns the slot of key.
func (b *beacon) find(key uint64) (uint32, bool) {
	x := &b.index
	for i, tag := x.first(key); ; i = x.next(i) {
		st, pos, ok := slotOf(x.slots[i])
		if !ok {
			return 0, false
		}
		if st == tag && b.slots[pos].key == key {
			return pos, true
		}
	}
}

// nameAllowed checks a name destination against the allowlist, through a
// transient view of the arena (no allocation), once per destination.
func (b *beacon) nameAllowed(id uint32) bool {
	if b.allow == nil || len(b.allow.Domains) == 0 {
		return false
	}
	e := &b.dsts.entries[id]
	if e.flags&dstChecked == 0 && e.nameLen > 0 {
		e.flags |= dstChecked
		if b.allow.AllowedName(unsafe.String(&b.dsts.names[e.nameOff], int(e.nameLen))) {
			e.flags |= dstAllowed
		}
	}
	return e.flags&dstAllowed != 0
}

// newSlot makes the slot of a new key.
func (b *beacon) newSlot(key uint64, src netip.Addr, dstID uint32, r *flow.Record, byName bool) uint32 {
	// Make room first. Eviction may free the destination just looked up,
	// so hold its reference meanwhile (it becomes the slot's).
	b.dsts.entries[dstID].keyRefs++
	if b.index.len() >= b.cfg.MaxPairs {
		b.evict()
	}
	hid := b.hosts.ref(src)
	var idx uint32
	if n := len(b.free); n > 0 {
		idx = b.free[n-1]
		b.free = b.free[:n-1]
	} else {
		idx = uint32(len(b.slots))
		if len(b.slots) == cap(b.slots) {
			// Grow by hand: never past MaxPairs, so a full table holds no
			// spare capacity.
			grown := make([]beaconSlot, len(b.slots), min(max(2*cap(b.slots), 1024), b.cfg.MaxPairs))
			copy(grown, b.slots)
			b.slots = grown
		}
		b.slots = b.slots[:idx+1]
	}
	s := &b.slots[idx]
	*s = beaconSlot{key: key, src: hid, dst: dstID, port: r.RespPort, proto: uint8(r.Proto), flags: slotLive}
	if byName {
		s.flags |= slotName
	}
	b.index.insert(key, idx)
	return idx
}

// evict frees the least useful of eight slots under the clock hand: never
// reported before reported, then fewest beats, then longest idle.
func (b *beacon) evict() {
	n := uint32(len(b.slots))
	best, bestVal := uint32(math.MaxUint32), uint64(math.MaxUint64)
	for i := uint32(0); i < 8 && i < n; i++ {
		idx := (b.hand + i) % n
		s := &b.slots[idx]
		if s.flags&slotLive == 0 {
			continue // free
		}
		v := uint64(min(s.beats, 255))<<32 | uint64(s.lastConn)
		if s.flags&slotReported != 0 {
			v |= 1 << 40
		}
		if v < bestVal {
			best, bestVal = idx, v
		}
	}
	b.hand = (b.hand + 8) % max(n, 1)
	if best == math.MaxUint32 {
		return
	}
	b.drop(best)
	b.evictions++
}

func (b *beacon) drop(idx uint32) {
	s := &b.slots[idx]
	b.index.remove(s.key, idx)
	delete(b.names, idx)
	b.long.forget(idx)
	b.hosts.unref(s.src)
	b.dsts.unrefKey(s.dst)
	*s = beaconSlot{}
	b.free = append(b.free, idx)
}

// record adds a record to its key and scores the key when a beat was
// added.
func (b *beacon) record(idx uint32, s *beaconSlot, r *flow.Record, propose func(*Finding)) {
	start, end := b.ds(r.Start), b.ds(r.End)
	// Duty cycle: the union of the key's connection spans.
	if end > s.busyEnd {
		s.busy += end - max(start, s.busyEnd)
		s.busyEnd = end
	}
	if r.Final {
		s.bytesOut = satAdd(s.bytesOut, r.OrigBytes)
		s.bytesIn = satAdd(s.bytesIn, r.RespBytes)
	}
	size := logSize(r.OrigBytes)

	// One connection, one beat: interim and final records of a long
	// connection share a UID.
	long := !r.Final || r.End.UnixNano()-r.Start.UnixNano() >= int64(time.Minute)
	seen := false
	if long {
		seen = b.uids.seen(hashUID(r.UID), r.Final)
	}
	if long || midStream(r) {
		b.heartbeat(idx, s, r, propose)
	}
	if seen || long && b.hasStart(s, start) {
		b.setSize(s, start, size)
		return
	}
	s.conns++
	if !b.addBeat(s, start, size) {
		return
	}
	if int(s.beats) < b.cfg.MinBeats {
		return
	}
	if !b.due(s) {
		return
	}
	b.score(idx, s, propose)
}

// midStream reports TCP flows first seen without a handshake: the rest of
// a connection the flow table split on an idle timeout.
func midStream(r *flow.Record) bool {
	return r.Proto == flow.ProtoTCP && r.History != "" && r.History[0] != 'S' && r.History[0] != 's'
}

// due says whether a key is rescored on this beat. Every beat counts
// while a key is young (its first finding must come within a handful of
// beats) and scored something last time, and while it scores anywhere
// near the threshold, up to 48 beats (two rings), then every second beat
// and every fourth after 256: by then the ring has turned over many times,
// and a reported key's updates lag by at most a few beats. A key that
// scored nothing last time — most busy keys: a host and a site it uses at
// random — is rescored every second beat while young, every fourth up to
// 48 beats and every eighth after that (every sixteenth after 256), so a
// schedule that starts on it late is still found within a few beats.
func (b *beacon) due(s *beaconSlot) bool {
	switch {
	case int(s.beats) == b.cfg.MinBeats:
		return true
	case float64(s.score) >= 0.4*255*b.cfg.Threshold || s.flags&slotReported != 0:
		switch {
		case s.beats <= 2*beaconRing:
			return true
		case s.beats <= 256:
			return s.beats%2 == 0
		}
		return s.beats%4 == 0
	case s.score > 0:
		return int(s.beats) <= 2*b.cfg.MinBeats || s.beats%2 == 0
	case int(s.beats) <= 2*b.cfg.MinBeats:
		return s.beats%2 == 0
	case s.beats <= 2*beaconRing:
		return s.beats%4 == 0
	case s.beats <= 256:
		return s.beats%8 == 0
	}
	return s.beats%16 == 0
}

func satAdd(a uint32, v uint64) uint32 {
	if s := uint64(a) + v; s < math.MaxUint32 {
		return uint32(s)
	}
	return math.MaxUint32
}

// logSize quantises a request size as log2(1+bytes) in eighths of an
// octave (steps of 9 %, well under the spreads that matter, beaconM0), one
// byte for sizes up to 4 GiB. It reads the leading bit and the five after
// it, so it costs no logarithm.
func logSize(b uint64) uint8 {
	x := b + 1
	if x < 64 {
		return smallLogSize[x]
	}
	l := bits.Len64(x)
	if l > 32 {
		return math.MaxUint8
	}
	v := sizeSteps*(l-1) + int(mantLogSize[(x>>(l-6))&31])
	return uint8(min(v, math.MaxUint8))
}

const sizeSteps = 8

// smallLogSize and mantLogSize are round(8·log2(x)) for x < 64 and
// round(8·log2(1 + (m+0.5)/32)) for the five bits m after a leading one.
var smallLogSize, mantLogSize = func() (small [64]uint8, mant [32]uint8) {
	for x := 1; x < 64; x++ {
		small[x] = uint8(math.Round(sizeSteps * math.Log2(float64(x))))
	}
	for m := range mant {
		mant[m] = uint8(math.Round(sizeSteps * math.Log2(1+(float64(m)+0.5)/32)))
	}
	return
}()

// at is the ring position of the i-th kept beat (head and i are both
// under beaconRing, so one subtraction wraps it, not a division).
func (s *beaconSlot) at(i int) int {
	j := int(s.head) + i
	if j >= beaconRing {
		j -= beaconRing
	}
	return j
}

func (b *beacon) hasStart(s *beaconSlot, start uint32) bool {
	for i := 0; i < int(s.n); i++ {
		if s.starts[s.at(i)] == start {
			return true
		}
	}
	return false
}

func (b *beacon) setSize(s *beaconSlot, start uint32, size uint8) {
	for i := int(s.n) - 1; i >= 0; i-- {
		if j := s.at(i); s.starts[j] == start {
			s.sizes[j] = size
			return
		}
	}
}

// addBeat adds a connection start to the ring and reports whether it made
// a new beat (rather than joining a burst, or being too old to keep).
func (b *beacon) addBeat(s *beaconSlot, start uint32, size uint8) bool {
	if s.beats == 0 {
		s.first = start
	}
	if s.conns > 1 {
		gap := max(start, s.lastConn) - min(start, s.lastConn) // records arrive in end order
		switch {
		case gap < beaconBurstGap:
			s.shortGap++
		case gap >= 2*beaconBurstGap:
			s.longGap++
		}
		if s.shortGap == 255 || s.longGap == 255 {
			s.shortGap, s.longGap = s.shortGap/2, s.longGap/2
		}
		if s.flags&slotBursty == 0 && s.shortGap >= 2 && s.longGap >= 2 && int(s.shortGap) <= 4*int(s.longGap) {
			s.flags |= slotBursty
			b.mergeBursts(s)
		}
	}
	if start < s.first {
		s.first = start
	}
	n := int(s.n)
	if s.flags&slotBursty != 0 && n > 0 {
		// Join the check-in it belongs to. For the newest one, lastConn
		// is its latest connection: a burst is a chain of connections
		// each within beaconBurstGap of the previous. A connection just
		// before a check-in's first one (whose record can arrive after a
		// shorter second one's) becomes its start.
		for i := n - 1; i >= 0; i-- {
			j := s.at(i)
			beat := s.starts[j]
			reach := beat + 2*beaconBurstGap
			if i == n-1 {
				reach = s.lastConn + beaconBurstGap
			}
			if start+beaconBurstGap >= beat && start <= reach {
				if start < beat && (i == 0 || s.starts[s.at(i-1)] < start) {
					s.starts[j] = start
				}
				s.lastConn = max(s.lastConn, start)
				return false
			}
			if start > beat {
				break
			}
		}
	}
	s.lastConn = max(s.lastConn, start)
	newest := uint32(0)
	if n > 0 {
		newest = s.starts[s.at(n-1)]
	}
	if n == 0 || start >= newest {
		if n == beaconRing {
			s.head = uint8((int(s.head) + 1) % beaconRing)
			n--
		}
		j := s.at(n)
		s.starts[j], s.sizes[j] = start, size
		s.n = uint8(n + 1)
		s.beats++
		return true
	}
	// Out of order (a long connection's record arrives after later
	// beats): insert in place unless older than everything kept.
	s.beats++
	if n == beaconRing && start < s.starts[s.at(0)] {
		return false
	}
	if n == beaconRing {
		s.head = uint8((int(s.head) + 1) % beaconRing)
		n--
	}
	i := n
	for i > 0 && s.starts[s.at(i-1)] > start {
		s.starts[s.at(i)], s.sizes[s.at(i)] = s.starts[s.at(i-1)], s.sizes[s.at(i-1)]
		i--
	}
	s.starts[s.at(i)], s.sizes[s.at(i)] = start, size
	s.n = uint8(n + 1)
	return true
}

// mergeBursts folds the beats already kept that were members of a burst.
func (b *beacon) mergeBursts(s *beaconSlot) {
	n := int(s.n)
	var starts [beaconRing]uint32
	var sizes [beaconRing]uint8
	k := 0
	for i := 0; i < n; i++ {
		j := s.at(i)
		if i > 0 && s.starts[j]-s.starts[s.at(i-1)] < beaconBurstGap {
			continue
		}
		starts[k], sizes[k] = s.starts[j], s.sizes[j]
		k++
	}
	s.beats -= uint32(n - k)
	s.starts, s.sizes, s.head, s.n = starts, sizes, 0, uint8(k)
}

// score scores a key on its kept beats and proposes a finding when it
// reaches the threshold (or was reported before, so updates follow it
// down).
func (b *beacon) score(idx uint32, s *beaconSlot, propose func(*Finding)) {
	n := int(s.n)
	if n < 3 {
		return
	}
	b.scored++
	gaps := b.buf.gaps[:n-1]
	sizes := b.buf.sizes[:n]
	for i := 0; i < n; i++ {
		j := s.at(i)
		sizes[i] = s.sizes[j]
		if i > 0 {
			gaps[i-1] = float64(s.starts[j]-s.starts[s.at(i-1)]) / 10
		}
	}
	var st beatStats
	b.buf.gapsUsed = gaps
	gapStats(gaps, &b.sc, &st)
	if st.screened && st.median >= b.cfg.MinPeriod.Seconds() {
		b.subs = [6]SubScore{}
		b.setScore(idx, s, 0, propose, &st)
		return
	}
	if st.median < b.cfg.MinPeriod.Seconds() {
		// A strobe: many connections a second or faster is a poller or a
		// retry loop, not a sleep schedule.
		if s.flags&slotStrobe == 0 {
			s.flags |= slotStrobe
			b.strobes++
		}
		b.setScore(idx, s, 0, propose, &st)
		return
	}
	if st.period > b.cfg.MaxPeriod.Seconds() {
		b.setScore(idx, s, 0, propose, &st)
		return
	}
	if st.x < timingX0(st.gaps) {
		sizeStats(sizes, &st) // sizes only count with regular timing
	} else {
		st.sizeDisp = beaconM0 // not looked at: neutral
	}
	t, sz, e := beaconEvidence(&st, int(s.beats)-1)
	raw := evidenceScore(e)
	span := float64(s.starts[s.at(n-1)]-s.first) / 10
	duty := 0.0
	if span > 0 {
		duty = math.Min(1, float64(s.busy)/10/span)
	}
	dd := dutyDamping(duty)
	pd := prevalenceDamping(int(b.dsts.entries[s.dst].keyRefs), b.hosts.live(), b.cfg.MaxPrevalence)
	score := raw * dd * pd
	b.subs = [6]SubScore{
		{"interval", math.Max(0, math.Min(1, t))},
		{"size", math.Max(sz, 0)},
		{"coverage", st.coverage},
		{"evidence", raw},
		{"prevalence", pd},
		{"duty", dd},
	}
	b.setScore(idx, s, score, propose, &st)
}

func (b *beacon) setScore(idx uint32, s *beaconSlot, score float64, propose func(*Finding), st *beatStats) {
	s.score = uint8(math.Round(score * 255))
	if score < b.cfg.Threshold && s.flags&slotReported == 0 {
		return
	}
	if st.gaps == 0 || st.period == 0 {
		return
	}
	s.flags |= slotReported
	if score < b.cfg.Threshold {
		// Tell the engine the key fell below the threshold; sub-scores of
		// a strobe or an overlong period are not meaningful.
		if st.median < b.cfg.MinPeriod.Seconds() || st.period > b.cfg.MaxPeriod.Seconds() {
			b.subs = [6]SubScore{}
		}
	}
	nm := b.slotNames(idx, s)
	if !nm.gate.due(score) {
		return
	}
	nm.gate.mark(score)
	b.names[idx] = nm
	if st.mad == 0 && len(b.buf.gapsUsed) > 0 {
		gapMAD(b.buf.gapsUsed, &b.sc, st)
	}
	b.fillFinding(idx, s, score, st)
	propose(&b.f)
}

// slotNames returns the strings of a key's findings, making them once.
func (b *beacon) slotNames(idx uint32, s *beaconSlot) beaconNames {
	nm, ok := b.names[idx]
	if !ok {
		src := b.hosts.addr(s.src)
		if s.flags&slotName != 0 {
			nm.fqdn = b.dsts.name(s.dst)
			nm.uid = FindingUID(KindBeacon, src.String(), nm.fqdn, strconv.Itoa(int(s.port)))
		} else {
			d := b.dsts.addr(s.dst)
			nm.uid = FindingUID(KindBeacon, src.String(), d.String(), strconv.Itoa(int(s.port)))
		}
		b.names[idx] = nm
	}
	return nm
}

// fillFinding fills the reused finding with what every beacon finding of
// a key says.
func (b *beacon) fillFinding(idx uint32, s *beaconSlot, score float64, st *beatStats) {
	nm := b.slotNames(idx, s)
	f := &b.f
	*f = Finding{
		UID:       nm.uid,
		Kind:      KindBeacon,
		Score:     score,
		SubScores: b.subs[:],
		Src:       b.hosts.addr(s.src),
		DstPort:   s.port,
		Proto:     flow.Proto(s.proto).String(),
		FQDN:      nm.fqdn,
		MITRE:     mitreFor(s),
	}
	if b.subs == ([6]SubScore{}) {
		f.SubScores = nil
	}
	if s.flags&slotName == 0 {
		f.Dst = b.dsts.addr(s.dst)
	} else {
		f.Dst = b.lastAddr // the address of the latest connection (none through a proxy)
	}
	last := uint32(0)
	if s.n > 0 {
		last = s.starts[s.at(int(s.n)-1)]
	}
	last = max(last, s.busyEnd)
	f.FirstSeen, f.LastSeen = b.time(s.first), b.time(last)
	f.Evidence = Evidence{
		Connections:    uint64(s.conns),
		Count:          uint64(s.beats),
		IntervalMedian: round3(st.period),
		IntervalMAD:    round3(st.mad),
		Coverage:       round3(st.coverage),
		BytesOut:       uint64(s.bytesOut),
		BytesIn:        uint64(s.bytesIn),
		Duration:       float64(last-s.first) / 10,
	}
	if st.period > 0 {
		f.Evidence.Jitter = round3(st.mad / st.period)
	}
	switch {
	case s.flags&slotProxy != 0:
		f.Evidence.Notes = proxyNote
	case s.flags&slotBursty != 0:
		f.Evidence.Notes = burstNote
	}
}

var (
	mitreTLS      = []string{"T1071.001", "T1573"}
	mitreWeb      = []string{"T1071.001"}
	mitreApp      = []string{"T1071"}
	proxyNote     = []string{"keyed by the name requested through an explicit proxy"}
	burstNote     = []string{"each check-in is a burst of connections"}
	longLivedNote = []string{"heartbeat inside one long-lived connection"}
)

func mitreFor(s *beaconSlot) []string {
	switch {
	case s.flags&slotTLS != 0 || s.port == 443:
		return mitreTLS
	case s.flags&slotHTTP != 0 || s.port == 80:
		return mitreWeb
	}
	return mitreApp
}
