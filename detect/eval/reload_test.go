package eval

import (
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flowhound/flowhound/capture/synth"
	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
)

// emitted is what a test compares of a finding emission.
type emitted struct {
	kind   detect.Kind
	uid    string
	status detect.Status
	score  float64
	dst    netip.Addr
	fqdn   string
	late   bool // emitted after the reconfiguration point
}

// TestReconfigureKeepsState replays the enterprise scenario and
// reconfigures the engine a third of the way through, as SIGHUP does: the same
// settings change nothing (state kept; a restart would change the
// findings), an allowlist silences what it names from then on, and
// raised thresholds stop new findings.
func TestReconfigureKeepsState(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and replays a scenario")
	}
	dir := filepath.Join(t.TempDir(), "enterprise")
	truth, err := synth.WriteScenarioFiles(dir, synth.ScenarioConfig{Profile: "enterprise", Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	_, pcap, err := LoadScenario(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := captureStream(pcap, truth)
	if err != nil {
		t.Fatal(err)
	}
	base := detect.DefaultConfig()
	if s.env.HomeNets != nil {
		base.HomeNets = s.env.HomeNets
	}
	base.Allow = &detect.Allowlist{Nets: flow.NewNetworks(s.env.Allowlist)}
	recs := s.recs[0]
	// A third of the way in: the scenario's scans, DNS tunnel, exfil and
	// several beacons are first reported after that.
	mid := len(recs) / 3

	// run replays the stream with base and calls at(engine) before record
	// mid; it returns every emission.
	run := func(at func(*detect.Engine)) []emitted {
		var out []emitted
		late := false
		e := detect.NewEngine("t", func(f *detect.Finding) {
			out = append(out, emitted{f.Kind, f.UID, f.Status, f.Score, f.Dst, f.FQDN, late})
		}, detect.NewDetectors(base)...)
		for i := range recs {
			for _, tk := range s.ticks[i] {
				e.Tick(tk)
			}
			if i == mid {
				if at != nil {
					at(e)
				}
				late = true
			}
			e.Record(&recs[i])
		}
		for _, tk := range s.tail {
			e.Tick(tk)
		}
		return out
	}

	ref := run(nil)
	lateNew := map[detect.Kind]int{}
	for _, f := range ref {
		if f.status == detect.StatusNew && f.late {
			lateNew[f.kind]++
		}
	}
	t.Logf("%d emissions without reconfiguration; new after the midpoint by kind: %v", len(ref), lateNew)

	// The same settings: identical emissions, nothing reported as kept.
	var kept []string
	same := run(func(e *detect.Engine) { kept = e.Reconfigure(base) })
	if len(kept) != 0 {
		t.Errorf("reconfiguring with the running settings reports %v as kept", kept)
	}
	if !equalEmissions(same, ref) {
		t.Errorf("reconfiguring with the same settings changed the findings: %d emissions, want %d", len(same), len(ref))
	}
	// The test can tell: dropping the detectors' state (every detector
	// disabled, then enabled again: a restart) changes them.
	restart := run(func(e *detect.Engine) {
		off := base
		off.Beacon.Enabled, off.LongConn.Enabled, off.Exfil.Enabled = false, false, false
		off.DNSExfil.Enabled, off.Lateral.Enabled, off.Scan.Enabled = false, false, false
		e.Reconfigure(off)
		e.Reconfigure(base)
	})
	if equalEmissions(restart, ref) {
		t.Error("a restart at the midpoint gives the same findings: the scenario cannot show that state is kept")
	}

	// An allowlist added then: nothing is emitted after that about the
	// destinations it names, what it does not name goes on.
	// Destinations by address, or by name for name-keyed findings.
	named := map[netip.Addr]bool{}
	names := map[string]bool{}
	var nets []netip.Prefix
	var domains []string
	isNamed := func(f emitted) bool { return f.dst.IsValid() && named[f.dst] || f.fqdn != "" && names[f.fqdn] }
	for _, f := range ref {
		if !f.late || f.kind != detect.KindBeacon && f.kind != detect.KindExfil && f.kind != detect.KindLongConnection || isNamed(f) {
			continue
		}
		switch {
		case f.fqdn != "":
			names[f.fqdn] = true
			domains = append(domains, f.fqdn)
		case f.dst.IsValid():
			named[f.dst] = true
			nets = append(nets, netip.PrefixFrom(f.dst, f.dst.BitLen()))
		}
	}
	kinds := map[detect.Kind]bool{}
	for _, f := range ref {
		if f.late && isNamed(f) {
			kinds[f.kind] = true
		}
	}
	if !kinds[detect.KindBeacon] || !kinds[detect.KindExfil] {
		t.Fatalf("emissions after the midpoint to allowlist cover %v; want beacon and exfil", kinds)
	}
	allowed := base
	allowed.Allow = &detect.Allowlist{Nets: flow.NewNetworks(append(slices.Clone(s.env.Allowlist), nets...)), Domains: domains}
	got := run(func(e *detect.Engine) { e.Reconfigure(allowed) })
	others := 0
	for _, f := range got {
		if f.late && isNamed(f) {
			t.Errorf("%s %s to allowlisted %v %q emitted after the reload", f.kind, f.status, f.dst, f.fqdn)
		}
		if f.late && !isNamed(f) {
			others++
		}
	}
	refOthers := 0
	for _, f := range ref {
		if f.late && !isNamed(f) {
			refOthers++
		}
	}
	if refOthers > 0 && others == 0 {
		t.Errorf("after allowlisting %d addresses and %d names nothing else was emitted either (%d before)", len(named), len(names), refOthers)
	}

	// Thresholds out of reach: no new finding of those kinds after the
	// reload; the running windows and beats are kept, so nothing older is
	// reported again either.
	strict := base
	strict.Beacon.MinBeats = 1 << 20
	strict.Exfil.MinBytes, strict.Exfil.SlowBytes = 1<<62, 1<<62
	strict.DNSExfil.MinNames = 1 << 30
	strict.Scan.Vertical, strict.Scan.Horizontal = 1<<30, 1<<30
	strict.LongConn.MinTotal = 1 << 62
	got = run(func(e *detect.Engine) { kept = e.Reconfigure(strict) })
	if len(kept) != 0 {
		t.Errorf("thresholds reported as kept: %v", kept)
	}
	checked := 0
	for _, k := range []detect.Kind{detect.KindBeacon, detect.KindExfil, detect.KindDNSExfil, detect.KindScan, detect.KindLongConnection} {
		if lateNew[k] == 0 {
			continue
		}
		checked++
		for _, f := range got {
			if f.late && f.kind == k && f.status == detect.StatusNew {
				t.Errorf("new %s finding %s after thresholds were raised out of reach", k, f.uid)
			}
		}
	}
	if checked < 2 {
		t.Errorf("only %d kinds have new findings after the midpoint: the scenario does not exercise thresholds", checked)
	}

	// Settings that shape state keep their running values, and say so.
	budget := base
	budget.Beacon.MaxPairs = base.Beacon.MaxPairs / 2
	budget.Exfil.SlowWindow = 2 * base.Exfil.SlowWindow
	run(func(e *detect.Engine) { kept = e.Reconfigure(budget) })
	if !slices.Equal(kept, []string{"detect.beacon.max_pairs", "detect.exfil.slow_window"}) {
		t.Errorf("kept = %v, want detect.beacon.max_pairs and detect.exfil.slow_window", kept)
	}
}

func equalEmissions(a, b []emitted) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.kind != y.kind || x.uid != y.uid || x.status != y.status || x.score != y.score || x.dst != y.dst {
			return false
		}
	}
	return true
}
