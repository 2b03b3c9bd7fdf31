package detect

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/flowhound/flowhound/flow"
)

var beaconT0 = time.Date(2026, 1, 5, 7, 0, 0, 0, time.UTC)

// conn describes one constructed connection.
type conn struct {
	src, dst   string
	port       uint16
	proto      flow.Proto
	start      time.Duration // after beaconT0
	dur        time.Duration
	out, in    uint64
	state      string
	sni, host  string
	proxy      string // HTTP CONNECT target
	localResp  bool
	interimsOf time.Duration // emit interim records this often (cumulative)
}

// recs turns connections into records in the order a flow table emits
// them: by end time (interim records at their emission time).
func recs(cs ...conn) []flow.Record {
	type timed struct {
		at time.Duration
		r  flow.Record
	}
	var out []timed
	for i, c := range cs {
		if c.proto == 0 {
			c.proto = flow.ProtoTCP
		}
		if c.state == "" {
			c.state = "SF"
		}
		if c.dur == 0 {
			c.dur = 300 * time.Millisecond
		}
		r := flow.Record{
			Start: beaconT0.Add(c.start), End: beaconT0.Add(c.start + c.dur),
			UID:      fmt.Sprintf("C%06d", i),
			OrigAddr: netip.MustParseAddr(c.src), OrigPort: uint16(40000 + i%20000),
			RespAddr: netip.MustParseAddr(c.dst), RespPort: c.port, Proto: c.proto,
			OrigBytes: c.out, RespBytes: c.in, OrigPkts: 2 + c.out/1400, RespPkts: 2 + c.in/1400,
			ConnState: c.state, History: "ShADadFf", LocalOrig: true, LocalResp: c.localResp, Final: true,
		}
		if c.sni != "" || c.host != "" || c.proxy != "" {
			r.App = &flow.App{TLSSNI: c.sni, HTTPHost: c.host, HTTPProxyTarget: c.proxy, DNSRcode: -1}
		}
		if c.interimsOf > 0 {
			for e := c.interimsOf; e < c.dur; e += c.interimsOf {
				ir := r
				ir.Final = false
				ir.End = beaconT0.Add(c.start + e)
				frac := float64(e) / float64(c.dur)
				ir.OrigBytes, ir.RespBytes = uint64(float64(c.out)*frac), uint64(float64(c.in)*frac)
				ir.OrigPkts, ir.RespPkts = uint64(float64(r.OrigPkts)*frac), uint64(float64(r.RespPkts)*frac)
				out = append(out, timed{c.start + e, ir})
			}
		}
		out = append(out, timed{c.start + c.dur, r})
	}
	slices.SortStableFunc(out, func(a, b timed) int { return int(a.at - b.at) })
	rs := make([]flow.Record, len(out))
	for i := range out {
		rs[i] = out[i].r
	}
	return rs
}

// dnsRec is a lookup of name by src answered with ips.
func dnsRec(src, name string, at time.Duration, ips ...string) flow.Record {
	return flow.Record{Start: beaconT0.Add(at), End: beaconT0.Add(at + 2*time.Millisecond), UID: "D" + src + name,
		OrigAddr: netip.MustParseAddr(src), OrigPort: 53000, RespAddr: netip.MustParseAddr("10.1.0.10"), RespPort: 53,
		Proto: flow.ProtoUDP, OrigBytes: 40, RespBytes: 80, OrigPkts: 1, RespPkts: 1, ConnState: "SF",
		LocalOrig: true, LocalResp: true, Final: true,
		App: &flow.App{DNSQuery: name, DNSQType: 1, DNSAnswers: ips, DNSQueries: 1}}
}

// series makes n connections from start every period with a uniform ±jitter
// (fraction of the period), skipping a fraction missed of the beats.
func series(rng *rand.Rand, base conn, start, period time.Duration, n int, jitter, missed float64) []conn {
	var cs []conn
	t := start
	for len(cs) < n {
		if rng == nil || rng.Float64() >= missed {
			c := base
			c.start = t
			cs = append(cs, c)
		}
		j := 0.0
		if rng != nil {
			j = jitter * (2*rng.Float64() - 1)
		}
		t += time.Duration(float64(period) * (1 + j))
	}
	return cs
}

// browse makes Poisson-timed connections with log-normal sizes: a person
// using a site.
func browse(rng *rand.Rand, base conn, start, mean time.Duration, n int) []conn {
	var cs []conn
	t := start
	for range n {
		t += time.Duration(rng.ExpFloat64() * float64(mean))
		c := base
		c.start = t
		c.out = uint64(450 * (1 + 0.8*rng.NormFloat64()*rng.NormFloat64()))
		if c.out < 120 {
			c.out = 120
		}
		c.in = uint64(2000 + rng.IntN(30000))
		cs = append(cs, c)
	}
	return cs
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Beacon.MaxPairs = 1 << 12
	return cfg
}

// firstFinding runs records and returns the findings and, for the first
// emission about src, how many of src's beats to dst had been fed.
func beaconFindings(t *testing.T, cfg Config, rs []flow.Record) []Finding {
	t.Helper()
	return beaconRun(NewBeacon(cfg), rs)
}

// beatsToFirst counts the records matching match fed before the first
// finding that satisfies want (-1 when none).
func beatsToFirst(cfg Config, rs []flow.Record, match func(*flow.Record) bool, want func(*Finding) bool) int {
	d := NewBeacon(cfg)
	beats := 0
	found := -1
	for i := range rs {
		if match(&rs[i]) && rs[i].Final {
			beats++
		}
		d.Observe(&rs[i], func(f *Finding) {
			if found < 0 && want(f) && f.Score >= cfg.Beacon.Threshold {
				found = beats
			}
		})
	}
	return found
}

func toC2(r *flow.Record) bool { return r.RespAddr == netip.MustParseAddr("203.0.113.7") }
func isC2(f *Finding) bool {
	return f.FQDN == "c2.example.net" || f.Dst == netip.MustParseAddr("203.0.113.7")
}

var c2 = conn{src: "10.10.1.5", dst: "203.0.113.7", port: 443, sni: "c2.example.net", out: 380, in: 260}

func TestBeaconPerfect(t *testing.T) {
	cfg := testConfig()
	rs := recs(series(nil, c2, time.Minute, time.Minute, 30, 0, 0)...)
	n := beatsToFirst(cfg, rs, toC2, isC2)
	if n < 0 || n > 10 {
		t.Fatalf("perfect 60 s beacon: first finding after %d beats, want ≤ 10", n)
	}
	fs := beaconLatest(beaconFindings(t, cfg, rs))
	if len(fs) != 1 {
		t.Fatalf("%d findings, want 1: %+v", len(fs), fs)
	}
	f := fs[0]
	// Keyed by name, it carries the address of its latest connection.
	if f.FQDN != "c2.example.net" || f.Src != netip.MustParseAddr("10.10.1.5") || f.Dst != netip.MustParseAddr("203.0.113.7") || f.DstPort != 443 ||
		f.Kind != KindBeacon || !slices.Equal(f.MITRE, []string{"T1071.001", "T1573"}) {
		t.Errorf("finding %+v", f)
	}
	if f.Evidence.IntervalMedian < 59 || f.Evidence.IntervalMedian > 61 || f.Evidence.Coverage != 1 || f.Evidence.Jitter > 0.01 {
		t.Errorf("evidence %+v", f.Evidence)
	}
	if f.Score < 0.9 || f.Severity != SeverityCritical {
		t.Errorf("score %.3f severity %s, want ≥ 0.9", f.Score, f.Severity)
	}
	if f.UID != FindingUID(KindBeacon, "10.10.1.5", "c2.example.net", "443") {
		t.Errorf("uid %s", f.UID)
	}
	t.Logf("first finding after %d beats; final %.3f %v", n, f.Score, f.SubScores)
}

// TestBeaconScoreRises checks that the score grows with the evidence.
func TestBeaconScoreRises(t *testing.T) {
	cfg := testConfig()
	rng := rand.New(rand.NewPCG(7, 7))
	base := c2
	rs := recs(series(rng, base, time.Minute, 5*time.Minute, 40, 0.4, 0.1)...)
	var scores []float64
	for _, f := range beaconFindings(t, cfg, rs) {
		scores = append(scores, f.Score)
	}
	if len(scores) < 2 || scores[len(scores)-1] <= scores[0] {
		t.Fatalf("scores %v, want a rise", scores)
	}
}

// TestBeaconJitterMissed runs many seeds per cell and checks recall and the
// median number of beats to the first finding.
func TestBeaconJitterMissed(t *testing.T) {
	cfg := testConfig()
	for _, tc := range []struct {
		period         time.Duration
		jitter, missed float64
		cv             float64
		beats          int // fed
		medianMax      int // median beats to first finding, at most
	}{
		{time.Minute, 0.5, 0, 0, 30, 10},
		{time.Minute, 0.5, 0, 0.25, 30, 12},
		{5 * time.Minute, 0.2, 0.2, 0, 30, 8},
		{5 * time.Minute, 0.5, 0.2, 0, 40, 12},
		{30 * time.Second, 0.25, 0.25, 0.25, 40, 10},
		{time.Hour, 0.1, 0.2, 0, 20, 8},
		{10 * time.Minute, 0.8, 0, 0, 72, 40}, // twelve hours at ±80 %
	} {
		name := fmt.Sprintf("p%v-j%g-m%g-cv%g", tc.period, tc.jitter, tc.missed, tc.cv)
		t.Run(name, func(t *testing.T) {
			var firsts []int
			missedSeeds := 0
			for seed := range uint64(20) {
				rng := rand.New(rand.NewPCG(seed, 99))
				cs := series(rng, c2, time.Minute, tc.period, tc.beats, tc.jitter, tc.missed)
				for i := range cs {
					cs[i].out = uint64(380 * (1 + tc.cv*rng.NormFloat64()))
				}
				n := beatsToFirst(cfg, recs(cs...), toC2, isC2)
				if n < 0 {
					missedSeeds++
					n = 1 << 20
				}
				firsts = append(firsts, n)
			}
			slices.Sort(firsts)
			med := firsts[len(firsts)/2]
			t.Logf("beats to first finding over 20 seeds: %v", firsts)
			if missedSeeds > 0 {
				t.Errorf("%d/20 seeds never found", missedSeeds)
			}
			if med > tc.medianMax {
				t.Errorf("median beats to first finding %d, want ≤ %d", med, tc.medianMax)
			}
		})
	}
}

func TestBeaconNotFlagged(t *testing.T) {
	cfg := testConfig()
	rng := rand.New(rand.NewPCG(1, 2))
	var cases = map[string][]flow.Record{}

	// Failed retries: a connection a second to a closed port (REJ) or a
	// filtered one (S0), for ten minutes.
	retry := conn{src: "10.10.1.6", dst: "203.0.113.9", port: 8443, state: "S0", out: 0, in: 0}
	rej := retry
	rej.state = "REJ"
	cases["retries"] = recs(append(series(nil, retry, 0, time.Second, 600, 0, 0), series(nil, rej, time.Hour, time.Second, 600, 0, 0)...)...)

	// A sub-second strobe that does succeed.
	strobe := conn{src: "10.10.1.7", dst: "203.0.113.10", port: 443, sni: "api.poller.example", out: 200, in: 400, dur: 50 * time.Millisecond}
	cases["strobe"] = recs(series(rng, strobe, 0, 400*time.Millisecond, 3000, 0.1, 0)...)

	// NTP: adaptive polling from 64 s up to 1024 s, 48-byte datagrams, on
	// every workstation.
	var ntp []conn
	for h := range 20 {
		c := conn{src: fmt.Sprintf("10.10.2.%d", h+1), dst: "198.51.100.123", port: 123, proto: flow.ProtoUDP, out: 48, in: 48}
		t0 := time.Duration(rng.IntN(60)) * time.Second
		for poll := 64 * time.Second; poll <= 1024*time.Second; poll *= 2 {
			for range 8 {
				c.start = t0
				ntp = append(ntp, c)
				t0 += time.Duration(float64(poll) * (1 + 0.02*(2*rng.Float64()-1)))
			}
		}
	}
	cases["ntp"] = recs(ntp...)

	// Internal periodic polling (an HMI polling a PLC every second, SMB
	// to the domain controller).
	ics := conn{src: "192.168.1.35", dst: "192.168.1.191", port: 102, out: 40, in: 60, localResp: true}
	cases["ics"] = recs(series(nil, ics, 0, 5*time.Second, 500, 0, 0)...)

	// Browsing one site at random times.
	var web []conn
	for h := range 5 {
		web = append(web, browse(rng, conn{src: fmt.Sprintf("10.10.3.%d", h+1), dst: "198.51.100.80", port: 443, sni: "news.example.org"}, 0, 10*time.Minute, 60)...)
	}
	cases["browsing"] = recs(web...)

	// A daily session (an admin's jump host abroad): the period is over
	// MaxPeriod.
	jump := conn{src: "10.10.1.8", dst: "198.51.100.22", port: 22, out: 5000, in: 90000, dur: 20 * time.Minute}
	cases["daily"] = recs(series(rng, jump, 90*time.Minute, 24*time.Hour, 14, 0.02, 0)...)

	// A push channel: long-lived, 50-byte pings every 50 s, reconnecting
	// every one to three hours.
	var push []conn
	for t0 := time.Duration(0); t0 < 24*time.Hour; {
		life := time.Duration(60+rng.IntN(120)) * time.Minute
		pings := uint64(life / (50 * time.Second))
		push = append(push, conn{src: "10.10.1.9", dst: "198.51.100.40", port: 443, sni: "mtalk.example.com",
			start: t0, dur: life, out: 800 + 50*pings, in: 3600 + 50*pings, interimsOf: 5 * time.Minute})
		t0 += life + 3*time.Second
	}
	cases["push"] = recs(push...)
	for i := range cases["push"] {
		r := &cases["push"][i]
		r.OrigPkts = 6 + 2*uint64(r.End.Sub(r.Start)/(50*time.Second))
	}

	for name, rs := range cases {
		t.Run(name, func(t *testing.T) {
			fs := beaconFindings(t, cfg, rs)
			for _, f := range beaconLatest(fs) {
				t.Errorf("finding %s %v→%v %s score %.3f %v %+v", f.UID, f.Src, f.Dst, f.FQDN, f.Score, f.SubScores, f.Evidence)
			}
		})
	}
}

// TestBeaconPrevalence: a monitoring agent on 50 hosts reporting to one
// external collector every minute, to the millisecond, is damped; the same
// schedule from two hosts is not.
func TestBeaconPrevalence(t *testing.T) {
	cfg := testConfig()
	var cs []conn
	for h := range 50 {
		c := conn{src: fmt.Sprintf("10.10.4.%d", h+1), dst: "198.51.100.50", port: 443, sni: "collector.saas-monitor.example", out: 612, in: 80}
		cs = append(cs, series(nil, c, time.Duration(h)*time.Second, time.Minute, 60, 0, 0)...)
	}
	d := NewBeacon(cfg).(*beacon)
	rs := recs(cs...)
	fs := beaconRun(d, rs)
	for _, f := range beaconLatest(fs) {
		if f.Score >= cfg.Beacon.Threshold {
			t.Errorf("monitoring agent on %v flagged: %.3f %v", f.Src, f.Score, f.SubScores)
		}
	}
	// Early on few hosts had reported yet: anything proposed then must
	// have been damped once the population was seen.
	id, _, ok := d.dsts.findName(hashName("collector.saas-monitor.example"), "collector.saas-monitor.example")
	if !ok || d.dsts.entries[id].keyRefs != 50 {
		t.Fatalf("prevalence %d, want 50", d.dsts.entries[id].keyRefs)
	}
	if p := prevalenceDamping(50, 50, cfg.Beacon.MaxPrevalence); p > 0.2 {
		t.Errorf("damping at 50 sources %.2f", p)
	}

	cs = cs[:0]
	for h := range 2 {
		c := conn{src: fmt.Sprintf("10.10.4.%d", h+1), dst: "198.51.100.51", port: 443, sni: "c2.example.net", out: 612, in: 80}
		cs = append(cs, series(nil, c, time.Duration(h)*time.Second, time.Minute, 30, 0, 0)...)
	}
	if fs := beaconLatest(beaconFindings(t, cfg, recs(cs...))); len(fs) != 2 {
		t.Errorf("two infected hosts: %d findings, want 2", len(fs))
	}
}

// TestBeaconProxy: every host goes through one explicit proxy; one of them
// beacons to one CONNECT target. The finding names the target, not the
// proxy.
func TestBeaconProxy(t *testing.T) {
	cfg := testConfig()
	rng := rand.New(rand.NewPCG(3, 3))
	var cs []conn
	sites := []string{"www.example.com:443", "news.example.org:443", "mail.example.net:443", "cdn.example.com:443"}
	for h := range 30 {
		for _, s := range sites {
			cs = append(cs, browse(rng, conn{src: fmt.Sprintf("10.10.5.%d", h+1), dst: "10.1.0.8", port: 3128, proxy: s, localResp: true}, 0, 20*time.Minute, 15)...)
		}
	}
	beacon := conn{src: "10.10.5.3", dst: "10.1.0.8", port: 3128, proxy: "c2.example.net:443", localResp: true, out: 700, in: 300}
	cs = append(cs, series(rng, beacon, 10*time.Minute, 2*time.Minute, 60, 0.3, 0.1)...)
	fs := beaconLatest(beaconFindings(t, cfg, recs(cs...)))
	if len(fs) != 1 {
		for _, f := range fs {
			t.Logf("%v %v %s %.3f", f.Src, f.Dst, f.FQDN, f.Score)
		}
		t.Fatalf("%d findings, want 1", len(fs))
	}
	f := fs[0]
	if f.FQDN != "c2.example.net" || f.Dst.IsValid() || f.Src != netip.MustParseAddr("10.10.5.3") || len(f.Evidence.Notes) == 0 {
		t.Errorf("finding %+v", f)
	}
}

// TestBeaconCDN: benign names and a C2 share a CDN address. Each source's
// own DNS lookup (or SNI) tells them apart; the shared address is never
// the key.
func TestBeaconCDN(t *testing.T) {
	cfg := testConfig()
	rng := rand.New(rand.NewPCG(4, 4))
	const cdn = "198.18.0.5"
	var rs []flow.Record
	var cs []conn
	for h := range 20 {
		src := fmt.Sprintf("10.10.6.%d", h+1)
		rs = append(rs, dnsRec(src, "static.shop.example", 0, cdn))
		// A periodic benign widget on every host (damped by prevalence)
		// and random browsing, all to the same CDN address, by name only
		// through DNS (no SNI).
		cs = append(cs, series(rng, conn{src: src, dst: cdn, port: 443, out: 500, in: 4000}, time.Minute, 5*time.Minute, 40, 0.1, 0)...)
	}
	// The implant: plain TCP to the same address, name known from its
	// lookup only.
	rs = append(rs, dnsRec("10.10.6.4", "upd.c2.example.net", 30*time.Second, "2001:db8::1", cdn))
	cs = append(cs, series(rng, conn{src: "10.10.6.4", dst: cdn, port: 443, out: 333, in: 120}, 2*time.Minute, 3*time.Minute, 40, 0.2, 0)...)
	all := append(rs, recs(cs...)...)
	slices.SortStableFunc(all, func(a, b flow.Record) int { return a.End.Compare(b.End) })
	fs := beaconLatest(beaconFindings(t, cfg, all))
	var c2s int
	for _, f := range fs {
		switch {
		case f.FQDN == "":
			t.Errorf("finding keyed by the shared address: %+v", f)
		case f.FQDN == "upd.c2.example.net" && f.Src == netip.MustParseAddr("10.10.6.4") && f.Dst.String() == cdn && f.Score >= cfg.Beacon.Threshold:
			c2s++
		case f.Score >= cfg.Beacon.Threshold:
			t.Errorf("benign name flagged: %v %s %.3f %v", f.Src, f.FQDN, f.Score, f.SubScores)
		}
	}
	if c2s != 1 {
		t.Errorf("C2 behind the CDN: %d findings, want 1", c2s)
	}
}

func TestBeaconAllowlist(t *testing.T) {
	doms, err := ParseDomains([]string{"*.example.net"})
	if err != nil {
		t.Fatal(err)
	}
	base := recs(series(nil, c2, 0, time.Minute, 30, 0, 0)...)
	for name, allow := range map[string]*Allowlist{
		"domain": {Domains: doms},
		"cidr":   {Nets: flow.NewNetworks([]netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")})},
		"source": {Nets: flow.NewNetworks([]netip.Prefix{netip.MustParsePrefix("10.10.1.5/32")})},
		"pair":   {Pairs: map[[2]netip.Addr]bool{{netip.MustParseAddr("10.10.1.5"), netip.MustParseAddr("203.0.113.7")}: true}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Allow = allow
			if fs := beaconFindings(t, cfg, base); len(fs) != 0 {
				t.Errorf("allowlisted beacon flagged: %+v", fs[0])
			}
		})
	}
	cfg := testConfig()
	cfg.Allow = &Allowlist{Domains: []string{"example.org"}}
	if fs := beaconFindings(t, cfg, base); len(fs) == 0 {
		t.Error("beacon to a name not on the allowlist not flagged")
	}
}

func TestBeaconDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	var cs []conn
	cs = append(cs, series(rng, c2, 0, time.Minute, 50, 0.3, 0.1)...)
	for h := range 10 {
		cs = append(cs, browse(rng, conn{src: fmt.Sprintf("10.10.7.%d", h+1), dst: "198.51.100.80", port: 443, sni: "news.example.org"}, 0, 5*time.Minute, 20)...)
	}
	rs := recs(cs...)
	a := beaconFindings(t, testConfig(), rs)
	b := beaconFindings(t, testConfig(), rs)
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Fatalf("two runs differ:\n%+v\n%+v", a, b)
	}
}

// TestBeaconInterimOnce: a connection's interim records and its final
// record are one beat.
func TestBeaconInterimOnce(t *testing.T) {
	long := conn{src: "10.10.1.11", dst: "198.51.100.60", port: 443, sni: "files.example.com", out: 1 << 20, in: 1 << 24,
		dur: 40 * time.Minute, interimsOf: 5 * time.Minute}
	rs := recs(long)
	d := NewBeacon(testConfig()).(*beacon)
	beaconRun(d, rs)
	if len(rs) != 8 {
		t.Fatalf("%d records", len(rs))
	}
	for _, s := range d.slots {
		if s.flags&slotLive != 0 && (s.beats != 1 || s.conns != 1) {
			t.Errorf("beats %d conns %d, want 1", s.beats, s.conns)
		}
	}
}

// TestBeaconBursts: each check-in opens three connections within a few
// seconds; the finding counts check-ins.
func TestBeaconBursts(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	var cs []conn
	for _, c := range series(rng, c2, 0, 2*time.Minute, 30, 0.1, 0.1) {
		off := time.Duration(0)
		for range 3 {
			c.start += off
			c.dur = time.Duration(300+rng.IntN(3000)) * time.Millisecond
			cs = append(cs, c)
			off = time.Duration(300+rng.IntN(2200)) * time.Millisecond
		}
	}
	d := NewBeacon(testConfig()).(*beacon)
	fs := beaconLatest(beaconRun(d, recs(cs...)))
	if len(fs) != 1 {
		t.Fatalf("%d findings", len(fs))
	}
	f := fs[0]
	if f.Evidence.IntervalMedian < 110 || f.Evidence.IntervalMedian > 130 || f.Evidence.Connections < 2*f.Evidence.Count {
		t.Errorf("evidence %+v", f.Evidence)
	}
	s := &d.slots[0]
	if s.conns != 90 || s.beats < 28 || s.beats > 31 {
		t.Errorf("%d connections in %d beats, want 90 in 30", s.conns, s.beats)
	}
}

// TestBeaconLongLived: a heartbeat inside one long connection is found
// from its interim records; keepalive-sized pings are not.
func TestBeaconLongLived(t *testing.T) {
	cfg := testConfig()
	// A 30-second heartbeat of ~300-byte requests for two hours.
	c := conn{src: "10.10.1.12", dst: "198.51.100.70", port: 443, sni: "relay.c2.example.net", dur: 2 * time.Hour, interimsOf: 5 * time.Minute}
	c.out, c.in = 240*300, 240*200
	rs := recs(c)
	for i := range rs { // two client packets per heartbeat
		rs[i].OrigPkts = 2 * uint64(rs[i].End.Sub(rs[i].Start)/(30*time.Second))
	}
	fs := beaconLatest(beaconFindings(t, cfg, rs))
	if len(fs) != 1 || fs[0].FQDN != "relay.c2.example.net" || len(fs[0].Evidence.Notes) == 0 || fs[0].Score < cfg.Beacon.Threshold {
		t.Fatalf("long-lived heartbeat: %+v", fs)
	}
	t.Logf("long-lived: %.3f %v %+v", fs[0].Score, fs[0].SubScores, fs[0].Evidence)

	c.out, c.in = 240*50, 240*50
	rs = recs(c)
	for i := range rs {
		rs[i].OrigPkts = 2 * uint64(rs[i].End.Sub(rs[i].Start)/(30*time.Second))
	}
	if fs := beaconFindings(t, cfg, rs); len(fs) != 0 {
		t.Errorf("keepalive pings flagged: %+v", fs[0])
	}
}

func TestBeaconEviction(t *testing.T) {
	cfg := testConfig()
	cfg.Beacon.MaxPairs = 64
	var cs []conn
	for i := range 500 {
		cs = append(cs, conn{src: fmt.Sprintf("10.10.8.%d", i%200+1), dst: fmt.Sprintf("198.51.%d.%d", i/250, i%250+1), port: 443,
			start: time.Duration(i) * time.Second, out: 300, in: 300})
	}
	// The beacon keeps its state: it has beats, the one-off keys do not.
	cs = append(cs, series(nil, c2, 0, time.Minute, 20, 0, 0)...)
	rs := recs(cs...)
	d := NewBeacon(cfg)
	fs := beaconLatest(beaconRun(d, rs))
	st := d.Stats()
	if st.Keys > 64 || st.Evictions < 400 {
		t.Errorf("stats %+v", st)
	}
	if len(fs) != 1 || !isC2(&fs[0]) {
		t.Errorf("findings %+v", fs)
	}
}

func TestBeaconSlotSize(t *testing.T) {
	if beaconSlotSize > 184 {
		t.Errorf("slot is %d bytes", beaconSlotSize)
	}
}

func TestRawHost(t *testing.T) {
	for in, want := range map[[3]string]string{
		{"c2.example.net:443", "", ""}:    "c2.example.net",
		{"", "Sni.Example.", ""}:          "Sni.Example",
		{"", "", "[2001:db8::1]:8080"}:    "2001:db8::1",
		{"", "", "example.org"}:           "example.org",
		{"", "", "2001:db8::5"}:           "2001:db8::5",
		{"", "", ""}:                      "",
		{"10.0.0.1:443", "x.example", ""}: "10.0.0.1",
	} {
		a := &flow.App{HTTPProxyTarget: in[0], TLSSNI: in[1], HTTPHost: in[2]}
		if got := rawHost(a); got != want {
			t.Errorf("rawHost(%q) = %q, want %q", in, got, want)
		}
	}
	for s, want := range map[string]bool{"5.2.136.90": true, "2001:db8::1": true, "example.com": false, "cafe": false, "": false} {
		if _, ok := literalAddr(s); ok != want {
			t.Errorf("literalAddr(%q) = %v", s, ok)
		}
	}
}

func TestBeaconGapStats(t *testing.T) {
	var sc beatScratch
	var st beatStats
	// 60 s with one missed beat: folded, coverage 10/11.
	gaps := []float64{60, 60, 120, 60, 60, 60, 60, 60, 60, 60}
	gapStats(gaps, &sc, &st)
	if st.period != 60 || st.jitter != 0 || st.short != 0 || st.coverage != 10.0/11 {
		t.Errorf("%+v", st)
	}
	// A burst of short gaps is charged.
	gapStats([]float64{60, 5, 55, 60, 60, 60}, &sc, &st)
	if st.short == 0 {
		t.Errorf("%+v", st)
	}
}

func TestMedianOf(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for n := 1; n <= beaconRing; n++ {
		for range 200 {
			a := make([]float64, n)
			for i := range a {
				a[i] = float64(rng.IntN(10))
			}
			s := slices.Clone(a)
			slices.Sort(s)
			want := s[n/2]
			if n%2 == 0 {
				want = (s[n/2-1] + s[n/2]) / 2
			}
			if got := medianOf(a); got != want {
				t.Fatalf("median of %v = %v, want %v", s, got, want)
			}
		}
	}
}

func TestLogSize(t *testing.T) {
	for _, b := range []uint64{0, 1, 2, 47, 48, 62, 63, 64, 100, 380, 923, 1500, 65535, 1 << 20, 36349, 1<<32 - 2, 1 << 40} {
		want := math.Min(255, math.Round(8*math.Log2(1+float64(b))))
		if got := float64(logSize(b)); math.Abs(got-want) > 1 {
			t.Errorf("logSize(%d) = %v, want %v", b, got, want)
		}
	}
}

// TestDNSCacheGrows holds the growing cache to the one it replaces: a
// cache allocated at full size from the start. Below its full size the
// growing one keeps every mapping (it doubles instead of replacing); at
// full size both replace the same entries, so every lookup and every
// displaced name agree.
func TestDNSCacheGrows(t *testing.T) {
	const full = 1 << 14
	rng := rand.New(rand.NewPCG(7, 8))
	g := newDNSCache(full)
	f := newDNSCache(full)
	f.alloc(full)
	if len(g.sets) >= full {
		t.Fatalf("cache starts at %d entries, want fewer than %d", len(g.sets), full)
	}
	var keys []uint64
	seen := map[uint64]bool{}
	for i := range 3 * full {
		var k uint64
		if len(keys) > 0 && rng.IntN(3) == 0 {
			k = keys[rng.IntN(len(keys))] // an update
		} else {
			k = rng.Uint64() >> rng.IntN(64) // zero and small keys too
			keys = append(keys, k)
		}
		fresh := !seen[max(k, 1)] // the cache stores key 0 as 1
		seen[max(k, 1)] = true
		now := uint32(i / 8)
		gOld, gDisp := g.put(k, k*3, uint32(i), now)
		fOld, fDisp := f.put(k, k*3, uint32(i), now)
		if gOld != fOld || gDisp != fDisp {
			t.Fatalf("put %d (%#x): growing cache displaced (%d, %v), full-size one (%d, %v)", i, k, gOld, gDisp, fOld, fDisp)
		}
		if len(g.sets) < full && fresh && gDisp {
			t.Fatalf("put %d: a new key displaced a mapping at %d of %d entries", i, len(g.sets), full)
		}
		probe := keys[rng.IntN(len(keys))]
		ge, gok := g.lookup(probe)
		fe, fok := f.lookup(probe)
		if gok != fok || gok && (ge.name != fe.name || ge.hash != fe.hash || ge.when != fe.when) {
			t.Fatalf("lookup %#x after put %d: growing %v %+v, full-size %v %+v", probe, i, gok, ge, fok, fe)
		}
	}
	if len(g.sets) != full {
		t.Fatalf("cache has %d entries after %d keys, want its full size %d", len(g.sets), len(keys), full)
	}
}
