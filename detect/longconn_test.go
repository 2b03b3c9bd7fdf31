package detect

import (
	"fmt"
	"testing"
	"time"

	"github.com/flowhound/flowhound/flow"
)

// xtSession is one connection from src to dst:port that lasts dur from
// start, with an interim record every `every` and a final record.
func xtSession(src, dst string, port uint16, start time.Time, dur, every time.Duration, uid string) []*flow.Record {
	var rs []*flow.Record
	for e := every; ; e += every {
		final := e >= dur
		e = min(e, dur)
		k := uint64(e / time.Second)
		rs = append(rs, xtRec(src, dst, port, start, start.Add(e), 60*k, 80*k, final, uid))
		if final {
			return rs
		}
	}
}

func TestLongConnInterims(t *testing.T) {
	x := xtEngine(NewLongConn(DefaultConfig()))
	rs := xtSession("10.10.0.15", "185.56.137.138", 4444, xtMin(0), 50*time.Minute, 10*time.Minute, "Clong")
	for i, r := range rs {
		n := len(x.fs)
		x.feed(r)
		if n == 0 && len(x.fs) > 0 {
			if i != 2 {
				t.Errorf("first finding at record %d, want the third interim (30 min)", i+1)
			}
			f := x.fs[0]
			if f.Evidence.Duration != 1800 || f.Evidence.Connections != 1 || f.DstPort != 4444 || len(f.MITRE) != 2 || f.MITRE[1] != "T1571" {
				t.Errorf("evidence %+v", f.Evidence)
			}
			t.Logf("first: score %.2f %s subs %v mitre %v", f.Score, f.Severity, f.SubScores, f.MITRE)
		}
	}
	fs := x.kind(KindLongConnection)
	if len(fs) == 0 {
		t.Fatal("no finding")
	}
	last := fs[len(fs)-1]
	if last.Score <= fs[0].Score {
		t.Errorf("score did not grow with duration: %.2f then %.2f", fs[0].Score, last.Score)
	}
	t.Logf("%d emissions; last after %.0f s: score %.2f", len(fs), last.Evidence.Duration, last.Score)
}

func TestLongConnReconnects(t *testing.T) {
	// A session that reconnects every 10 minutes adds up.
	x := xtEngine(NewLongConn(DefaultConfig()))
	for i := range 3 {
		x.feed(xtRec("10.10.0.16", "203.0.113.50", 443, xtMin(float64(11*i)), xtMin(float64(11*i+10)), 5e3, 9e3, true, fmt.Sprintf("C%d", i)))
	}
	fs := x.kind(KindLongConnection)
	if len(fs) != 1 || fs[0].Evidence.Duration != 1800 || fs[0].Evidence.Connections != 3 {
		t.Fatalf("want one finding of 1800 s over 3 connections, got %+v", fs)
	}
	// Keep-alive web connections of a minute or two never add up.
	x = xtEngine(NewLongConn(DefaultConfig()))
	for i := range 2000 {
		x.feed(xtRec("10.10.0.17", "142.250.1.1", 443, xtMin(float64(i)), xtMin(float64(i)+1.5), 5e3, 9e3, true, ""))
	}
	if len(x.fs) != 0 {
		t.Errorf("short connections raised %d findings", len(x.fs))
	}
}

func TestLongConnBenign(t *testing.T) {
	// An admin's three-hour RDP session to the internal jump host.
	x := xtEngine(NewLongConn(DefaultConfig()))
	x.feed(xtSession("10.10.0.1", "10.1.0.40", 3389, xtMin(0), 3*time.Hour, 5*time.Minute, "Cjump")...)
	if len(x.fs) != 0 {
		t.Errorf("jump-host session raised %d findings", len(x.fs))
	}

	// Chat push channels: two hosts keep a connection to the same service
	// open for hours; one host alone would be reported.
	x = xtEngine(NewLongConn(DefaultConfig()))
	var all []*flow.Record
	for h := range 2 {
		for _, r := range xtSession(fmt.Sprintf("10.10.0.%d", 50+h), fmt.Sprintf("34.120.0.%d", h), 443, xtMin(float64(h)), 3*time.Hour, 5*time.Minute, fmt.Sprintf("Cpush%d", h)) {
			r.App = &flow.App{TLSSNI: "wss-primary.slack.com"}
			all = append(all, r)
		}
	}
	x.feed(xtByEnd(all)...)
	if len(x.fs) != 0 {
		t.Errorf("shared push service raised %d findings: %v", len(x.fs), x.fs[0].Evidence)
	}

	// Allowlisted destination.
	cfg := DefaultConfig()
	cfg.Allow = &Allowlist{Domains: []string{"vpn.example.com"}}
	x = xtEngine(NewLongConn(cfg))
	for _, r := range xtSession("10.10.0.60", "198.51.100.200", 4433, xtMin(0), 2*time.Hour, 5*time.Minute, "Cvpn") {
		r.App = &flow.App{TLSSNI: "vpn.example.com"}
		x.feed(r)
	}
	if len(x.fs) != 0 {
		t.Errorf("allowlisted name raised %d findings", len(x.fs))
	}
}

// TestLongConnViaProxy: a CONNECT tunnel through the internal proxy is a
// long connection to its target; other tunnels of the host stay apart.
func TestLongConnViaProxy(t *testing.T) {
	x := xtEngine(NewLongConn(DefaultConfig()))
	var all []*flow.Record
	for i, target := range []string{"c2.example.org:443", "www.site1.example:443"} {
		dur := 40 * time.Minute
		if i == 1 {
			dur = 4 * time.Minute
		}
		for _, r := range xtSession("10.10.0.70", "10.1.0.8", 3128, xtMin(float64(i)), dur, 5*time.Minute, fmt.Sprintf("Cp%d", i)) {
			r.App = &flow.App{HTTPProxyTarget: target, HTTPMethod: "CONNECT"}
			all = append(all, r)
		}
	}
	x.feed(xtByEnd(all)...)
	fs := x.kind(KindLongConnection)
	if len(fs) == 0 || fs[0].FQDN != "c2.example.org" || fs[0].Dst.String() != "10.1.0.8" {
		t.Fatalf("findings %+v", fs)
	}
}

func TestLongConnMemoryBound(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LongConn.MaxPairs = 128
	d := NewLongConn(cfg).(*LongConn)
	prop := func(*Finding) {}
	for i := range 5000 {
		r := xtRec(fmt.Sprintf("10.10.%d.%d", i%5, i%200+1), fmt.Sprintf("198.51.100.%d", i%250+1), uint16(1000+i%3000),
			xtMin(float64(i)/10), xtMin(float64(i)/10+10), 1e3, 1e3, i%2 == 0, fmt.Sprintf("C%d", i))
		d.Observe(r, prop)
	}
	st := d.Stats()
	if d.pairs.len() > 128 || d.dsts.len() > 128 || d.flows.t.len() > 64 || st.Evictions == 0 {
		t.Errorf("pairs %d dsts %d flows %d evictions %d", d.pairs.len(), d.dsts.len(), d.flows.t.len(), st.Evictions)
	}
	t.Logf("stats %+v: %d bytes per key", st, st.Bytes/max(st.Keys, 1))
	d.Tick(xtMin(5*24*60), prop)
	if st := d.Stats(); st.Keys != 0 || d.names.held != 0 {
		t.Errorf("after expiry %+v, %d name bytes", st, d.names.held)
	}
}

// BenchmarkLongConnObserve: mostly short flows (no state), one in sixteen
// an interim record of a long-lived connection with state.
func BenchmarkLongConnObserve(b *testing.B) {
	d := NewLongConn(DefaultConfig())
	rs := xtBenchRecords(4096, 1000)
	for i, r := range rs {
		if i%16 == 0 {
			r.Final = false
			r.Start = xtT0.Add(-time.Hour)
		}
	}
	prop := func(*Finding) {}
	for _, r := range rs {
		d.Observe(r, prop)
	}
	base := rs[len(rs)-1].End
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := rs[i%len(rs)]
		r.End = base.Add(time.Duration(i) * time.Millisecond)
		if r.Final {
			r.Start = r.End.Add(-100 * time.Millisecond)
		}
		d.Observe(r, prop)
	}
	b.StopTimer()
	st := d.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(st.Bytes)/float64(max(st.Keys, 1)), "B/key")
}
