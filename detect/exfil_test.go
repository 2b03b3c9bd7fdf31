package detect

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/flow"
)

// The exfil, DNS-tunnel and long-connection tests share these helpers
// (prefixed xt to stay clear of other detectors' test helpers).

var xtT0 = time.Date(2026, 1, 5, 7, 0, 0, 0, time.UTC)

func xtMin(m float64) time.Time { return xtT0.Add(time.Duration(m * float64(time.Minute))) }

// xtRec is an outbound-or-not TCP record; locality follows the RFC 1918
// default home networks.
func xtRec(src, dst string, dport uint16, start, end time.Time, out, in uint64, final bool, uid string) *flow.Record {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	home := flow.DefaultHomeNets()
	return &flow.Record{
		Start: start, End: end, UID: uid,
		OrigAddr: s, OrigPort: 50000, RespAddr: d, RespPort: dport, Proto: flow.ProtoTCP,
		OrigBytes: out, RespBytes: in, OrigPkts: out/1400 + 1, RespPkts: in/1400 + 1,
		ConnState: "SF", LocalOrig: home.Contains(s), LocalResp: home.Contains(d), Final: final,
	}
}

// xtRun feeds records through an Engine and returns what it emitted.
type xtRun struct {
	e  *Engine
	fs []Finding
}

func xtEngine(ds ...Detector) *xtRun {
	x := &xtRun{}
	x.e = NewEngine("test", func(f *Finding) { x.fs = append(x.fs, *f) }, ds...)
	return x
}

func (x *xtRun) feed(rs ...*flow.Record) {
	for _, r := range rs {
		x.e.Record(r)
	}
}

func (x *xtRun) kind(k Kind) []Finding {
	var out []Finding
	for _, f := range x.fs {
		if f.Kind == k {
			out = append(out, f)
		}
	}
	return out
}

// xtBrowse gives src a browsing history: small requests, larger answers,
// every few minutes from from to to, so that its baseline forms.
func xtBrowse(x *xtRun, src string, from, to float64, seed uint64) {
	x.feed(xtBrowseRecs(src, from, to, seed)...)
}

func xtBrowseRecs(src string, from, to float64, seed uint64) []*flow.Record {
	r := rand.New(rand.NewPCG(seed, 1))
	var rs []*flow.Record
	for m := from; m < to; m += 2 + 4*r.Float64() {
		dst := fmt.Sprintf("93.184.%d.%d", r.IntN(8), 1+r.IntN(200))
		rec := xtRec(src, dst, 443, xtMin(m), xtMin(m+0.1), uint64(400+r.IntN(2000)), uint64(2000+r.IntN(200000)), true, "")
		rec.App = &flow.App{TLSSNI: fmt.Sprintf("www.site%d.example", r.IntN(50))}
		rs = append(rs, rec)
	}
	return rs
}

// xtByEnd sorts records by end time, as a sensor emits them (roughly).
func xtByEnd(rs []*flow.Record) []*flow.Record {
	slices.SortStableFunc(rs, func(a, b *flow.Record) int { return a.End.Compare(b.End) })
	return rs
}

// xtUpload sends total bytes from src to dst over dur as one flow with an
// interim record every 5 minutes; it returns the records.
func xtUpload(src, dst string, port uint16, start time.Time, dur time.Duration, total uint64, uid string) []*flow.Record {
	var rs []*flow.Record
	for e := 5 * time.Minute; ; e += 5 * time.Minute {
		final := e >= dur
		e = min(e, dur)
		sent := uint64(float64(total) * float64(e) / float64(dur))
		rs = append(rs, xtRec(src, dst, port, start, start.Add(e), sent, sent/500, final, uid))
		if final {
			return rs
		}
	}
}

func TestExfilBulkUpload(t *testing.T) {
	for _, warm := range []bool{false, true} {
		t.Run(fmt.Sprintf("baseline=%v", warm), func(t *testing.T) {
			x := xtEngine(NewExfil(DefaultConfig()))
			start := 0.0
			if warm {
				xtBrowse(x, "10.10.0.7", 0, 180, 7)
				start = 180
			}
			ups := xtUpload("10.10.0.7", "198.51.100.20", 443, xtMin(start), 40*time.Minute, 300e6, "Cbulk")
			for _, r := range ups {
				r.App = &flow.App{TLSSNI: "upload.sendbox-files.example.com"}
			}
			var at *flow.Record
			for _, r := range ups {
				n := len(x.fs)
				x.feed(r)
				if at == nil && len(x.fs) > n {
					at = r
				}
			}
			fs := x.kind(KindExfil)
			if len(fs) == 0 {
				t.Fatal("no exfil finding for 300 MB in 40 min")
			}
			f := fs[len(fs)-1]
			if f.Dst != netip.MustParseAddr("198.51.100.20") || f.DstPort != 443 || f.FQDN != "upload.sendbox-files.example.com" {
				t.Errorf("finding about %v:%d %q", f.Dst, f.DstPort, f.FQDN)
			}
			if f.Evidence.PCR < 0.99 || f.Evidence.BytesOut < 200e6 || f.Evidence.Connections != 1 {
				t.Errorf("evidence %+v", f.Evidence)
			}
			if !strings.Contains(strings.Join(f.MITRE, ","), "T1567.002") || f.Severity != SeverityHigh && f.Severity != SeverityCritical {
				t.Errorf("last emission: score %.2f %s mitre %v", f.Score, f.Severity, f.MITRE)
			}
			t.Logf("first detection after %.0f min, %.1f MB out (%s, score %.2f); last: score %.2f %s %v subs %v",
				at.End.Sub(ups[0].Start).Minutes(), float64(at.OrigBytes)/1e6, fs[0].Evidence.Notes[0], fs[0].Score,
				f.Score, f.Severity, f.Evidence.Notes, f.SubScores)
			if warm && at != ups[0] {
				t.Errorf("with a baseline, want detection at the first interim record (37.5 MB), got %.1f MB", float64(at.OrigBytes)/1e6)
			}
			if !warm && at.OrigBytes > 120e6 {
				t.Errorf("cold host: want detection by ~112 MB, got %.1f MB", float64(at.OrigBytes)/1e6)
			}
		})
	}
}

func TestExfilLowAndSlow(t *testing.T) {
	x := xtEngine(NewExfil(DefaultConfig()))
	src, dst := "10.10.0.8", "203.0.113.9"
	rs := xtBrowseRecs(src, 0, 24*60+120, 8)
	// Uploads every 30 min for a day from t=120 min.
	for i := 0; i < 48; i++ {
		m := 120 + 30*float64(i)
		rs = append(rs, xtRec(src, dst, 443, xtMin(m), xtMin(m+0.5), 5e6, 6e3, true, fmt.Sprintf("Cslow%d", i)))
	}
	var first *Finding
	var firstAt float64
	for _, r := range xtByEnd(rs) {
		n := len(x.fs)
		x.feed(r)
		if first == nil && len(x.fs) > n {
			first, firstAt = &x.fs[n], r.Start.Sub(xtMin(120)).Minutes()
		}
	}
	if first == nil {
		t.Fatal("no finding for 5 MB every 30 min")
	}
	fs := x.kind(KindExfil)
	last := fs[len(fs)-1]
	t.Logf("first after %.0f min (%d uploads, %.0f MB): %s score %.2f; after 24 h: %s score %.2f %s subs %v",
		firstAt, int(firstAt/30)+1, (firstAt/30+1)*5, first.Evidence.Notes[0], first.Score,
		last.Evidence.Notes[0], last.Score, last.Severity, last.SubScores)
	if firstAt > 180 {
		t.Errorf("first detection after %.0f min, want within 3 h", firstAt)
	}
	if last.Evidence.Notes[0] != "low-and-slow" || last.Score < 0.75 {
		t.Errorf("after a day: %v score %.2f, want low-and-slow, high", last.Evidence.Notes, last.Score)
	}
	if !strings.Contains(strings.Join(last.MITRE, ","), "T1029") {
		t.Errorf("mitre %v", last.MITRE)
	}
}

func TestExfilBenign(t *testing.T) {
	allow := &Allowlist{Nets: flow.NewNetworks([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}), Domains: []string{"*.backup-cloud.example"}}
	cfg := DefaultConfig()
	cfg.Allow = allow
	cases := map[string][]*flow.Record{
		// 2 GB download in one flow over 20 minutes.
		"download": func() []*flow.Record {
			var rs []*flow.Record
			for i, e := range []float64{5, 10, 15, 20} {
				rs = append(rs, xtRec("10.10.0.9", "151.101.1.1", 443, xtMin(0), xtMin(e), uint64(i+1)*300e3, uint64(e/20*2e9), e == 20, "Cdl"))
			}
			return rs
		}(),
		// The nightly backup to the (internal) backup server.
		"internal backup": xtUpload("10.1.0.5", "10.1.0.30", 9103, xtMin(0), 50*time.Minute, 3e9, "Cbk"),
		"allowlisted dst": xtUpload("10.10.0.3", "192.0.2.44", 443, xtMin(0), 30*time.Minute, 500e6, "Cal"),
		"allowlisted name": func() []*flow.Record {
			rs := xtUpload("10.10.0.4", "198.51.100.77", 443, xtMin(0), 30*time.Minute, 500e6, "Can")
			for _, r := range rs {
				r.App = &flow.App{TLSSNI: "eu.backup-cloud.example"}
			}
			return rs
		}(),
		// An email with a 287 kB attachment (evidence02.pcap).
		"small email": {xtRec("10.10.0.5", "64.12.102.142", 587, xtMin(0), xtMin(0.1), 285778, 507, true, "")},
		// A video call: an hour of symmetric traffic.
		"video call": xtUpload("10.10.0.6", "52.112.0.1", 3478, xtMin(0), time.Hour, 700e6, "Cvc"),
	}
	// the video call sends as much as it receives
	for _, r := range cases["video call"] {
		r.RespBytes = r.OrigBytes
	}
	for name, rs := range cases {
		t.Run(name, func(t *testing.T) {
			x := xtEngine(NewExfil(cfg))
			xtBrowse(x, rs[0].OrigAddr.String(), 0, 120, 3)
			for _, r := range rs {
				r.Start, r.End = r.Start.Add(2*time.Hour), r.End.Add(2*time.Hour)
			}
			x.feed(rs...)
			if fs := x.kind(KindExfil); len(fs) > 0 {
				t.Errorf("%d findings, first %s %v score %.2f %v", len(fs), fs[0].Dst, fs[0].Evidence.Notes, fs[0].Score, fs[0].Evidence)
			}
		})
	}
}

// TestExfilViaProxy: through an explicit proxy in the home networks, the
// upload is to the CONNECT target, apart from the host's other tunnels.
func TestExfilViaProxy(t *testing.T) {
	cfg := DefaultConfig()
	// Operators allowlist their proxy; that must not hide what goes through it.
	cfg.Allow = &Allowlist{Nets: flow.NewNetworks([]netip.Prefix{netip.MustParsePrefix("10.1.0.8/32")})}
	x := xtEngine(NewExfil(cfg))
	var rs []*flow.Record
	for _, r := range xtBrowseRecs("10.10.0.30", 0, 240, 30) {
		r.RespAddr, r.RespPort, r.LocalResp = netip.MustParseAddr("10.1.0.8"), 3128, true
		r.App.HTTPProxyTarget = r.App.TLSSNI + ":443"
		rs = append(rs, r)
	}
	for _, r := range xtUpload("10.10.0.30", "10.1.0.8", 3128, xtMin(180), 20*time.Minute, 150e6, "Cpx") {
		r.App = &flow.App{HTTPProxyTarget: "dav.vault-storage.example.net:443", HTTPMethod: "CONNECT"}
		rs = append(rs, r)
	}
	x.feed(xtByEnd(rs)...)
	fs := x.kind(KindExfil)
	if len(fs) == 0 {
		t.Fatal("no finding through the proxy")
	}
	f := fs[len(fs)-1]
	uids := map[string]bool{}
	for _, f := range fs {
		uids[f.UID] = true
	}
	if f.FQDN != "dav.vault-storage.example.net" || f.Dst.String() != "10.1.0.8" || len(uids) != 1 {
		t.Errorf("%d findings, last about %v %q", len(uids), f.Dst, f.FQDN)
	}
	t.Logf("via proxy: %s score %.2f after %.0f MB", f.Evidence.Notes[0], f.Score, float64(fs[0].Evidence.BytesOut)/1e6)
}

// TestExfilSpread: 150 MB in an hour to 30 addresses of one service, 5 MB
// each: no pair crosses a threshold, the host does.
func TestExfilSpread(t *testing.T) {
	x := xtEngine(NewExfil(DefaultConfig()))
	xtBrowse(x, "10.10.0.12", 0, 120, 12)
	for i := range 30 {
		m := 120 + 2*float64(i)
		x.feed(xtRec("10.10.0.12", fmt.Sprintf("52.216.%d.1", i), 443, xtMin(m), xtMin(m+1), 5e6, 4e3, true, ""))
	}
	fs := x.kind(KindExfil)
	if len(fs) == 0 {
		t.Fatal("no finding for 150 MB spread over 30 addresses")
	}
	if fs[0].Dst.IsValid() || len(fs[0].Evidence.Peers) == 0 {
		t.Errorf("want a host finding with peers, got dst %v peers %v", fs[0].Dst, fs[0].Evidence.Peers)
	}
	for _, f := range fs {
		t.Logf("%s dst %v score %.2f %v out %d", f.Status, f.Dst, f.Score, f.Evidence.Notes, f.Evidence.BytesOut)
	}
	t.Logf("spread: %d findings, first %v score %.2f after %.0f MB", len(fs), fs[0].Evidence.Notes, fs[0].Score, float64(fs[0].Evidence.BytesOut)/1e6)
}

// TestExfilInterimDeltas: interim records carry cumulative counts; the
// detector must count each byte once, also when records of other flows come
// in between, and count a flow's connection once.
func TestExfilInterimDeltas(t *testing.T) {
	d := NewExfil(DefaultConfig()).(*Exfil)
	var got []Finding
	prop := func(f *Finding) { got = append(got, *f) }
	a := xtUpload("10.10.0.20", "198.51.100.1", 443, xtMin(0), 30*time.Minute, 60e6, "Ca")
	b := xtUpload("10.10.0.20", "198.51.100.1", 443, xtMin(1), 30*time.Minute, 60e6, "Cb")
	for i := range a {
		d.Observe(a[i], prop)
		d.Observe(b[i], prop)
	}
	p := d.pairs.get(exfilPairHash(latKeyOf(netip.MustParseAddr("10.10.0.20")), latKeyOf(netip.MustParseAddr("198.51.100.1")), 0), 0)
	if p == nil {
		t.Fatal("no pair state")
	}
	if o, _ := p.ring.sum(d.now, d.slowWin, d.slotDur); o != 120e6 || p.conns != 2 {
		t.Errorf("counted %d bytes in %d connections, want 120e6 in 2", o, p.conns)
	}
	if d.uids.t.len() != 0 {
		t.Errorf("%d flows still tracked after their final records", d.uids.t.len())
	}
	if len(got) == 0 || got[len(got)-1].Evidence.Notes[0] != "bulk" {
		t.Errorf("want a bulk finding for 120 MB in 31 min, got %d", len(got))
	}
}

func TestExfilMemoryBound(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Exfil.MaxKeys = 256
	d := NewExfil(cfg)
	prop := func(*Finding) {}
	for i := range 20000 {
		r := xtRec(fmt.Sprintf("10.%d.%d.%d", i%3, i/250%250, i%250+1), fmt.Sprintf("198.51.%d.%d", i%100, i%200+1), 443,
			xtMin(float64(i)/100), xtMin(float64(i)/100+1), 50e3, 1e3, i%7 == 0, fmt.Sprintf("C%d", i))
		d.Observe(r, prop)
	}
	st := d.Stats()
	ex := d.(*Exfil)
	if ex.pairs.len() > 256 || ex.hosts.len() > 64 || ex.uids.t.len() > 64 {
		t.Errorf("over the bound: pairs %d hosts %d flows %d", ex.pairs.len(), ex.hosts.len(), ex.uids.t.len())
	}
	if st.Evictions == 0 {
		t.Error("no evictions counted")
	}
	t.Logf("stats %+v: %d bytes per key", st, st.Bytes/max(st.Keys, 1))
	// Tick a day later: everything expires.
	d.Tick(xtMin(3*24*60), prop)
	if st := d.Stats(); st.Keys != 0 || ex.names.held != 0 || len(ex.names.index) != 0 {
		t.Errorf("after expiry: %+v, %d name bytes", st, ex.names.held)
	}
}

// xtMixed is a deterministic mixed workload for determinism tests.
func xtMixed(seed uint64, n int) []*flow.Record {
	r := rand.New(rand.NewPCG(seed, 2))
	var rs []*flow.Record
	for i := range n {
		m := float64(i) * 0.2
		src := fmt.Sprintf("10.10.0.%d", 1+r.IntN(20))
		dst := fmt.Sprintf("203.0.113.%d", 1+r.IntN(30))
		out, in := uint64(r.IntN(3e6)), uint64(r.IntN(3e6))
		if r.IntN(10) == 0 {
			out *= 20
		}
		rec := xtRec(src, dst, 443, xtMin(m), xtMin(m+r.Float64()*40), out, in, true, fmt.Sprintf("C%d", i))
		if r.IntN(5) == 0 {
			rec.RespPort, rec.Proto = 53, flow.ProtoUDP
			rec.RespAddr = netip.MustParseAddr("10.1.0.10")
			rec.LocalResp = true
			rec.App = &flow.App{DNSQuery: fmt.Sprintf("%x.%x.t%d.example.net", r.Uint64(), r.Uint64(), r.IntN(3)), DNSQueries: 1}
		}
		rs = append(rs, rec)
	}
	return rs
}

func TestExfilDetectorsDeterministic(t *testing.T) {
	run := func() string {
		cfg := DefaultConfig()
		x := xtEngine(NewExfil(cfg), NewDNSExfil(cfg), NewLongConn(cfg))
		x.feed(xtMixed(42, 20000)...)
		b, err := json.Marshal(x.fs)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	a, b := run(), run()
	if a != b {
		t.Fatal("two runs over the same records differ")
	}
	if len(a) < 100 {
		t.Fatalf("workload raised nothing: %s", a)
	}
}

func TestKeyedLRU(t *testing.T) {
	l := newKeyedLRU[uint64, int](3)
	for i := range 5 {
		*l.insert(uint64(i), int64(i)) = i * 10
		if i == 2 {
			l.get(0, 3) // 0 becomes the most recent
		}
	}
	// 1 and 2 were evicted (least recently used), 0, 3, 4 stay.
	for k, want := range map[uint64]bool{0: true, 1: false, 2: false, 3: true, 4: true} {
		if got := l.get(k, 10) != nil; got != want {
			t.Errorf("key %d present %v, want %v", k, got, want)
		}
	}
	if l.evictions != 2 || l.len() != 3 {
		t.Errorf("evictions %d len %d", l.evictions, l.len())
	}
	l.remove(3)
	l.expire(100)
	if l.len() != 0 || l.head != -1 || l.tail != -1 {
		t.Errorf("after expiry len %d head %d tail %d", l.len(), l.head, l.tail)
	}
	*l.insert(7, 200) = 70 // reuses a freed slot
	if len(l.ents) != 3 || *l.get(7, 200) != 70 {
		t.Errorf("free list not reused: %d entries", len(l.ents))
	}
}

func TestVolRing(t *testing.T) {
	const S = int64(time.Hour)
	var v volRing
	v.slot = 10
	v.add(100<<10, 0)
	v.roll(11)
	v.add(50<<10, 10<<10)
	v.roll(13)
	v.add(1<<10, 0)
	now := 13*S + S/2
	if o, _ := v.sum(now, S, S); o != (1<<10)+(0) { // half of slot 12 (empty)
		t.Errorf("1h sum %d", o)
	}
	if o, in := v.sum(now, 3*S, S); o != (1<<10)+(50<<10)+(100<<10)/2 || in != 10<<10 {
		t.Errorf("3h sum %d %d", o, in)
	}
	if n := v.active(1 << 10); n != 3 {
		t.Errorf("active %d", n)
	}
	v.roll(13 + exfilSlots)
	if o, _ := v.sum((13+exfilSlots)*S, 24*S, S); o != 0 {
		t.Errorf("after a full turn %d", o)
	}
}

// xtRepoRoot is the module root (this file's directory's parent).
func xtSharedPcaps(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "shared", "pcaps")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared captures not found: %v", err)
	}
	return dir
}

// xtReplay runs a capture through the sensor and an engine of detectors.
func xtReplay(t testing.TB, path string, ds ...Detector) *xtRun {
	src, err := pcapfile.OpenSource([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	x := xtEngine(ds...)
	s := capture.NewSensor(capture.Config{Table: capture.TableConfig{HomeNets: flow.DefaultHomeNets()}}, func(r *flow.Record) { x.e.Record(r) })
	if err := s.Run(context.Background(), src); err != nil {
		t.Logf("%s: %v", filepath.Base(path), err)
	}
	if st := s.Stats(); !st.Last.IsZero() {
		x.e.Tick(st.Last)
	}
	return x
}

// TestExfilDetectorsRealCaptures replays the shared captures through the
// three detectors. Small uploads (an email attachment, a few kB of stolen
// credentials by SMTP) are logged with the score the volume model gives
// them: they are not, and should not be, volume findings.
func TestExfilDetectorsRealCaptures(t *testing.T) {
	dir := xtSharedPcaps(t)
	cfg := DefaultConfig()
	type smallUpload struct{ src, dst string }
	for _, tc := range []struct {
		file  string
		want  Kind // "" means no finding of the three kinds
		src   string
		dst   string
		small *smallUpload
	}{
		{file: "dns_exfiltration.pcap", want: KindDNSExfil, src: "192.168.220.56", dst: "192.168.203.167"},
		{file: "evidence02.pcap", small: &smallUpload{"192.168.1.159", "64.12.102.142"}},
		{file: "2023-01-Unit42-Wireshark-quiz.pcap", small: &smallUpload{"192.168.1.27", "204.11.58.28"}},
		{file: "http-post-large.pcap"},
		{file: "http_espn.pcapng"},
		{file: "evidence03.pcap"},
		{file: "smb2.pcap"},
		{file: "ssh.pcap"},
		{file: "icmp-tunnel.pcap"},
		{file: "Example-1-2021-01-06-Emotet-infection.pcap"},
		{file: "2020-06-03-Dridex-infection-traffic.pcap"},
		{file: "test-cc-capture-1.pcap"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			if _, err := os.Stat(path); err != nil {
				t.Skip(err)
			}
			ex := NewExfil(cfg).(*Exfil)
			x := xtReplay(t, path, ex, NewDNSExfil(cfg), NewLongConn(cfg))
			var mine []Finding
			for _, f := range x.fs {
				b, _ := json.Marshal(&f)
				t.Logf("finding %s", b)
				mine = append(mine, f)
			}
			if tc.want == "" {
				if len(mine) > 0 {
					t.Errorf("%d findings on a capture that should raise none of exfil/dns_exfil/long_connection", len(mine))
				}
			} else {
				ok := false
				for _, f := range mine {
					ok = ok || f.Kind == tc.want && f.Src.String() == tc.src && f.Dst.String() == tc.dst
				}
				if !ok {
					t.Errorf("no %s finding from %s to %s", tc.want, tc.src, tc.dst)
				}
			}
			if s := tc.small; s != nil {
				src, dst := latKeyOf(netip.MustParseAddr(s.src)), latKeyOf(netip.MustParseAddr(s.dst))
				p := ex.pairs.get(exfilPairHash(src, dst, 0), 0)
				h := ex.hosts.get(src.hash(), 0)
				if p == nil || h == nil {
					t.Fatalf("no state for the upload %s -> %s", s.src, s.dst)
				}
				m := ex.measure(&p.ring, h, p.first, ex.now)
				t.Logf("upload %s -> %s: %d B out, %d B in, pcr %.3f, tier %q, score %.2f (subs %.2f)",
					s.src, s.dst, m.outS, m.inS, m.pcrS, exfilTierNames[m.tier], m.score, m.sub)
			}
		})
	}
}

// BenchmarkExfilObserve measures the steady path: records of known hosts
// and pairs, most of them browsing (download-like), a tenth uploads.
func BenchmarkExfilObserve(b *testing.B) {
	d := NewExfil(DefaultConfig())
	rs := xtBenchRecords(4096, 1000)
	prop := func(*Finding) {}
	for _, r := range rs { // warm up: create the state
		d.Observe(r, prop)
	}
	b.ReportAllocs()
	b.ResetTimer()
	base := rs[len(rs)-1].End
	for i := 0; i < b.N; i++ {
		r := rs[i%len(rs)]
		r.End = base.Add(time.Duration(i) * time.Millisecond)
		r.Start = r.End.Add(-100 * time.Millisecond)
		d.Observe(r, prop)
	}
	b.StopTimer()
	st := d.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(st.Bytes)/float64(max(st.Keys, 1)), "B/key")
}

// xtBenchRecords: hosts internal sources talking to 50 destinations each;
// one record in ten is an upload (out > in).
func xtBenchRecords(n, hosts int) []*flow.Record {
	r := rand.New(rand.NewPCG(1, 1))
	rs := make([]*flow.Record, n)
	for i := range rs {
		src := netip.AddrFrom4([4]byte{10, 10, byte(i % hosts / 250), byte(i%hosts%250 + 1)})
		dst := netip.AddrFrom4([4]byte{93, 184, byte(r.IntN(50)), 7})
		out, in := uint64(500+r.IntN(1500)), uint64(2000+r.IntN(100000))
		if i%10 == 0 {
			out, in = in*4, out
		}
		rs[i] = &flow.Record{Start: xtT0, End: xtT0.Add(time.Duration(i) * time.Millisecond), OrigAddr: src, RespAddr: dst,
			OrigPort: 50000, RespPort: 443, Proto: flow.ProtoTCP, OrigBytes: out, RespBytes: in, LocalOrig: true, Final: true,
			UID: fmt.Sprintf("B%d", i), App: &flow.App{TLSSNI: fmt.Sprintf("www.site%d.example", i%50)}}
	}
	return rs
}

// TestExfilDetectorsStateSizes logs the size of one entry of each table
// (the index adds 8 bytes per slot, 10.7 to 21 bytes per entry).
func TestExfilDetectorsStateSizes(t *testing.T) {
	t.Logf("exfil pair %d B, exfil host %d B, open flow %d B",
		unsafe.Sizeof(keyedEntry[uint64, exfilPair]{}), unsafe.Sizeof(keyedEntry[uint64, exfilHost]{}),
		unsafe.Sizeof(keyedEntry[uint64, cumCounts]{}))
	t.Logf("dns key %d B, dns host %d B", unsafe.Sizeof(keyedEntry[uint64, dnsExfilKey]{}), unsafe.Sizeof(keyedEntry[uint64, dnsExfilHost]{}))
	t.Logf("long pair %d B, long dst %d B", unsafe.Sizeof(keyedEntry[uint64, longConnPair]{}), unsafe.Sizeof(keyedEntry[uint64, longConnDst]{}))
}
