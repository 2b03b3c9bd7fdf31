package detect

import (
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/flowhound/flowhound/flow"
)

var lmT0 = time.Date(2026, 1, 5, 7, 0, 0, 0, time.UTC)

var lmHome = flow.DefaultHomeNets()

// lmRec builds a final TCP record from src to dst:port that starts at t0+at
// and lasts dur, with out and in payload bytes. No payload makes it an
// unanswered attempt (S0).
func lmRec(at, dur time.Duration, src, dst string, port uint16, out, in uint64) *flow.Record {
	r := &flow.Record{
		Start: lmT0.Add(at), End: lmT0.Add(at + dur),
		OrigAddr: netip.MustParseAddr(src), RespAddr: netip.MustParseAddr(dst),
		OrigPort: 50000, RespPort: port, Proto: flow.ProtoTCP,
		OrigBytes: out, RespBytes: in, OrigPkts: 3, RespPkts: 3,
		ConnState: "SF", Final: true,
	}
	if out == 0 && in == 0 {
		r.ConnState, r.RespPkts = "S0", 0
	}
	r.LocalOrig, r.LocalResp = lmHome.Contains(r.OrigAddr), lmHome.Contains(r.RespAddr)
	return r
}

func lmState(r *flow.Record, state string) *flow.Record { r.ConnState = state; return r }

func lmInterim(r *flow.Record) *flow.Record { r.Final = false; return r }

// lmRun feeds records to an engine and keeps what it emits.
type lmRun struct {
	t   *testing.T
	eng *Engine
	col lmCollector
	det Detector
}

func newLmRun(t *testing.T, det Detector) *lmRun {
	r := &lmRun{t: t, det: det}
	r.eng = NewEngine("test", r.col.add, det)
	return r
}

func (r *lmRun) feed(recs ...*flow.Record) {
	for _, rec := range recs {
		r.eng.Record(rec)
	}
}

// warm makes hosts seen at t0 (a DNS query each), so that their learning
// starts there.
func (r *lmRun) warm(hosts ...string) {
	for _, h := range hosts {
		rec := lmRec(0, time.Millisecond, h, "10.1.0.10", 53, 40, 80)
		rec.Proto = flow.ProtoUDP
		r.feed(rec)
	}
}

// byUID returns the last emission of every finding, in order of first
// emission.
func (r *lmRun) byUID() []Finding {
	var out []Finding
	idx := map[string]int{}
	for _, f := range r.col.fs {
		if i, ok := idx[f.UID]; ok {
			out[i] = f
			continue
		}
		idx[f.UID] = len(out)
		out = append(out, f)
	}
	return out
}

func (r *lmRun) none() {
	r.t.Helper()
	for _, f := range r.col.fs {
		r.t.Errorf("unexpected %s finding %s → %s:%d score %.2f subs %v notes %q", f.Kind, f.Src, f.Dst, f.DstPort, f.Score, f.SubScores, f.Evidence.Notes)
	}
}

func sub(f Finding, name string) float64 {
	for _, s := range f.SubScores {
		if s.Name == name {
			return s.Value
		}
	}
	return -1
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// psexec is SMB with an admin-share upload, the endpoint mapper, then the
// service control manager on a dynamic port.
func psexec(at time.Duration, src, dst string) []*flow.Record {
	return []*flow.Record{
		lmRec(at, 3*time.Second, src, dst, 445, 400_000, 9_000),
		lmRec(at+2*time.Second, 200*time.Millisecond, src, dst, 135, 272, 236),
		lmRec(at+3*time.Second, time.Second, src, dst, 49713, 1734, 1048),
	}
}

func TestLateralPsexec(t *testing.T) {
	for _, baseline := range []bool{true, false} {
		t.Run("baseline="+strconv.FormatBool(baseline), func(t *testing.T) {
			run := newLmRun(t, NewLateral(DefaultConfig()))
			at := time.Duration(0)
			if baseline {
				run.warm("10.10.1.5", "10.10.1.9")
				at = 2 * time.Hour
			}
			run.feed(psexec(at, "10.10.1.5", "10.10.1.9")...)
			fs := run.byUID()
			if len(fs) != 1 {
				t.Fatalf("%d findings, want 1: %+v", len(fs), fs)
			}
			f := fs[0]
			if f.Kind != KindLateralMovement || f.Src != netip.MustParseAddr("10.10.1.5") || f.Dst != netip.MustParseAddr("10.10.1.9") {
				t.Errorf("finding %s %s → %s", f.Kind, f.Src, f.Dst)
			}
			if ex := sub(f, "exec_shape"); ex < 0.85 {
				t.Errorf("exec_shape %.2f, want ≥ 0.85", ex)
			}
			for _, id := range []string{"T1021.002", "T1569.002", "T1570"} {
				if !slices.Contains(f.MITRE, id) {
					t.Errorf("MITRE %v lacks %s", f.MITRE, id)
				}
			}
			want := 0.85
			if baseline {
				want = 0.9
			}
			if f.Score < want {
				t.Errorf("score %.3f, want ≥ %.2f", f.Score, want)
			}
			if f.Evidence.BytesOut != 400_000 {
				t.Errorf("bytes out %d", f.Evidence.BytesOut)
			}
		})
	}
}

func TestLateralWMI(t *testing.T) {
	run := newLmRun(t, NewLateral(DefaultConfig()))
	run.feed(
		lmRec(0, time.Millisecond, "172.16.66.1", "172.16.66.36", 445, 144, 144), // negotiate only
		lmRec(5*time.Second, 60*time.Millisecond, "172.16.66.1", "172.16.66.36", 135, 2840, 1501),
		lmRec(5*time.Second, 50*time.Millisecond, "172.16.66.1", "172.16.66.36", 49670, 9555, 82489),
	)
	fs := run.byUID()
	if len(fs) != 1 {
		t.Fatalf("%d findings, want 1", len(fs))
	}
	f := fs[0]
	if !slices.Contains(f.MITRE, "T1047") || slices.Contains(f.MITRE, "T1569.002") {
		t.Errorf("MITRE %v, want T1047 and not T1569.002", f.MITRE)
	}
	if f.Score < 0.7 {
		t.Errorf("score %.2f", f.Score)
	}
}

func TestLateralDCSync(t *testing.T) {
	for _, knownDC := range []bool{false, true} {
		t.Run("dc="+strconv.FormatBool(knownDC), func(t *testing.T) {
			run := newLmRun(t, NewLateral(DefaultConfig()))
			if knownDC {
				krb := lmRec(0, time.Millisecond, "10.10.1.7", "10.1.0.10", 88, 1500, 1400)
				krb.Proto = flow.ProtoUDP
				run.feed(krb)
			}
			// The dynamic-port session ends first; the DC's SMB
			// back-connection gives it its context afterwards.
			run.feed(
				lmRec(time.Second, 260*time.Millisecond, "10.10.1.7", "10.1.0.10", 49667, 1400, 6920),
				lmRec(1400*time.Millisecond, time.Millisecond, "10.1.0.10", "10.10.1.7", 445, 144, 144),
			)
			fs := run.byUID()
			if len(fs) != 1 {
				t.Fatalf("%d findings, want 1: %+v", len(fs), fs)
			}
			f := fs[0]
			if f.Src != netip.MustParseAddr("10.10.1.7") || f.Dst != netip.MustParseAddr("10.1.0.10") || f.Score < 0.5 {
				t.Errorf("finding %s → %s score %.2f", f.Src, f.Dst, f.Score)
			}
			if got := slices.Contains(f.MITRE, "T1003.006"); got != knownDC {
				t.Errorf("MITRE %v: T1003.006 %v, want %v", f.MITRE, got, knownDC)
			}
		})
	}
}

func TestLateralFanOut(t *testing.T) {
	peers := []string{"10.10.2.1", "10.10.2.2", "10.10.2.3", "10.10.2.4", "10.10.2.5", "10.10.2.6"}
	fanOut := func(run *lmRun, at time.Duration) {
		for i, p := range peers {
			run.feed(lmRec(at+time.Duration(i)*90*time.Second, 2*time.Second, "10.10.1.5", p, 445, 2400, 3100))
		}
	}
	t.Run("after learning", func(t *testing.T) {
		run := newLmRun(t, NewLateral(DefaultConfig()))
		run.warm("10.10.1.5")
		fanOut(run, 3*time.Hour)
		fs := run.byUID()
		if len(fs) != 1 {
			t.Fatalf("%d findings, want 1", len(fs))
		}
		f := fs[0]
		// The sixth peer moves the score less than MinScoreChange, so the
		// last emission may list five.
		if f.Dst.IsValid() || f.Evidence.Count < 5 || len(f.Evidence.Peers) < 5 {
			t.Errorf("dst %v count %d peers %v", f.Dst, f.Evidence.Count, f.Evidence.Peers)
		}
		if fo := sub(f, "fan_out"); fo < 0.6 {
			t.Errorf("fan_out %.2f", fo)
		}
		if f.Score < 0.7 || !slices.Contains(f.MITRE, "T1021.002") {
			t.Errorf("score %.2f MITRE %v", f.Score, f.MITRE)
		}
	})
	t.Run("without baseline", func(t *testing.T) {
		// The same six peers while learning: new edges weigh a quarter.
		run := newLmRun(t, NewLateral(DefaultConfig()))
		fanOut(run, 0)
		run.none()
	})
	t.Run("slow", func(t *testing.T) {
		// One new peer every 15 minutes is not fan-out.
		run := newLmRun(t, NewLateral(DefaultConfig()))
		run.warm("10.10.1.5")
		for i, p := range peers {
			run.feed(lmRec(3*time.Hour+time.Duration(i)*15*time.Minute, 2*time.Second, "10.10.1.5", p, 445, 2400, 3100))
		}
		run.none()
	})
}

func TestLateralRDPChain(t *testing.T) {
	const a, b, c = "10.10.1.12", "10.10.1.13", "10.1.0.10"
	ab := func() []*flow.Record {
		return []*flow.Record{
			lmInterim(lmRec(2*time.Hour, 5*time.Minute, a, b, 3389, 30_000, 900_000)),
			lmRec(2*time.Hour, 22*time.Minute, a, b, 3389, 90_000, 4_000_000),
		}
	}
	bc := func() []*flow.Record {
		return []*flow.Record{
			lmInterim(lmRec(2*time.Hour+5*time.Minute, 5*time.Minute, b, c, 3389, 20_000, 700_000)),
			lmRec(2*time.Hour+5*time.Minute, 9*time.Minute, b, c, 3389, 40_000, 1_500_000),
		}
	}
	for _, order := range []string{"ab-first", "bc-first"} {
		t.Run(order, func(t *testing.T) {
			run := newLmRun(t, NewLateral(DefaultConfig()))
			run.warm(a, b, c)
			if order == "ab-first" {
				run.feed(ab()...)
				run.feed(bc()...)
			} else {
				run.feed(bc()...)
				run.feed(ab()...)
			}
			fs := run.byUID()
			var chain *Finding
			for i := range fs {
				if sub(fs[i], "chain") > 0 {
					if chain != nil {
						t.Errorf("two chain findings")
					}
					chain = &fs[i]
				}
			}
			if chain == nil {
				t.Fatalf("no chain finding in %+v", fs)
			}
			if chain.Src != netip.MustParseAddr(b) || chain.Dst != netip.MustParseAddr(c) || !slices.Equal(chain.Evidence.Peers, addrs(a, b, c)) {
				t.Errorf("chain %s → %s peers %v", chain.Src, chain.Dst, chain.Evidence.Peers)
			}
			if chain.Score < 0.75 || !slices.Contains(chain.MITRE, "T1021.001") {
				t.Errorf("chain score %.2f MITRE %v", chain.Score, chain.MITRE)
			}
		})
	}
	t.Run("too late", func(t *testing.T) {
		run := newLmRun(t, NewLateral(DefaultConfig()))
		run.warm(a, b, c)
		run.feed(lmRec(2*time.Hour, 10*time.Minute, a, b, 3389, 30_000, 900_000))
		run.feed(lmRec(3*time.Hour, 10*time.Minute, b, c, 3389, 30_000, 900_000))
		for _, f := range run.byUID() {
			if sub(f, "chain") > 0 {
				t.Errorf("chain %s → %s an hour after the first hop ended", f.Src, f.Dst)
			}
		}
	})
}

// TestLateralJumpHost: two admins RDP to the jump host from the first
// minutes and every morning after; from it they SSH and RDP to servers,
// some of which are new on the second day. Nothing is lateral movement.
func TestLateralJumpHost(t *testing.T) {
	const jump = "10.1.0.40"
	admins := []string{"10.10.1.2", "10.10.1.3"}
	lnx := []string{"10.1.0.70", "10.1.0.71", "10.1.0.72", "10.1.0.73", "10.1.0.74", "10.1.0.75", "10.1.0.76", "10.1.0.77"}
	apps := []string{"10.1.0.21", "10.1.0.22", "10.1.0.23", "10.1.0.24"}
	run := newLmRun(t, NewLateral(DefaultConfig()))
	run.warm(append(append([]string{jump}, admins...), lnx...)...)
	day := func(start time.Duration, d int) {
		for a, admin := range admins {
			t0 := start + time.Duration(a)*7*time.Minute
			run.feed(lmInterim(lmRec(t0, 5*time.Minute, admin, jump, 3389, 20_000, 600_000)))
			for k := range 3 {
				dst := lnx[(a+2*k+d)%len(lnx)]
				run.feed(lmRec(t0+time.Duration(3+6*k)*time.Minute, 6*time.Minute, jump, dst, 22, 9_000, 80_000))
			}
			run.feed(lmRec(t0+15*time.Minute, 10*time.Minute, jump, apps[(a+d)%len(apps)], 3389, 30_000, 900_000))
			run.feed(lmRec(t0, 35*time.Minute, admin, jump, 3389, 60_000, 3_000_000))
		}
	}
	day(5*time.Minute, 0)
	for d := 1; d <= 4; d++ {
		day(time.Duration(d)*24*time.Hour+90*time.Minute, d)
	}
	run.none()
}

func TestLateralAllowlistedScanner(t *testing.T) {
	const scanner = "10.1.0.60"
	feed := func(run *lmRun) {
		run.warm(scanner)
		for i := range 40 {
			h := "10.10.3." + strconv.Itoa(i+1)
			at := 2*time.Hour + time.Duration(i)*5*time.Second
			run.feed(
				lmRec(at, time.Second, scanner, h, 445, 5_000, 6_000),
				lmRec(at+time.Second, time.Second, scanner, h, 135, 300, 250),
				lmRec(at+2*time.Second, time.Second, scanner, h, 49667, 2_000, 9_000),
				lmRec(at+3*time.Second, time.Second, scanner, h, 22, 2_000, 2_000),
			)
		}
	}
	cfg := DefaultConfig()
	cfg.Allow = &Allowlist{Nets: flow.NewNetworks([]netip.Prefix{netip.MustParsePrefix(scanner + "/32")})}
	run := newLmRun(t, NewLateral(cfg))
	feed(run)
	run.none()

	// Without the allowlist the same sweep is remote execution on forty hosts.
	run = newLmRun(t, NewLateral(DefaultConfig()))
	feed(run)
	if fs := run.byUID(); len(fs) == 0 || fs[0].Score < 0.9 {
		t.Errorf("unallowlisted credentialed sweep: %+v", fs)
	}
}

func TestLateralBenignSMB(t *testing.T) {
	const files = "10.1.0.20"
	run := newLmRun(t, NewLateral(DefaultConfig()))
	ws := []string{"10.10.1.20", "10.10.1.21", "10.10.1.22", "10.10.1.23", "10.10.1.24", "10.10.1.25", "10.10.1.26"}
	run.warm(ws...)
	for i, w := range ws[:6] {
		run.feed(lmRec(time.Duration(i+1)*5*time.Minute, 10*time.Second, w, files, 445, 3_000, 250_000))
	}
	// A known client moves a big file; a client that never used the share
	// opens it the next day; both also look up an RPC endpoint.
	run.feed(lmRec(26*time.Hour, 40*time.Second, ws[0], files, 445, 50<<20, 80_000))
	run.feed(lmRec(26*time.Hour+time.Minute, time.Second, ws[0], files, 135, 300, 250))
	run.feed(lmRec(27*time.Hour, 5*time.Second, ws[6], files, 445, 1_516_006, 6_125))
	run.none()

	// A single upload to an unknown server without a baseline (smb2.pcap).
	run = newLmRun(t, NewLateral(DefaultConfig()))
	run.feed(lmRec(0, 433*time.Millisecond, "10.0.0.11", "10.0.0.12", 445, 1_516_006, 6_125))
	run.none()
}

func TestLateralBruteForce(t *testing.T) {
	run := newLmRun(t, NewLateral(DefaultConfig()))
	for i := range 40 {
		at := time.Duration(i) * 320 * time.Millisecond
		out, in, dur := uint64(1744), uint64(1839), 3500*time.Millisecond
		if i%7 == 3 {
			out, in, dur = 24, 22, 7*time.Millisecond // banner then reset
		}
		run.feed(lmRec(at, dur, "10.32.80.40", "10.32.80.37", 902, out, in))
	}
	fs := run.byUID()
	if len(fs) != 1 {
		t.Fatalf("%d findings, want 1", len(fs))
	}
	f := fs[0]
	if sub(f, "brute_force") < 0.6 || !slices.Contains(f.MITRE, "T1110.001") || f.DstPort != 902 {
		t.Errorf("finding subs %v MITRE %v port %d", f.SubScores, f.MITRE, f.DstPort)
	}
	if f.Evidence.Connections != 40 {
		t.Errorf("connections %d, want 40", f.Evidence.Connections)
	}

	// Sessions of very different sizes (an application's requests) are
	// not guessing.
	run = newLmRun(t, NewLateral(DefaultConfig()))
	for i := range 60 {
		run.feed(lmRec(time.Duration(i)*time.Second, 200*time.Millisecond, "10.10.1.5", "10.1.0.90", 9000, uint64(200+i*997%20000), 5000))
	}
	run.none()

	// SSH sessions to one server through the day (ssh.pcap) are not either.
	run = newLmRun(t, NewLateral(DefaultConfig()))
	for i := range 30 {
		run.feed(lmRec(time.Duration(i)*17*time.Minute, 3*time.Second, "192.168.2.1", "192.168.2.158", 22, 600, 800))
	}
	run.none()
}

func TestLateralScriptedRDP(t *testing.T) {
	run := newLmRun(t, NewLateral(DefaultConfig()))
	run.feed(
		lmRec(0, 14*time.Second, "192.168.56.1", "192.168.56.101", 3389, 8753, 5877),
		lmRec(27*time.Second, 11*time.Second, "192.168.56.1", "192.168.56.101", 3389, 9235, 5740),
	)
	fs := run.byUID()
	if len(fs) != 1 {
		t.Fatalf("%d findings, want 1", len(fs))
	}
	if f := fs[0]; f.Score < 0.3 || f.Score >= 0.5 || f.Severity != SeverityLow || sub(f, "scripted_rdp") <= 0 {
		t.Errorf("score %.2f severity %s subs %v", f.Score, f.Severity, f.SubScores)
	}

	// One interactive session, however new, is not a finding.
	run = newLmRun(t, NewLateral(DefaultConfig()))
	run.warm("10.10.1.5")
	run.feed(lmRec(3*time.Hour, 25*time.Minute, "10.10.1.5", "10.10.1.6", 3389, 80_000, 3_000_000))
	run.none()
}

func TestLateralMemoryBound(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Lateral.MaxHosts = 64
	d := NewLateral(cfg)
	run := newLmRun(t, d)
	for i := range 5000 {
		src := netip.AddrFrom4([4]byte{10, 20, byte(i >> 8), byte(i)}).String()
		dst := netip.AddrFrom4([4]byte{10, 30, byte(i >> 8), byte(i)}).String()
		at := time.Duration(i) * time.Second
		run.feed(lmRec(at, time.Second, src, dst, 445, 3000, 3000), lmRec(at, time.Second, src, dst, 3389, 3000, 3000))
	}
	st := d.Stats()
	l := d.(*Lateral)
	if len(l.seen) > 64 || len(l.hosts) > 64 || len(l.edges) > 4*64 || len(l.pop) > 64 {
		t.Errorf("tables over their caps: seen %d hosts %d edges %d pop %d", len(l.seen), len(l.hosts), len(l.edges), len(l.pop))
	}
	if st.Evictions == 0 || st.Keys > 64*7 {
		t.Errorf("stats %+v", st)
	}
	if st.Bytes > 200<<10 {
		t.Errorf("%d bytes for 64 hosts", st.Bytes)
	}
	t.Logf("stats after 5000 sources at MaxHosts 64: %+v", st)
}

// TestLateralPromotion: an edge first used after learning joins the
// baseline after a day of repeated use, unless it was part of a finding.
func TestLateralPromotion(t *testing.T) {
	d := NewLateral(DefaultConfig()).(*Lateral)
	run := newLmRun(t, d)
	run.warm("10.10.1.5", "10.10.1.6")
	run.feed(lmRec(2*time.Hour, 20*time.Minute, "10.10.1.5", "10.10.1.6", 3389, 80_000, 3_000_000))
	e := d.edges[latEdgeKey{latKeyOf(netip.MustParseAddr("10.10.1.5")), latKeyOf(netip.MustParseAddr("10.10.1.6"))}]
	if e == nil || e.classes&latRDP == 0 || e.baseline&latRDP != 0 {
		t.Fatalf("edge after first use: %+v", e)
	}
	run.feed(lmRec(27*time.Hour, 20*time.Minute, "10.10.1.5", "10.10.1.6", 3389, 80_000, 3_000_000))
	if e.baseline&latRDP == 0 {
		t.Errorf("edge not promoted after a day of use")
	}
	run.none()

	// PsExec's edges are flagged and stay out of the baseline.
	run.feed(psexec(30*time.Hour, "10.10.1.5", "10.10.2.9")...)
	run.feed(psexec(56*time.Hour, "10.10.1.5", "10.10.2.9")...)
	e = d.edges[latEdgeKey{latKeyOf(netip.MustParseAddr("10.10.1.5")), latKeyOf(netip.MustParseAddr("10.10.2.9"))}]
	if !e.flagged || e.baseline&latSMB != 0 {
		t.Errorf("flagged edge: %+v", e)
	}
	if fs := run.byUID(); len(fs) != 2 || fs[1].Score < 0.9 {
		t.Errorf("repeated PsExec a day later: %d findings %+v", len(fs), fs)
	}
}

func TestLatDistinctAccuracy(t *testing.T) {
	for _, n := range []int{10, 50, 100, 300, 1000} {
		var a latDistinct
		for i := range n {
			a.add(latMix(uint64(i) + 0x51ed27))
		}
		est := latLinearCount(a.ones())
		if b := latBitsFor(float64(n)); b < a.ones()-25 || b > a.ones()+25 {
			t.Errorf("n=%d: %d bits set, latBitsFor says %d", n, a.ones(), b)
		}
		if err := (est - float64(n)) / float64(n); err < -0.12 || err > 0.12 {
			t.Errorf("n=%d: estimate %.0f", n, est)
		}
	}
}
