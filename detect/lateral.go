package detect

import (
	"math"
	"net/netip"
	"strconv"
	"time"
	"unsafe"

	"github.com/flowhound/flowhound/flow"
)

// The lateral-movement detector watches internal→internal sessions of
// remote-administration protocols and scores five kinds of evidence per
// source host:
//
//   - new edges: a peer (and service) the source never used before, judged
//     against a baseline learned in the source's first Learning of observed
//     packet time. Edges first used after learning are remembered at once
//     (a new edge is news only once) but join the trusted baseline only
//     after repeated use spread over a day without any finding on them;
//     edges to shared servers (DCs, file servers: used by many sources) are
//     never news, and new peers of an "admin hub" (a source that already
//     administered several peers while learning, e.g. a jump host) over
//     services it already used count little.
//   - fan-out: new peers within Window, each weighted by how sure its
//     novelty is (without a baseline a new peer weighs a quarter).
//   - execution shapes, after MITRE BZAR: an SMB session (≥ 1 KiB sent; an
//     admin-share upload at ≥ 64 KiB) within 10 minutes of DCE/RPC to the
//     same peer (endpoint mapper 135 and/or an unidentified dynamic port ≥
//     49152) is PsExec/remote service execution; the endpoint mapper and a
//     dynamic port without such SMB is WMI/DCOM; a dynamic port alone, on a
//     pair that also speaks SMB or the endpoint mapper (in either
//     direction), is DCE/RPC. Any of these but the upload, towards a peer
//     that answers Kerberos/LDAP from a source that does not, is marked
//     DCSync-like. Shapes need no baseline, so short captures still fire;
//     towards shared servers or on long-established pairs they are damped.
//   - chains: B reached over an interactive admin protocol (RDP, SSH,
//     WinRM) or an execution shape by A, then B opening a new edge to C
//     within ChainGap of that session (A→B→C). Sources still learning get
//     no chain credit: without a baseline a pivot looks like a jump host.
//   - repetition: many short, same-sized sessions to one peer and port
//     within 2 minutes (password guessing), on admin ports and on
//     unidentified services; and two or more complete RDP sessions shorter
//     than a minute to one peer within Window (scripted RDP, e.g. SharpRDP).
//
// Sub-scores combine as independent evidence (1 − Π(1 − s)). A single new
// edge is worth at most 0.25 and the report threshold is 0.3, so novelty
// alone never reports: it takes a shape, fan-out, a chain or repetition.
// Findings are per source and episode (evidence more than an hour apart
// starts a new one); chains are their own findings, with the pivot as
// source, the next hop as destination and Evidence.Peers naming A, B, C.

// Tunables that are not in LateralConfig.
const (
	latExecWindow   = 10 * time.Minute // BZAR: admin-share write, then remote execution, within 10 min
	latBruteWindow  = 2 * time.Minute
	latBruteMin     = 20 // sessions to one peer and port within latBruteWindow
	latBruteMaxDur  = 30 * time.Second
	latScriptedDur  = time.Minute // complete RDP sessions shorter than this are scripted
	latScriptedMin  = 2
	latSessionBytes = 1000 // per direction, for a scripted RDP session
	latSMBSession   = 1024 // SMB upload that makes a real session (not a bare negotiate)
	latToolBytes    = 64 << 10
	latDynPort      = 49152
	latPopular      = 5 // distinct sources that make a (peer, service) a shared server
	latHubPeers     = 3 // learned non-shared admin peers that make a source an admin hub
	latReport       = 0.3
	latEpisodeGap   = time.Hour
	latPromoteAfter = 24 * time.Hour
	latRingMax      = 16 // evidence entries per source (one per peer)
	latInboundMax   = 4
	latLearnedMax   = 8
	latEdgesPerHost = 4 // edge table capacity per host of MaxHosts

	latWeak      = 0.25 // novelty weight without a baseline, or from an admin hub
	latNewStrong = 0.25 // new_edge sub-score for a new peer against a baseline
	latNewWeak   = 0.08
	latChainNew  = 0.75 // both hops new
	latChainKnow = 0.45 // the inbound hop was an established session
	latScripted  = 0.35
)

// latClass is the service class of an internal session.
type latClass uint8

const (
	latSMB latClass = 1 << iota // 445, 139
	latEPM                      // 135, the DCE/RPC endpoint mapper
	latDyn                      // an unidentified dynamic port (≥ 49152): DCE/RPC in context
	latRDP
	latWinRM
	latSSH
	latOther   // another configured admin port
	latUnknown // an unidentified TCP service: counted for password guessing only

	latAdmin = latSMB | latEPM | latRDP | latWinRM | latSSH | latOther // new peers here are new edges
	latHop   = latRDP | latWinRM | latSSH | latOther                   // interactive sessions that make a chain's hop
)

// latShape is a behavioural shape seen between a source and a peer.
type latShape uint8

const (
	latPsexec      latShape = 1 << iota // SMB upload, then DCE/RPC
	latSvcExec                          // SMB session, then DCE/RPC
	latWMI                              // endpoint mapper, then a dynamic port
	latRPC                              // a dynamic port on a pair that speaks SMB or EPM
	latDCSync                           // DCE/RPC to a domain controller from a non-DC
	latBrute                            // password guessing
	latScriptedRDP                      // short complete RDP sessions

	latExec = latPsexec | latSvcExec | latWMI | latRPC
)

func latShapeValue(s latShape) float64 {
	switch {
	case s&latPsexec != 0:
		return 0.9
	case s&latWMI != 0:
		return 0.75
	case s&latSvcExec != 0:
		return 0.7
	case s&latRPC != 0:
		return 0.55
	}
	return 0
}

func latBruteValue(n uint16) float64 {
	if n < latBruteMin {
		return 0
	}
	return 0.55 + 0.25*min(1, math.Log2(float64(n)/latBruteMin)/math.Log2(5))
}

// latFanValue ramps from 0.3 at FanOut/2 weighted new peers to 0.6 at
// FanOut and 0.85 at twice FanOut.
func latFanValue(n float64, fanOut int) float64 {
	f := float64(fanOut)
	lo := max(2, f/2)
	switch {
	case n < lo:
		return 0
	case n <= f:
		return 0.3 + 0.3*(n-lo)/max(f-lo, 1e-9)
	}
	return min(0.9, 0.6+0.25*(n-f)/f)
}

// Lateral is the lateral-movement detector (kind lateral_movement). Its
// memory is bounded by LateralConfig.MaxHosts: that many hosts seen, hosts
// with admin activity and shared-server counters, and four times as many
// host pairs; beyond that the least recently active entries (of a small
// sample) are evicted and counted. It is not safe for concurrent use.
type Lateral struct {
	fanOut                         int
	learning, window, chainGap     int64
	maxHosts, maxEdges             int
	ports                          []latPort
	allow                          *Allowlist
	seen                           map[latKey]latSeen
	recent                         [256]latRecent // see touch
	hosts                          map[latKey]*latHost
	edges                          map[latEdgeKey]*latEdge
	pop                            map[latPopKey]latPop
	now                            int64
	evictions                      uint64
	f                              Finding
	subs                           []SubScore
	mitre                          []string
	peers                          []netip.Addr
	evPorts                        []uint16
	notes                          []string
	execWin, bruteWin, horizonSpan int64
}

type latPort struct {
	port uint16
	cls  latClass
}

type latSeen struct {
	first int64 // earliest packet time the host was seen at
	dc    bool  // it answered Kerberos or LDAP
}

type latEdgeKey struct{ src, dst latKey }

// latEdge is what a source did to one peer.
type latEdge struct {
	first, last      int64 // session starts
	smbT, epmT, dynT int64 // latest session start per service
	bruteT, rdpT     int64 // start of the current repetition windows
	smbOut           uint32
	bruteRef         uint32
	bruteN           uint16
	brutePort        uint16
	dynPort          uint16
	rdpN             uint8
	classes          latClass // services ever used
	baseline         latClass // services learned or promoted
	flagged          bool     // part of a reported finding: never promoted
}

// latEvent is one peer's evidence in a source's ring.
type latEvent struct {
	peer        latKey
	first, last int64
	w           float32 // novelty weight: 0, latWeak or 1
	damp        float32 // execution-shape damping
	smbOut      uint32
	n           uint16 // password-guessing sessions
	port        uint16
	cls         latClass
	shape       latShape
}

// latIn is an inbound admin session: the first hop of a possible chain.
type latIn struct {
	from       latKey
	start, end int64
	port       uint16
	cls        latClass
	novel      bool
}

type latLearned struct {
	peer latKey
	cls  latClass
}

type latHost struct {
	ev      []latEvent
	in      []latIn
	learned []latLearned
	classes latClass // services learned
	last    int64
	epFirst int64
	epLast  int64
	epUID   string
}

type latPopKey struct {
	peer latKey
	cls  latClass
}

// latPop counts distinct sources of a (peer, service) up to latPopular by
// their hashes.
type latPop struct {
	n    uint8
	srcs [latPopular]uint32
}

// latPorts classifies the admin ports watched.
func latPorts(ports []uint16) []latPort {
	var out []latPort
	for _, p := range ports {
		cls := latOther
		switch p {
		case 139, 445:
			cls = latSMB
		case 135:
			cls = latEPM
		case 3389:
			cls = latRDP
		case 5985, 5986:
			cls = latWinRM
		case 22:
			cls = latSSH
		}
		out = append(out, latPort{p, cls})
	}
	return out
}

// NewLateral returns the lateral-movement detector configured by
// cfg.Lateral; cfg.Allow's addresses and pairs are never scored.
func NewLateral(cfg Config) Detector {
	lc := cfg.Lateral.normalized()
	d := &Lateral{
		fanOut: lc.FanOut, learning: int64(lc.Learning), window: int64(lc.Window), chainGap: int64(lc.ChainGap),
		maxHosts: lc.MaxHosts, maxEdges: latEdgesPerHost * lc.MaxHosts, allow: cfg.Allow,
		seen: map[latKey]latSeen{}, hosts: map[latKey]*latHost{}, edges: map[latEdgeKey]*latEdge{}, pop: map[latPopKey]latPop{},
		execWin: int64(latExecWindow), bruteWin: int64(latBruteWindow),
	}
	d.horizonSpan = max(d.window, d.chainGap, d.execWin)
	d.ports = latPorts(lc.AdminPorts)
	return d
}

// Kind returns KindLateralMovement.
func (d *Lateral) Kind() Kind { return KindLateralMovement }

// Tick advances the clock; windows close lazily, so nothing else happens.
func (d *Lateral) Tick(now time.Time, _ func(*Finding)) {
	if n := now.UnixNano(); n > d.now {
		d.now = n
	}
}

// Stats reports the tables' sizes.
func (d *Lateral) Stats() DetectorStats {
	const mapEntry = 16 // per-entry overhead of a Go map, roughly
	b := len(d.seen)*(16+16+mapEntry) + int(unsafe.Sizeof(d.recent))
	b += len(d.edges) * (32 + 8 + mapEntry + int(sizeofLatEdge))
	b += len(d.pop) * (24 + int(sizeofLatPop) + mapEntry)
	for _, h := range d.hosts {
		b += 16 + 8 + mapEntry + int(sizeofLatHost) + len(h.epUID) +
			cap(h.ev)*int(sizeofLatEvent) + cap(h.in)*int(sizeofLatIn) + cap(h.learned)*int(sizeofLatLearned)
	}
	return DetectorStats{Keys: len(d.seen) + len(d.hosts) + len(d.edges) + len(d.pop), Bytes: b, Evictions: d.evictions}
}

// Observe scores one flow record.
func (d *Lateral) Observe(r *flow.Record, propose func(*Finding)) {
	if !r.LocalOrig && !r.LocalResp {
		return
	}
	t := r.Start.UnixNano()
	if end := r.End.UnixNano(); end > d.now {
		d.now = end
	}
	// A host's observed time starts with the first record it originates
	// (or answers as a domain controller).
	var s, p latKey
	if r.LocalOrig {
		s = latKeyOf(r.OrigAddr)
		d.touch(s, t, false)
	}
	if r.LocalResp {
		p = latKeyOf(r.RespAddr)
		if r.RespBytes > 0 && latDCPort(r.RespPort) {
			d.touch(p, t, true)
		}
	}
	if !r.LocalOrig || !r.LocalResp || r.OrigBytes == 0 || r.RespBytes == 0 || s == p {
		return
	}
	cls := d.classify(r)
	if cls == 0 || d.allow.AllowedPair(r.OrigAddr, r.RespAddr) {
		return
	}
	d.session(r, s, p, cls, t, propose)
}

// latDCPort reports whether answering on port marks a domain controller:
// Kerberos, LDAP, LDAPS, the global catalog.
func latDCPort(port uint16) bool {
	return port == 88 || port == 389 || port == 636 || port == 3268 || port == 3269
}

func (d *Lateral) classify(r *flow.Record) latClass {
	switch r.Proto {
	case flow.ProtoTCP:
	case flow.ProtoUDP:
		// RDP's UDP transport rides beside a TCP session: the edge counts,
		// the session shapes do not.
		for _, ap := range d.ports {
			if ap.port == r.RespPort && ap.cls == latRDP {
				return latRDP
			}
		}
		return 0
	default:
		return 0
	}
	for _, ap := range d.ports {
		if ap.port == r.RespPort {
			return ap.cls
		}
	}
	switch r.RespPort {
	case 22, 135, 139, 445, 3389, 5985, 5986:
		return 0 // a default admin port the operator removed
	}
	// A protocol identified on an unusual port.
	switch r.Service {
	case "ssh":
		return latSSH
	case "rdp":
		return latRDP
	case "smb":
		return latSMB
	case "winrm":
		return latWinRM
	case "dce_rpc":
		return latEPM
	case "":
		if r.RespPort >= latDynPort {
			return latDyn
		}
		return latUnknown
	}
	return 0
}

// touch notes that host k was seen at t. Nearly every record touches its
// source, which nearly always changes nothing: a small direct-mapped copy
// of the seen table answers that without the map.
func (d *Lateral) touch(k latKey, t int64, dc bool) {
	c := &d.recent[k.hash()%uint64(len(d.recent))]
	if c.live && c.k == k && t >= c.v.first && (c.v.dc || !dc) {
		return
	}
	v, ok := d.seen[k]
	if ok && t >= v.first && (v.dc || !dc) {
		*c = latRecent{k: k, v: v, live: true}
		return
	}
	if !ok {
		if len(d.seen) >= d.maxHosts {
			d.evictSeen()
		}
		v.first = t
	}
	v.first = min(v.first, t)
	v.dc = v.dc || dc
	d.seen[k] = v
	*c = latRecent{k: k, v: v, live: true}
}

// latRecent is a copy of a seen entry (see touch).
type latRecent struct {
	k    latKey
	v    latSeen
	live bool
}

func (d *Lateral) learningAt(k latKey, t int64) bool {
	v, ok := d.seen[k]
	return !ok || t < v.first+d.learning
}

func (d *Lateral) host(k latKey, t int64) *latHost {
	h := d.hosts[k]
	if h == nil {
		if len(d.hosts) >= d.maxHosts {
			d.evictHost()
		}
		h = &latHost{}
		d.hosts[k] = h
	}
	h.last = max(h.last, t)
	return h
}

func (d *Lateral) edge(s, p latKey, t int64) *latEdge {
	k := latEdgeKey{s, p}
	if e := d.edges[k]; e != nil {
		return e
	}
	if len(d.edges) >= d.maxEdges {
		d.evictEdge()
	}
	e := &latEdge{first: t, last: t}
	d.edges[k] = e
	return e
}

// Evictions take the least recently active of a few entries that map
// iteration yields first (sampled LRU). Replays stay deterministic as long
// as the tables stay under their caps.
const latEvictSample = 8

func (d *Lateral) evictSeen() {
	var victim latKey
	var newest int64 = math.MinInt64
	i := 0
	for k, v := range d.seen {
		if v.first > newest { // the youngest host has the least baseline to lose
			victim, newest = k, v.first
		}
		if i++; i == latEvictSample {
			break
		}
	}
	delete(d.seen, victim)
	if c := &d.recent[victim.hash()%uint64(len(d.recent))]; c.k == victim {
		*c = latRecent{}
	}
	d.evictions++
}

func (d *Lateral) evictHost() {
	var victim latKey
	var oldest int64 = math.MaxInt64
	i := 0
	for k, h := range d.hosts {
		if h.last < oldest {
			victim, oldest = k, h.last
		}
		if i++; i == latEvictSample {
			break
		}
	}
	delete(d.hosts, victim)
	d.evictions++
}

func (d *Lateral) evictEdge() {
	var victim latEdgeKey
	var oldest int64 = math.MaxInt64
	i := 0
	for k, e := range d.edges {
		if e.last < oldest {
			victim, oldest = k, e.last
		}
		if i++; i == latEvictSample {
			break
		}
	}
	delete(d.edges, victim)
	d.evictions++
}

// popAdd counts src as a user of (peer, cls) and returns the distinct
// count, at most latPopular.
func (d *Lateral) popAdd(peer latKey, cls latClass, src latKey) int {
	k := latPopKey{peer, cls}
	v, ok := d.pop[k]
	if !ok && len(d.pop) >= d.maxHosts {
		for k := range d.pop {
			delete(d.pop, k)
			break
		}
		d.evictions++
	}
	h := uint32(src.hash()) | 1
	for _, x := range v.srcs[:v.n] {
		if x == h {
			return int(v.n)
		}
	}
	if v.n < latPopular {
		v.srcs[v.n] = h
		v.n++
		d.pop[k] = v
	}
	return int(v.n)
}

func (d *Lateral) popular(peer latKey, cls latClass) bool {
	return d.pop[latPopKey{peer, cls}].n >= latPopular
}

// hub reports whether h administered several non-shared peers while
// learning (a jump host, a management server).
func (d *Lateral) hub(h *latHost) bool {
	n := 0
	for i, l := range h.learned {
		dup := false
		for _, m := range h.learned[:i] {
			dup = dup || m.peer == l.peer
		}
		if !dup && !d.popular(l.peer, l.cls) {
			n++
		}
	}
	return n >= latHubPeers
}

// learn adds a baseline edge; shared servers never make a hub, so they are
// not kept.
func (h *latHost) learn(peer latKey, cls latClass, shared bool) {
	h.classes |= cls
	if !shared && len(h.learned) < latLearnedMax {
		h.learned = append(h.learned, latLearned{peer, cls})
	}
}

// session handles one internal session with payload both ways.
func (d *Lateral) session(r *flow.Record, s, p latKey, cls latClass, t int64, propose func(*Finding)) {
	e := d.edge(s, p, t)
	e.last = max(e.last, t)
	e.first = min(e.first, t)
	port := r.RespPort
	switch cls {
	case latSMB:
		if e.smbT == 0 || latAbsDiff(t, e.smbT) > d.execWin {
			e.smbOut = 0
		}
		e.smbT = max(e.smbT, t)
		e.smbOut = max(e.smbOut, latSat32(r.OrigBytes))
	case latEPM:
		e.epmT = max(e.epmT, t)
	case latDyn:
		e.dynT = max(e.dynT, t)
		e.dynPort = port
	}

	// Novelty.
	var w float32
	novel := false
	if cls&latAdmin != 0 {
		if e.classes&cls == 0 {
			e.classes |= cls
			novel = true
			w = d.novelty(s, p, cls, t, e)
		} else if e.baseline&cls == 0 && !e.flagged && e.last-e.first >= int64(latPromoteAfter) {
			e.baseline |= cls // repeated use over a day without a finding
			d.host(s, t).learn(p, cls, d.popular(p, cls))
		}
	} else {
		e.classes |= cls
	}
	if novel && w > 0 {
		h := d.host(s, t)
		if h.merge(latEvent{peer: p, first: t, last: t, w: w, cls: cls, port: port, damp: 1}, d.horizonSpan) {
			if w >= 1 {
				d.chainOut(h, s, p, t, propose)
			}
			d.score(s, h, t, propose)
		}
	}

	// A hop into p for later chains.
	if cls&latHop != 0 {
		d.hopIn(p, s, t, r.End.UnixNano(), port, cls, novel && w >= 1, propose)
	}

	// Execution shapes, both ways: the reverse pair may have been waiting
	// for this session as its context (the DC connects back over SMB).
	if cls&(latSMB|latEPM|latDyn) != 0 {
		if sh := d.execShape(s, p, e, t); sh != 0 {
			d.shapeEvent(s, p, e, sh, t, port, 0, propose)
		}
		if cls != latDyn {
			if er := d.edges[latEdgeKey{p, s}]; er != nil && er.dynT != 0 && latAbsDiff(t, er.dynT) <= d.execWin {
				if sh := d.execShape(p, s, er, er.dynT); sh != 0 {
					d.shapeEvent(p, s, er, sh, er.dynT, er.dynPort, 0, propose)
				}
			}
		}
	}

	if !r.Final {
		return
	}
	dur := r.End.Sub(r.Start)
	// Password guessing: many short sessions of about the same size.
	if cls&(latAdmin|latUnknown) != 0 && dur <= latBruteMaxDur {
		b := latSat32(r.OrigBytes)
		if e.bruteN == 0 || port != e.brutePort || latAbsDiff(t, e.bruteT) > d.bruteWin {
			e.bruteN, e.bruteT, e.brutePort, e.bruteRef = 0, t, port, 0
		}
		if e.bruteRef == 0 && b > 64 {
			e.bruteRef = b
		}
		if b <= 64 || e.bruteRef == 0 || (4*uint64(b) >= 3*uint64(e.bruteRef) && 4*uint64(b) <= 5*uint64(e.bruteRef)) {
			e.bruteN = min(e.bruteN+1, math.MaxUint16)
			if n := e.bruteN; n >= latBruteMin && n%latBruteMin == 0 {
				d.shapeEvent(s, p, e, latBrute, e.bruteT, port, n, propose)
			}
		}
	}
	// Scripted RDP: complete logons that last seconds.
	if cls == latRDP && r.Proto == flow.ProtoTCP && dur < latScriptedDur &&
		r.OrigBytes >= latSessionBytes && r.RespBytes >= latSessionBytes {
		if e.rdpN == 0 || latAbsDiff(t, e.rdpT) > d.window {
			e.rdpN, e.rdpT = 0, t
		}
		if e.rdpN < math.MaxUint8 {
			e.rdpN++
		}
		if e.rdpN == latScriptedMin {
			d.shapeEvent(s, p, e, latScriptedRDP, e.rdpT, port, 0, propose)
		}
	}
}

// novelty weighs a new (peer, service) of s: 1 against a baseline, latWeak
// while s is learning or when s is an admin hub using a service it already
// used, 0 for a shared server. Edges seen while learning join the baseline.
func (d *Lateral) novelty(s, p latKey, cls latClass, t int64, e *latEdge) float32 {
	shared := d.popAdd(p, cls, s) >= latPopular
	if cls&(latSMB|latEPM) != 0 {
		// A Windows server everyone uses for files is also everyone's
		// RPC server.
		shared = shared || d.popular(p, latSMB) || d.popular(p, latEPM)
	}
	h := d.host(s, t)
	switch {
	case d.learningAt(s, t):
		e.baseline |= cls
		h.learn(p, cls, shared)
		if shared {
			return 0
		}
		return latWeak
	case shared:
		return 0
	case h.classes&cls != 0 && d.hub(h):
		return latWeak
	}
	return 1
}

// execShape returns the execution shape of s→p around t, if any.
func (d *Lateral) execShape(s, p latKey, e *latEdge, t int64) latShape {
	smb := d.near(e.smbT, t) && e.smbOut >= latSMBSession
	epm, dyn := d.near(e.epmT, t), d.near(e.dynT, t)
	var sh latShape
	switch {
	case smb && (epm || dyn):
		sh = latSvcExec
		if e.smbOut >= latToolBytes {
			sh = latPsexec
		}
	case epm && dyn:
		sh = latWMI
	case dyn:
		if rev := d.edges[latEdgeKey{p, s}]; rev != nil && (d.near(rev.smbT, t) || d.near(rev.epmT, t)) {
			sh = latRPC
		}
	}
	if sh != 0 && sh != latPsexec && d.seen[p].dc && !d.seen[s].dc {
		sh |= latDCSync
	}
	return sh
}

func (d *Lateral) near(x, t int64) bool { return x != 0 && latAbsDiff(x, t) <= d.execWin }

// shapeEvent records a shape of s→p and rescores s.
func (d *Lateral) shapeEvent(s, p latKey, e *latEdge, sh latShape, t int64, port, n uint16, propose func(*Finding)) {
	damp := float32(1)
	if sh&latExec != 0 {
		// Windows clients speak SMB and DCE/RPC to their DCs and file
		// servers all day; an established pair or a shared server is not
		// remote execution on its own.
		switch {
		case d.popular(p, latSMB) || d.popular(p, latEPM):
			damp = 0.25 // alone, below the report threshold
		case e.baseline&(latSMB|latEPM) != 0 && e.first < t-d.execWin:
			damp = 0.5
		}
	}
	h := d.host(s, t)
	if !h.merge(latEvent{peer: p, first: t, last: t, damp: damp, smbOut: e.smbOut, n: n, port: port, shape: sh}, d.horizonSpan) {
		return
	}
	if sh&latExec != 0 && damp >= 0.5 {
		d.hopIn(p, s, t, t, port, latEPM, true, propose)
	}
	d.score(s, h, t, propose)
}

// merge adds ev to the ring (one entry per peer and horizon) and reports
// whether anything new was learned.
func (h *latHost) merge(ev latEvent, horizon int64) bool {
	for i := range h.ev {
		x := &h.ev[i]
		if x.peer != ev.peer || ev.first > x.last+horizon || ev.last < x.first-horizon {
			continue
		}
		changed := ev.w > x.w || ev.shape&^x.shape != 0 || ev.cls&^x.cls != 0 || ev.n > x.n || ev.smbOut > x.smbOut
		x.w = max(x.w, ev.w)
		x.shape |= ev.shape
		x.cls |= ev.cls
		x.n = max(x.n, ev.n)
		x.smbOut = max(x.smbOut, ev.smbOut)
		x.first = min(x.first, ev.first)
		x.last = max(x.last, ev.last)
		if ev.shape != 0 {
			x.damp = min(x.damp, ev.damp)
		}
		if x.port == 0 {
			x.port = ev.port
		}
		return changed
	}
	if len(h.ev) < latRingMax {
		h.ev = append(h.ev, ev)
		return true
	}
	oldest := 0
	for i := range h.ev {
		if h.ev[i].last < h.ev[oldest].last {
			oldest = i
		}
	}
	h.ev[oldest] = ev
	return true
}

// hopIn remembers that a reached b over an interactive admin session (or
// an execution shape) during [start, end] and looks for b's new edges that
// followed. A session more than ChainGap after a's previous one starts a
// new hop.
func (d *Lateral) hopIn(b, a latKey, start, end int64, port uint16, cls latClass, novel bool, propose func(*Finding)) {
	h := d.host(b, start)
	fresh := latIn{from: a, start: start, end: end, port: port, cls: cls, novel: novel}
	var in *latIn
	for i := range h.in {
		if h.in[i].from == a {
			in = &h.in[i]
			break
		}
	}
	switch {
	case in != nil && (start > in.end+d.chainGap || end < in.start-d.chainGap):
		*in = fresh
	case in != nil:
		changed := novel && !in.novel || start < in.start
		in.start, in.end = min(in.start, start), max(in.end, end)
		in.novel = in.novel || novel
		if cls&latHop != 0 {
			in.cls, in.port = cls, port
		}
		if !changed {
			return
		}
	case len(h.in) < latInboundMax:
		h.in = append(h.in, fresh)
		in = &h.in[len(h.in)-1]
	default:
		oldest := 0
		for i := range h.in {
			if h.in[i].end < h.in[oldest].end {
				oldest = i
			}
		}
		h.in[oldest] = fresh
		in = &h.in[oldest]
	}
	d.proposeChain(in, b, h, propose)
}

// chainOut: b just opened a new edge to c; was b reached shortly before?
func (d *Lateral) chainOut(h *latHost, b, c latKey, t int64, propose func(*Finding)) {
	for i := range h.in {
		if in := &h.in[i]; in.from != c && t >= in.start && t <= in.end+d.chainGap {
			d.proposeChain(in, b, h, propose)
		}
	}
}

// proposeChain proposes the chain through b that starts with hop in: one
// finding per (A, B, hop) naming A, B and every new peer C of b that
// followed within ChainGap.
func (d *Lateral) proposeChain(in *latIn, b latKey, h *latHost, propose func(*Finding)) {
	f := d.reset()
	a, ba := in.from.addr(), b.addr()
	peers := append(d.peers[:0], a, ba)
	var cls latClass
	var port uint16
	var first, last int64
	n := 0
	for i := range h.ev {
		ev := &h.ev[i]
		if ev.w < 1 || ev.peer == in.from || ev.first < in.start || ev.first > in.end+d.chainGap {
			continue
		}
		if n == 0 || ev.first < first {
			first, port = ev.first, ev.port
		}
		last = max(last, ev.first)
		cls |= ev.cls
		peers = append(peers, ev.peer.addr())
		n++
	}
	d.peers = peers
	if n == 0 {
		return
	}
	value := latChainKnow
	if in.novel {
		value = latChainNew
	}
	fan := latFanValue(float64(n), d.fanOut)
	f.UID = FindingUID(KindLateralMovement, "chain", a.String(), ba.String(), strconv.FormatInt(in.start/int64(time.Second), 10))
	f.Src, f.Proto = ba, "tcp"
	if n == 1 {
		f.Dst, f.DstPort = peers[2], port
	}
	f.Score = 1 - (1-value)*(1-latNewStrong)*(1-fan)
	f.SubScores = append(d.subs[:0], SubScore{"new_edge", latNewStrong}, SubScore{"fan_out", fan},
		SubScore{"exec_shape", 0}, SubScore{"chain", value})
	d.subs = f.SubScores
	f.Evidence.Peers = peers
	f.Evidence.Ports = append(d.evPorts[:0], in.port, port)
	d.evPorts = f.Evidence.Ports
	f.Evidence.Count = uint64(n)
	note := "chain " + a.String() + " → " + ba.String() + " (" + latClassName(in.cls) + ") → " + peers[2].String() +
		" (" + latClassName(cls) + "), " + strconv.FormatInt((first-in.start)/int64(time.Second), 10) + " s after the first hop began"
	if n > 1 {
		note += ", and " + strconv.Itoa(n-1) + " more new peers"
	}
	f.Evidence.Notes = append(d.notes[:0], note)
	d.notes = f.Evidence.Notes
	f.MITRE = latMITRE(d.mitre[:0], in.cls|cls, 0)
	d.mitre = f.MITRE
	f.FirstSeen, f.LastSeen = time.Unix(0, in.start).UTC(), time.Unix(0, max(last, in.end)).UTC()
	for _, p := range peers[2:] {
		if e := d.edges[latEdgeKey{b, latKeyOf(p)}]; e != nil {
			e.flagged = true
		}
	}
	propose(f)
}

// latScore is a source's evidence within a window.
type latScore struct {
	newEdge, fanOut, exec, brute, scripted, total float64
	fan                                           float64
	shapes                                        latShape
	cls                                           latClass
	first, last                                   int64
	novel                                         int
	smbOut                                        uint32
	bruteN                                        uint16
}

// score rescores source s around t and proposes its finding when the score
// reaches latReport.
func (d *Lateral) score(s latKey, h *latHost, t int64, propose func(*Finding)) {
	var sc latScore
	var maxW float32
	sc.first, sc.last = math.MaxInt64, math.MinInt64
	for i := range h.ev {
		ev := &h.ev[i]
		if !d.inWindow(ev, t) {
			continue
		}
		if ev.w > 0 {
			maxW = max(maxW, ev.w)
			sc.fan += float64(ev.w)
			sc.novel++
		}
		if ev.w >= 1 || ev.shape != 0 {
			sc.cls |= ev.cls
		}
		sc.shapes |= ev.shape
		sc.exec = max(sc.exec, latShapeValue(ev.shape)*float64(ev.damp))
		sc.brute = max(sc.brute, latBruteValue(ev.n))
		if ev.shape&latScriptedRDP != 0 {
			sc.scripted = latScripted
		}
		sc.smbOut = max(sc.smbOut, ev.smbOut)
		sc.bruteN = max(sc.bruteN, ev.n)
		sc.first, sc.last = min(sc.first, ev.first), max(sc.last, ev.last)
	}
	switch {
	case maxW >= 1:
		sc.newEdge = latNewStrong
	case maxW > 0:
		sc.newEdge = latNewWeak
	}
	sc.fanOut = latFanValue(sc.fan, d.fanOut)
	sc.total = 1 - (1-sc.newEdge)*(1-sc.fanOut)*(1-sc.exec)*(1-sc.brute)*(1-sc.scripted)
	if sc.total < latReport {
		return
	}
	if h.epUID == "" || sc.first > h.epLast+int64(latEpisodeGap) {
		h.epFirst = sc.first
		h.epUID = FindingUID(KindLateralMovement, s.addr().String(), strconv.FormatInt(sc.first/int64(time.Second), 10))
	}
	h.epFirst = min(h.epFirst, sc.first)
	h.epLast = max(h.epLast, sc.last)
	d.proposeSource(s, h, &sc, t, propose)
}

func (d *Lateral) inWindow(ev *latEvent, t int64) bool {
	return ev.last >= t-d.window && ev.first <= t+d.window
}

func (d *Lateral) proposeSource(s latKey, h *latHost, sc *latScore, t int64, propose func(*Finding)) {
	f := d.reset()
	f.UID = h.epUID
	f.Src, f.Proto = s.addr(), "tcp"
	f.Score = sc.total
	peers, ports, notes := d.peers[:0], d.evPorts[:0], d.notes[:0]
	var port uint16
	for i := range h.ev {
		ev := &h.ev[i]
		if !d.inWindow(ev, t) || (ev.w == 0 && ev.shape == 0) {
			continue
		}
		if e := d.edges[latEdgeKey{s, ev.peer}]; e != nil {
			e.flagged = true
		}
		pa := ev.peer.addr()
		peers = append(peers, pa)
		port = ev.port
		dup := false
		for _, q := range ports {
			dup = dup || q == ev.port
		}
		if !dup && ev.port != 0 {
			ports = append(ports, ev.port)
		}
		if ev.shape != 0 {
			notes = append(notes, latShapeNote(ev, pa))
		}
	}
	if len(peers) == 1 {
		f.Dst, f.DstPort = peers[0], port
	}
	if sc.novel > 1 {
		notes = append(notes, strconv.Itoa(sc.novel)+" new admin peers within "+time.Duration(d.window).String())
	}
	f.SubScores = append(d.subs[:0], SubScore{"new_edge", sc.newEdge}, SubScore{"fan_out", sc.fanOut},
		SubScore{"exec_shape", sc.exec}, SubScore{"chain", 0})
	if sc.brute > 0 {
		f.SubScores = append(f.SubScores, SubScore{"brute_force", sc.brute})
	}
	if sc.scripted > 0 {
		f.SubScores = append(f.SubScores, SubScore{"scripted_rdp", sc.scripted})
	}
	f.Evidence.Peers, f.Evidence.Ports, f.Evidence.Notes = peers, ports, notes
	f.Evidence.Count = uint64(sc.novel)
	f.Evidence.Connections = uint64(sc.bruteN)
	f.Evidence.BytesOut = uint64(sc.smbOut)
	f.MITRE = latMITRE(d.mitre[:0], sc.cls, sc.shapes)
	d.subs, d.peers, d.evPorts, d.notes, d.mitre = f.SubScores, peers, ports, notes, f.MITRE
	f.FirstSeen, f.LastSeen = time.Unix(0, h.epFirst).UTC(), time.Unix(0, max(h.epLast, sc.last)).UTC()
	propose(f)
}

// reset returns the detector's scratch finding, cleared. Proposed findings
// are only valid during the propose call.
func (d *Lateral) reset() *Finding {
	d.f = Finding{Kind: KindLateralMovement, Time: time.Unix(0, d.now).UTC()}
	return &d.f
}

func latShapeNote(ev *latEvent, peer netip.Addr) string {
	p := peer.String()
	var s string
	switch {
	case ev.shape&latPsexec != 0:
		s = "PsExec-like: SMB upload of " + strconv.FormatUint(uint64(ev.smbOut), 10) + " B then DCE/RPC to " + p
	case ev.shape&latSvcExec != 0:
		s = "SMB then DCE/RPC to " + p + " (remote service execution)"
	case ev.shape&latWMI != 0:
		s = "endpoint mapper then a dynamic RPC port on " + p + " (WMI/DCOM execution)"
	case ev.shape&latRPC != 0:
		s = "DCE/RPC on a dynamic port of " + p + ", which also speaks SMB with the source"
	case ev.shape&latBrute != 0:
		s = strconv.Itoa(int(ev.n)) + " short same-sized sessions to " + p + ":" + strconv.Itoa(int(ev.port)) +
			" within " + latBruteWindow.String() + " (password guessing)"
	case ev.shape&latScriptedRDP != 0:
		s = "several complete RDP sessions to " + p + " each shorter than " + latScriptedDur.String() + " (scripted RDP)"
	}
	if ev.shape&latDCSync != 0 {
		s += "; the peer is a domain controller (DCSync-like)"
	}
	if ev.damp < 1 {
		s += "; damped: established pair or shared server"
	}
	return s
}

func latClassName(c latClass) string {
	switch {
	case c&latRDP != 0:
		return "rdp"
	case c&latSSH != 0:
		return "ssh"
	case c&latWinRM != 0:
		return "winrm"
	case c&latSMB != 0:
		return "smb"
	case c&latEPM != 0:
		return "dce_rpc"
	}
	return "admin"
}

// latMITRE appends the ATT&CK techniques of the services and shapes.
func latMITRE(dst []string, cls latClass, sh latShape) []string {
	n := len(dst)
	if cls&latRDP != 0 || sh&latScriptedRDP != 0 {
		dst = append(dst, "T1021.001")
	}
	if cls&latSMB != 0 || sh&(latPsexec|latSvcExec) != 0 {
		dst = append(dst, "T1021.002")
	}
	if cls&latSSH != 0 {
		dst = append(dst, "T1021.004")
	}
	if cls&latWinRM != 0 {
		dst = append(dst, "T1021.006")
	}
	if sh&latWMI != 0 {
		dst = append(dst, "T1047")
	}
	if sh&(latPsexec|latSvcExec) != 0 {
		dst = append(dst, "T1569.002")
	}
	if sh&latPsexec != 0 {
		dst = append(dst, "T1570")
	}
	if sh&latDCSync != 0 {
		dst = append(dst, "T1003.006")
	}
	if sh&latBrute != 0 {
		dst = append(dst, "T1110.001")
	}
	if len(dst) == n || sh&latRPC != 0 && sh&latDCSync == 0 {
		dst = append(dst, "T1021")
	}
	return dst
}

// Entry sizes for Stats.
const (
	sizeofLatEdge    = unsafe.Sizeof(latEdge{})
	sizeofLatPop     = unsafe.Sizeof(latPop{})
	sizeofLatHost    = unsafe.Sizeof(latHost{})
	sizeofLatEvent   = unsafe.Sizeof(latEvent{})
	sizeofLatIn      = unsafe.Sizeof(latIn{})
	sizeofLatLearned = unsafe.Sizeof(latLearned{})
)

func latSat32(v uint64) uint32 {
	if v > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}
