package detect

import (
	"math"
	"net/netip"
	"slices"
	"strconv"
	"time"
	"unsafe"

	"github.com/flowhound/flowhound/flow"
)

// The scan detector counts, per internal source, failed or probing TCP
// attempts: unanswered (S0, SH, SHR), rejected (REJ, RSTOS0, RSTRH), and
// handshakes torn down before the originator sent a byte (RSTO, RSTR with at
// most a banner back, OTH without payload). Completed sessions (SF, S1, ...)
// never count, so a busy client is not a scanner however many peers it has.
//
// Per source it tracks a few targets (distinct ports per host: vertical)
// and a few ports (distinct hosts per port: horizontal), each with a
// 512-bit linear-counting bitmap per window and the previous window's,
// so a count covers the last one to two Windows in 64–128 bytes. A
// vertical scan is reported at ScanConfig.Vertical distinct ports on one
// host (default 50: nmap's top-1000 scan gets there within a second; a
// client retrying a dead service a handful of ports never does); a
// horizontal one at ScanConfig.Horizontal hosts on one port (default 30)
// inside the home networks, and four times that towards the Internet, where
// blocked egress makes unanswered SYNs to many hosts ordinary. Inbound
// scans from the Internet are background noise and are not reported. UDP is
// left out: traceroute, NetBIOS and blocked QUIC look like UDP scans.
//
// The score is 0.55 at the threshold, rising with log(count/threshold) to
// 0.85 at 20 times it. Allowlisted sources and pairs are skipped.

const (
	scanSlots         = 4 // targets and ports tracked per source
	scanSamplePorts   = 16
	scanSampleHosts   = 8
	scanExternalRatio = 4
	scanEvictSample   = 8
)

// Scan is the scan detector (kind scan). Memory is bounded by
// ScanConfig.MaxHosts sources, each with at most four targets and four
// ports; beyond that the least recently active source (of a small sample)
// or slot is evicted and counted. It is not safe for concurrent use.
type Scan struct {
	vertical, horizontal int
	window               int64
	maxHosts             int
	allow                *Allowlist
	srcs                 map[latKey]*scanSrc
	now                  int64
	evictions            uint64
	f                    Finding
	subs                 []SubScore
	ports                []uint16
	peers                []netip.Addr
	notes                []string
	mitre                []string
}

type scanSrc struct {
	vert  []scanVert
	horiz []scanHoriz
	last  int64
}

// scanWin counts distinct values over the current and previous window.
// ones is the bit count of cur|prev, kept as values arrive; next is the bit
// count at which the next proposal is due.
type scanWin struct {
	start, last, winStart int64
	attempts              uint32
	ones, next            uint16
	cur, prev             latDistinct
}

func (w *scanWin) reset(t int64, thr float64) {
	*w = scanWin{start: t, last: t, winStart: t, next: uint16(latBitsFor(thr))}
}

// add counts value hash h at t and reports whether the count reached the
// next proposal.
func (w *scanWin) add(h uint64, t, win int64) bool {
	if t-w.winStart >= win {
		if t-w.winStart >= 2*win {
			w.prev = latDistinct{}
		} else {
			w.prev = w.cur
		}
		w.cur = latDistinct{}
		w.winStart = t
		w.ones = uint16(w.prev.ones())
	}
	if !w.cur.has(h) {
		if !w.prev.has(h) {
			w.ones++
		}
		w.cur.add(h)
	}
	w.attempts++
	w.last = max(w.last, t)
	w.start = min(w.start, t)
	return w.ones >= w.next
}

// proposed notes a proposal at estimate est: the next one is due a quarter
// higher.
func (w *scanWin) proposed(est float64) { w.next = uint16(max(latBitsFor(1.25*est), int(w.ones)+1)) }

func (w *scanWin) estimate() float64 { return latLinearCount(int(w.ones)) }

type scanVert struct {
	host     latKey
	external bool
	ns       uint8
	scanWin
	sample [scanSamplePorts]uint16
}

type scanHoriz struct {
	port     uint16
	external bool
	ns       uint8
	scanWin
	sample [scanSampleHosts]latKey
}

// NewScan returns the scan detector configured by cfg.Scan.
func NewScan(cfg Config) Detector {
	sc := cfg.Scan.normalized()
	return &Scan{vertical: sc.Vertical, horizontal: sc.Horizontal, window: int64(sc.Window), maxHosts: sc.MaxHosts,
		allow: cfg.Allow, srcs: map[latKey]*scanSrc{}}
}

// Kind returns KindScan.
func (d *Scan) Kind() Kind { return KindScan }

// Tick advances the clock; windows rotate lazily.
func (d *Scan) Tick(now time.Time, _ func(*Finding)) {
	if n := now.UnixNano(); n > d.now {
		d.now = n
	}
}

// Stats reports the source table's size.
func (d *Scan) Stats() DetectorStats {
	b := 0
	for _, s := range d.srcs {
		b += 16 + 8 + 16 + int(unsafe.Sizeof(scanSrc{})) +
			cap(s.vert)*int(unsafe.Sizeof(scanVert{})) + cap(s.horiz)*int(unsafe.Sizeof(scanHoriz{}))
	}
	return DetectorStats{Keys: len(d.srcs), Bytes: b, Evictions: d.evictions}
}

// scanProbe reports whether r is a failed or probing TCP attempt.
func scanProbe(r *flow.Record) bool {
	if r.Proto != flow.ProtoTCP || !r.Final {
		return false
	}
	switch r.ConnState {
	case "S0", "REJ", "RSTOS0", "RSTRH", "SH", "SHR":
		return true
	case "RSTO", "RSTR":
		return r.OrigBytes == 0 && r.RespBytes <= 128
	case "OTH":
		return r.OrigBytes == 0 && r.RespBytes == 0
	}
	return false
}

// Observe counts one record.
func (d *Scan) Observe(r *flow.Record, propose func(*Finding)) {
	if !r.LocalOrig || !scanProbe(r) {
		return
	}
	t := r.Start.UnixNano()
	if end := r.End.UnixNano(); end > d.now {
		d.now = end
	}
	if d.allow.AllowedPair(r.OrigAddr, r.RespAddr) {
		return
	}
	sk, dk := latKeyOf(r.OrigAddr), latKeyOf(r.RespAddr)
	ext := !r.LocalResp
	src := d.src(sk, t)

	v := d.vertSlot(src, dk, ext, t)
	if int(v.ns) < len(v.sample) && !slices.Contains(v.sample[:v.ns], r.RespPort) {
		v.sample[v.ns] = r.RespPort
		v.ns++
	}
	if v.add(latMix(uint64(r.RespPort)+0x51ed27), t, d.window) {
		est := v.estimate()
		v.proposed(est)
		d.proposeVertical(sk, v, est, propose)
	}

	h := d.horizSlot(src, r.RespPort, ext, t)
	if int(h.ns) < len(h.sample) && !slices.Contains(h.sample[:h.ns], dk) {
		h.sample[h.ns] = dk
		h.ns++
	}
	if h.add(dk.hash(), t, d.window) {
		est := h.estimate()
		h.proposed(est)
		d.proposeHorizontal(sk, h, est, d.horizThreshold(ext), propose)
	}
}

func (d *Scan) horizThreshold(ext bool) float64 {
	if ext {
		return float64(d.horizontal * scanExternalRatio)
	}
	return float64(d.horizontal)
}

func (d *Scan) src(k latKey, t int64) *scanSrc {
	s := d.srcs[k]
	if s == nil {
		if len(d.srcs) >= d.maxHosts {
			var victim latKey
			var oldest int64 = math.MaxInt64
			i := 0
			for k, s := range d.srcs {
				if s.last < oldest {
					victim, oldest = k, s.last
				}
				if i++; i == scanEvictSample {
					break
				}
			}
			delete(d.srcs, victim)
			d.evictions++
		}
		s = &scanSrc{}
		d.srcs[k] = s
	}
	s.last = max(s.last, t)
	return s
}

// vertSlot returns the slot of target host k, starting a new episode when
// the old one went quiet for a window, and replacing the least recently
// active slot when all are taken.
func (d *Scan) vertSlot(s *scanSrc, k latKey, ext bool, t int64) *scanVert {
	for i := range s.vert {
		v := &s.vert[i]
		if v.host == k {
			if t-v.last > d.window {
				v.reset(t, float64(d.vertical))
				v.ns = 0
			}
			return v
		}
	}
	if len(s.vert) < scanSlots {
		s.vert = append(s.vert, scanVert{})
	} else {
		old := 0
		for i := range s.vert {
			if s.vert[i].last < s.vert[old].last {
				old = i
			}
		}
		if o := &s.vert[old]; o.attempts > 1 && t-o.last <= d.window {
			d.evictions++ // a live count is lost; single probes churning through are not news
		}
		s.vert[old], s.vert[len(s.vert)-1] = s.vert[len(s.vert)-1], s.vert[old]
	}
	v := &s.vert[len(s.vert)-1]
	*v = scanVert{host: k, external: ext}
	v.reset(t, float64(d.vertical))
	return v
}

func (d *Scan) horizSlot(s *scanSrc, port uint16, ext bool, t int64) *scanHoriz {
	for i := range s.horiz {
		h := &s.horiz[i]
		if h.port == port && h.external == ext {
			if t-h.last > d.window {
				h.reset(t, d.horizThreshold(ext))
				h.ns = 0
			}
			return h
		}
	}
	if len(s.horiz) < scanSlots {
		s.horiz = append(s.horiz, scanHoriz{})
	} else {
		old := 0
		for i := range s.horiz {
			if s.horiz[i].last < s.horiz[old].last {
				old = i
			}
		}
		if o := &s.horiz[old]; o.attempts > 1 && t-o.last <= d.window {
			d.evictions++ // a live count is lost; single probes churning through are not news
		}
		s.horiz[old], s.horiz[len(s.horiz)-1] = s.horiz[len(s.horiz)-1], s.horiz[old]
	}
	h := &s.horiz[len(s.horiz)-1]
	*h = scanHoriz{port: port, external: ext}
	h.reset(t, d.horizThreshold(ext))
	return h
}

func scanBreadth(est, thr float64) float64 {
	return max(0, min(1, math.Log(est/thr)/math.Log(20)))
}

func (d *Scan) reset() *Finding {
	d.f = Finding{Kind: KindScan, Time: time.Unix(0, d.now).UTC(), Proto: "tcp"}
	return &d.f
}

func (d *Scan) proposeVertical(s latKey, v *scanVert, est float64, propose func(*Finding)) {
	b := scanBreadth(est, float64(d.vertical))
	src, dst := s.addr(), v.host.addr()
	f := d.reset()
	f.UID = FindingUID(KindScan, src.String(), "vertical", dst.String(), strconv.FormatInt(v.start/int64(time.Second), 10))
	f.Src, f.Dst = src, dst
	f.Score = 0.55 + 0.3*b
	f.SubScores = append(d.subs[:0], SubScore{"vertical", b}, SubScore{"horizontal", 0})
	f.Evidence.Count = uint64(math.Round(est))
	f.Evidence.Connections = uint64(v.attempts)
	f.Evidence.Ports = append(d.ports[:0], v.sample[:v.ns]...)
	slices.Sort(f.Evidence.Ports)
	f.Evidence.Duration = float64(v.last-v.start) / 1e9
	f.Evidence.Notes = append(d.notes[:0], "about "+strconv.Itoa(int(math.Round(est)))+" distinct ports probed on "+dst.String())
	f.MITRE = append(d.mitre[:0], "T1046")
	d.subs, d.ports, d.notes, d.mitre = f.SubScores, f.Evidence.Ports, f.Evidence.Notes, f.MITRE
	f.FirstSeen, f.LastSeen = time.Unix(0, v.start).UTC(), time.Unix(0, v.last).UTC()
	propose(f)
}

func (d *Scan) proposeHorizontal(s latKey, h *scanHoriz, est, thr float64, propose func(*Finding)) {
	b := scanBreadth(est, thr)
	src := s.addr()
	f := d.reset()
	where := "internal"
	if h.external {
		where = "external"
	}
	f.UID = FindingUID(KindScan, src.String(), "horizontal", where, strconv.Itoa(int(h.port)), strconv.FormatInt(h.start/int64(time.Second), 10))
	f.Src, f.DstPort = src, h.port
	f.Score = 0.55 + 0.3*b
	f.SubScores = append(d.subs[:0], SubScore{"vertical", 0}, SubScore{"horizontal", b})
	f.Evidence.Count = uint64(math.Round(est))
	f.Evidence.Connections = uint64(h.attempts)
	peers := d.peers[:0]
	for _, k := range h.sample[:h.ns] {
		peers = append(peers, k.addr())
	}
	f.Evidence.Peers = peers
	f.Evidence.Ports = append(d.ports[:0], h.port)
	f.Evidence.Duration = float64(h.last-h.start) / 1e9
	f.Evidence.Notes = append(d.notes[:0], "about "+strconv.Itoa(int(math.Round(est)))+" "+where+" hosts probed on port "+strconv.Itoa(int(h.port)))
	f.MITRE = append(d.mitre[:0], "T1046")
	d.subs, d.peers, d.ports, d.notes, d.mitre = f.SubScores, peers, f.Evidence.Ports, f.Evidence.Notes, f.MITRE
	f.FirstSeen, f.LastSeen = time.Unix(0, h.start).UTC(), time.Unix(0, h.last).UTC()
	propose(f)
}
