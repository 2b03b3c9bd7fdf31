package eval

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowhound/flowhound/capture/synth"
	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
)

// metricsTruth: two beacons (one found), one exfil (found), an NTP and a
// backup trap, 500 benign pairs.
func metricsTruth() *synth.ScenarioTruth {
	beats := func(n int, period time.Duration) []time.Time {
		var b []time.Time
		for i := range n {
			b = append(b, at(0).Add(time.Duration(i)*period))
		}
		return b
	}
	drop := netip.MustParseAddr("192.0.2.250")
	return &synth.ScenarioTruth{
		Profile: "hand", Seed: 7, BenignPairs: 500,
		Activities: []synth.Activity{
			{ID: "beacon-1", Kind: "beacon", Src: hostA, Dsts: []netip.Addr{c2IP}, Start: at(0), End: at(60), Beats: beats(60, time.Minute)},
			{ID: "beacon-2", Kind: "beacon", Src: hostC, Dsts: []netip.Addr{c2IP}, Start: at(0), End: at(60), Beats: beats(12, 5*time.Minute)},
			{ID: "exfil-1", Kind: "exfil", Src: hostB, Dsts: []netip.Addr{drop}, Start: at(10), End: at(20)},
			{ID: "ntp-1", Kind: "ntp", Benign: true, Src: hostB, Dsts: []netip.Addr{ntpIP}, Start: at(0), End: at(60)},
			{ID: "backup-1", Kind: "backup", Benign: true, Src: hostC, Dsts: []netip.Addr{other}, Start: at(0), End: at(60)},
		},
	}
}

func TestScoreArithmetic(t *testing.T) {
	truth := metricsTruth()
	drop := truth.Activities[2].Dsts[0]
	f := func(uid string, kind detect.Kind, src, dst netip.Addr, when float64, score float64) emission {
		return emission{f: detect.Finding{UID: uid, Kind: kind, Src: src, Dst: dst, Score: score,
			Time: at(when), FirstSeen: at(0), LastSeen: at(when)}, seq: -1}
	}
	// Records of the exfil: an interim record of flow X (1,000 bytes so
	// far), an unrelated flow, X's final record (3,000), another exfil flow
	// Y (500) after the finding.
	recs := []flow.Record{
		{UID: "X", OrigAddr: hostB, RespAddr: drop, Start: at(10), End: at(11), OrigBytes: 1000},
		{UID: "N", OrigAddr: hostB, RespAddr: other, Start: at(10), End: at(11), OrigBytes: 99999},
		{UID: "X", OrigAddr: hostB, RespAddr: drop, Start: at(10), End: at(12), OrigBytes: 3000, Final: true},
		{UID: "Y", OrigAddr: hostB, RespAddr: drop, Start: at(13), End: at(14), OrigBytes: 500, Final: true},
	}
	exfil := f("e1", detect.KindExfil, hostB, drop, 12.5, 0.9)
	exfil.seq = 3 // it had seen the first three records
	ems := []emission{
		f("b1", detect.KindBeacon, hostA, c2IP, 5.5, 0.6), // beats at 0..5 → 6
		f("b1", detect.KindBeacon, hostA, c2IP, 9.5, 0.8), // update of the same UID
		f("b2", detect.KindBeacon, hostB, ntpIP, 30, 0.7), // FP on the NTP trap
		f("b3", detect.KindBeacon, hostB, other, 30, 0.7), // unlabelled FP
		f("b4", detect.KindBeacon, hostC, other, 30, 0.7), // FP on the backup trap
		exfil,
		f("l1", detect.KindLongConnection, hostA, c2IP, 40, 0.5), // related to beacon-1
	}
	res := score(scoreInput{system: "test", scenario: "s", truth: truth, ems: ems, records: recs, slack: time.Minute})

	b := res.Kind(detect.KindBeacon)
	if b == nil {
		t.Fatal("no beacon row")
	}
	want := KindResult{Kind: detect.KindBeacon, Activities: 2, Detected: 1, Findings: 4, TruePositives: 1, FPTraps: 2, FPUnlabelled: 1, BenignPairs: 500}
	if b.Activities != want.Activities || b.Detected != want.Detected || b.Findings != want.Findings || b.TruePositives != want.TruePositives ||
		b.FPTraps != want.FPTraps || b.FPUnlabelled != want.FPUnlabelled || b.Related != 0 {
		t.Errorf("beacon counts = %+v", b)
	}
	checkRatio(t, "beacon recall", b.Recall, 0.5)
	checkRatio(t, "beacon precision", b.Precision, 0.25)
	checkRatio(t, "beacon fp/1k", b.FPPer1kPairs, 6) // 3 FP × 1000 / 500
	if len(b.TrapsHit) != 2 || b.TrapsHit[0] != "ntp-1 (ntp)" || b.TrapsHit[1] != "backup-1 (backup)" {
		t.Errorf("traps hit = %q", b.TrapsHit)
	}
	checkPtr(t, "median beats", b.Detection.MedianBeats, 6)
	checkPtr(t, "median minutes", b.Detection.MedianMinutes, 5.5)

	e := res.Kind(detect.KindExfil)
	checkRatio(t, "exfil recall", e.Recall, 1)
	checkRatio(t, "exfil precision", e.Precision, 1)
	checkPtr(t, "exfil bytes", e.Detection.MedianBytes, 3000) // X's latest record before the finding; Y came later
	checkPtr(t, "exfil minutes", e.Detection.MedianMinutes, 2.5)

	lc := res.Kind(detect.KindLongConnection)
	if lc.Findings != 1 || lc.Related != 1 || lc.FalsePositives() != 0 {
		t.Errorf("long connection = %+v", lc)
	}
	if _, ok := lc.Precision.Value(); ok {
		t.Error("precision of related findings only should be undefined")
	}
	if _, ok := lc.Recall.Value(); ok {
		t.Error("recall without activities should be undefined")
	}

	for _, a := range res.Activities {
		switch a.ID {
		case "beacon-1":
			if !a.Detected || *a.BeatsToDetect != 6 || a.Beats != 60 || len(a.Findings) != 1 {
				t.Errorf("beacon-1 = %+v", a)
			}
		case "beacon-2":
			if a.Detected || a.FirstDetection != nil {
				t.Errorf("beacon-2 = %+v", a)
			}
		case "ntp-1", "backup-1":
			if !a.Detected || len(a.Findings) != 1 {
				t.Errorf("%s = %+v", a.ID, a)
			}
		}
	}
}

func TestTotalsMicroAverage(t *testing.T) {
	mk := func(name string, acts, det, tp, fp, pairs int) ScenarioReport {
		sr := ScenarioReport{Name: name, BenignPairs: pairs}
		var ar []ActivityResult
		for i := range acts {
			a := ActivityResult{ID: "b" + itoa(i), Kind: "beacon", Detected: i < det}
			if a.Detected {
				d := float64(10 * (i + 1))
				a.DelayMinutes = &d
			}
			ar = append(ar, a)
		}
		var fr []FindingResult
		for i := range tp {
			fr = append(fr, FindingResult{UID: "t" + itoa(i), Kind: detect.KindBeacon, Class: ClassTP})
		}
		for i := range fp {
			fr = append(fr, FindingResult{UID: "f" + itoa(i), Kind: detect.KindBeacon, Class: ClassUnlabelled})
		}
		sys := SystemResult{System: "x", Activities: ar, Findings: fr}
		sys.Kinds = []KindResult{kindResult(detect.KindBeacon, ar, fr, pairs, name)}
		sr.Systems = []SystemResult{sys}
		return sr
	}
	// Scenario A: 1 of 2 found, 1 TP, 3 FP, 100 pairs. B: 1 of 1, 1 TP, 0 FP, 900 pairs.
	tot := Totals([]ScenarioReport{mk("A", 2, 1, 1, 3, 100), mk("B", 1, 1, 1, 0, 900)})
	if len(tot) != 1 {
		t.Fatalf("totals = %+v", tot)
	}
	k := tot[0].Kind(detect.KindBeacon)
	checkRatio(t, "recall", k.Recall, 2.0/3)     // not (0.5+1)/2
	checkRatio(t, "precision", k.Precision, 0.4) // 2 / 5
	checkRatio(t, "fp/1k", k.FPPer1kPairs, 3)    // 3 × 1000 / 1000
	checkPtr(t, "median delay", k.Detection.MedianMinutes, 10)
	if len(tot[0].Activities) != 0 || len(tot[0].Findings) != 0 {
		t.Error("totals should not repeat the per-activity results")
	}
}

func TestQuantile(t *testing.T) {
	if quantile(nil, 0.5) != nil {
		t.Error("quantile of nothing should be nil")
	}
	checkPtr(t, "median odd", quantile([]float64{3, 1, 2}, 0.5), 2)
	checkPtr(t, "median even", quantile([]float64{4, 1, 2, 3}, 0.5), 2.5)
	checkPtr(t, "p90", quantile([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 0.9), 10)
}

func TestRatioJSON(t *testing.T) {
	for _, tc := range []struct {
		r    Ratio
		want string
	}{{Ratio{1, 3}, "0.3333"}, {Ratio{0, 0}, "null"}, {Ratio{0, 5}, "0"}, {Ratio{2, 2}, "1"}} {
		b, _ := tc.r.MarshalJSON()
		if string(b) != tc.want {
			t.Errorf("%v → %s, want %s", tc.r, b, tc.want)
		}
	}
}

func checkRatio(t *testing.T, name string, r Ratio, want float64) {
	t.Helper()
	v, ok := r.Value()
	if !ok || abs(v-want) > 1e-9 {
		t.Errorf("%s = %v (defined %v), want %v", name, v, ok, want)
	}
}

func checkPtr(t *testing.T, name string, p *float64, want float64) {
	t.Helper()
	if p == nil || abs(*p-want) > 1e-9 {
		if p == nil {
			t.Errorf("%s = nil, want %v", name, want)
		} else {
			t.Errorf("%s = %v, want %v", name, *p, want)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
