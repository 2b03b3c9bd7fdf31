package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
)

func TestRunZeroDetectors(t *testing.T) {
	dir, _ := writeFixture(t)
	for _, factory := range []Factory{nil, func(Env) []detect.Detector { return nil }} {
		rep, err := Run(context.Background(), dir, Options{Detectors: factory})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Scenarios) != 1 || len(rep.Scenarios[0].Systems) != 2 {
			t.Fatalf("want one scenario with two systems, got %+v", rep.Scenarios)
		}
		sc := rep.Scenarios[0]
		if sc.Flows == 0 || sc.Packets == 0 {
			t.Fatalf("nothing replayed: %+v", sc)
		}
		fh := sc.Systems[0]
		if fh.System != SystemFlowhound {
			t.Fatalf("first system %q", fh.System)
		}
		for _, k := range fh.Kinds {
			if k.Findings != 0 || k.Detected != 0 {
				t.Errorf("%s: findings without detectors: %+v", k.Kind, k)
			}
			if r, ok := k.Recall.Value(); k.Activities > 0 && (!ok || r != 0) {
				t.Errorf("%s: recall %v %v, want 0", k.Kind, r, ok)
			}
			if _, ok := k.Precision.Value(); ok {
				t.Errorf("%s: precision defined without findings", k.Kind)
			}
			if v, ok := k.FPPer1kPairs.Value(); !ok || v != 0 {
				t.Errorf("%s: fp/1k = %v %v, want 0", k.Kind, v, ok)
			}
		}
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"precision":null`) {
			t.Errorf("undefined precision not encoded as null: %s", b)
		}
		var text bytes.Buffer
		rep.WriteText(&text)
		if !strings.Contains(text.String(), "beacon") || !strings.Contains(text.String(), SystemRITA) {
			t.Errorf("text report lacks the beacon rows:\n%s", text.String())
		}
		t.Logf("\n%s", text.String())
	}
}

// fakeDetector proposes a finding of its kind for a (src, dst) pair once
// the pair's final records reach count, or its originator bytes reach bytes.
type fakeDetector struct {
	kind  detect.Kind
	count int
	bytes uint64
	seen  map[[2]netip.Addr]*fakePair
}

type fakePair struct {
	n     int
	bytes uint64
	first time.Time
	done  bool
}

func (d *fakeDetector) Kind() detect.Kind { return d.kind }

func (d *fakeDetector) Observe(r *flow.Record, propose func(*detect.Finding)) {
	if !r.Final {
		return
	}
	k := [2]netip.Addr{r.OrigAddr, r.RespAddr}
	p := d.seen[k]
	if p == nil {
		p = &fakePair{first: r.Start}
		d.seen[k] = p
	}
	p.n++
	p.bytes += r.OrigBytes
	if p.done || (d.count == 0 || p.n < d.count) && (d.bytes == 0 || p.bytes < d.bytes) {
		return
	}
	p.done = true
	f := detect.Finding{UID: "fake:" + string(d.kind) + ":" + k[0].String() + ">" + k[1].String(), Kind: d.kind, Score: 0.8,
		Src: r.OrigAddr, Dst: r.RespAddr, FirstSeen: p.first, LastSeen: r.End}
	propose(&f)
}

func (d *fakeDetector) Tick(time.Time, func(*detect.Finding)) {}
func (d *fakeDetector) Stats() detect.DetectorStats           { return detect.DetectorStats{Keys: len(d.seen)} }

func TestRunWithDetectors(t *testing.T) {
	dir, truth := writeFixture(t)
	factory := func(Env) []detect.Detector {
		return []detect.Detector{
			&fakeDetector{kind: detect.KindBeacon, count: 5, seen: map[[2]netip.Addr]*fakePair{}},
			&fakeDetector{kind: detect.KindExfil, bytes: 2 * fxExfilChunk, seen: map[[2]netip.Addr]*fakePair{}},
		}
	}
	rep, err := Run(context.Background(), dir, Options{Detectors: factory, NoRITA: true})
	if err != nil {
		t.Fatal(err)
	}
	sc := rep.Scenarios[0]
	if len(sc.Systems) != 1 {
		t.Fatalf("NoRITA still ran %d systems", len(sc.Systems))
	}
	fh := sc.Systems[0]
	b := fh.Kind(detect.KindBeacon)
	checkRatio(t, "beacon recall", b.Recall, 1)
	// The fake flags every pair with 5 flows: the beacon, the update trap,
	// the exfil (6 flows), and the web servers with 3 flows each do not
	// count. So 1 TP, 1 trap FP, 1 related.
	if b.TruePositives != 1 || b.FPTraps != 1 || b.Related != 1 || b.FPUnlabelled != 0 {
		t.Errorf("beacon row = %+v", b)
	}
	// The fifth beat's record leaves the flow table once packet time passes
	// its close grace, at the latest with the sixth beat's first packet.
	if mb := b.Detection.MedianBeats; mb == nil || *mb < 5 || *mb > 6 {
		t.Errorf("beats to detect = %v, want 5 or 6", mb)
	}
	e := fh.Kind(detect.KindExfil)
	checkRatio(t, "exfil recall", e.Recall, 1)
	checkPtr(t, "exfil bytes to detect", e.Detection.MedianBytes, 2*fxExfilChunk)
	if d := *e.Detection.MedianMinutes; d < 1 || d > 1.5 {
		t.Errorf("exfil detected after %v min, want ~1 (second upload)", d)
	}
	if sc.Engine.New == 0 || sc.Engine.State[detect.KindBeacon].Keys == 0 {
		t.Errorf("engine info = %+v", sc.Engine)
	}
	if rep.Options.Detectors[0] != "beacon" {
		t.Errorf("options = %+v", rep.Options)
	}
	_ = truth
}

func TestScenarioDirs(t *testing.T) {
	dir, _ := writeFixture(t)
	parent := filepath.Dir(dir)
	got, err := ScenarioDirs([]string{dir})
	if err != nil || len(got) != 1 || got[0] != dir {
		t.Errorf("ScenarioDirs(scenario) = %v, %v", got, err)
	}
	got, err = ScenarioDirs([]string{parent})
	if err != nil || len(got) != 1 || got[0] != dir {
		t.Errorf("ScenarioDirs(parent) = %v, %v", got, err)
	}
	empty := t.TempDir()
	if _, err := ScenarioDirs([]string{empty}); !errors.Is(err, ErrNotScenario) {
		t.Errorf("empty directory: %v", err)
	}
	if err := os.WriteFile(filepath.Join(empty, TruthFile), []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadScenario(empty); !errors.Is(err, ErrNotScenario) {
		t.Errorf("truth without capture: %v", err)
	}
	if err := os.WriteFile(filepath.Join(empty, TruthFile), []byte(`{"activities": 3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadScenario(empty); err == nil || !strings.Contains(err.Error(), TruthFile) {
		t.Errorf("bad truth: %v", err)
	}
}
