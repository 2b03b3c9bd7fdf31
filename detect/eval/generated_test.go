package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowhound/flowhound/capture/synth"
	"github.com/flowhound/flowhound/detect"
)

// TestGeneratedBeacons runs the harness end to end on a small generated
// "beacons" scenario: no detectors, so flowhound finds nothing, while the
// RITA reference finds the periodic HTTPS beacon.
func TestGeneratedBeacons(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "beacons")
	truth, err := synth.WriteScenarioFiles(dir, synth.ScenarioConfig{Profile: "beacons", Seed: 1, Hosts: 8,
		Duration: 90 * time.Minute, Period: time.Minute, Jitter: 0.1, Missed: -1})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc := rep.Scenarios[0]
	if sc.Profile != "beacons" || sc.Seed != 1 || sc.BenignPairs != truth.BenignPairs || sc.Packets != truth.Packets {
		t.Errorf("scenario header %+v, truth packets %d", sc, truth.Packets)
	}
	fh, rita := sc.Systems[0].Kind(detect.KindBeacon), sc.Systems[1].Kind(detect.KindBeacon)
	if fh.Activities == 0 || fh.Detected != 0 || fh.Findings != 0 {
		t.Errorf("flowhound without detectors: %+v", fh)
	}
	if rita.Detected == 0 || rita.TruePositives == 0 {
		t.Errorf("rita-ref found no generated beacon: %+v", rita)
	}
	if rita.Detection.MedianBeats == nil || *rita.Detection.MedianBeats < 4 {
		t.Errorf("rita-ref needs at least 4 connections, median beats %v", rita.Detection.MedianBeats)
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, "-", rep); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	scs := back["scenarios"].([]any)
	if p := scs[0].(map[string]any)["profile"]; p != "beacons" {
		t.Errorf("JSON profile %v", p)
	}
	for _, k := range []string{"schema", "date", "build", "options", "totals"} {
		if _, ok := back[k]; !ok {
			t.Errorf("JSON report lacks %q", k)
		}
	}
}

// TestSweepSmall runs a one-cell sweep with two seeds.
func TestSweepSmall(t *testing.T) {
	cfg := SweepConfig{Periods: []time.Duration{time.Minute}, Jitters: []float64{0}, Missed: []float64{0.2}, Seeds: 2, MinBeats: 30, Hosts: 8}
	rep, err := Sweep(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Cells) != 1 {
		t.Fatalf("cells %+v", rep.Cells)
	}
	c := rep.Cells[0]
	if c.Error != "" || c.Scenarios != 2 || c.MinBeats < 30 || len(c.Systems) != 2 {
		t.Fatalf("cell %+v", c)
	}
	if want := SweepDuration(time.Minute, 0.2, 30); c.DurationSeconds != want.Seconds() || want != 60*time.Minute {
		t.Errorf("duration %vs, want %v (30/0.8*4/3 = 50 beats + 10)", c.DurationSeconds, want)
	}
	fh, rita := c.Systems[0], c.Systems[1]
	if fh.System != SystemFlowhound || fh.Detected != 0 || fh.Beacons == 0 {
		t.Errorf("flowhound %+v", fh)
	}
	if rita.System != SystemRITA || rita.Detected == 0 {
		t.Errorf("rita-ref %+v", rita)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "rita-ref recall") || !strings.Contains(text.String(), "1m") {
		t.Errorf("sweep table:\n%s", text.String())
	}
}

func TestSweepRejectsEmptyGrid(t *testing.T) {
	if _, err := Sweep(context.Background(), SweepConfig{Seeds: 1}, Options{}); err == nil {
		t.Error("empty grid accepted")
	}
}

// TestSuiteSmall runs a cut-down suite and checks the Markdown report.
func TestSuiteSmall(t *testing.T) {
	shared := ""
	if _, err := os.Stat(filepath.Join(sharedDir, "MANIFEST.md")); err == nil {
		shared = sharedDir
	}
	cfg := SuiteConfig{Profiles: []string{"benign", "beacons"}, Seeds: []int64{1}, Hosts: 8, Duration: 20 * time.Minute,
		Sweep:     &SweepConfig{Periods: []time.Duration{time.Minute}, Jitters: []float64{0.25}, Missed: []float64{0}, Seeds: 1, MinBeats: 10, Hosts: 8},
		SharedDir: shared}
	rep, err := RunSuite(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Skipped) > 0 || rep.Scenarios == nil || len(rep.Scenarios.Scenarios) != 2 || rep.Sweep == nil {
		t.Fatalf("suite %+v", rep)
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	for _, want := range []string{"# flowhound evaluation", "from commit `", "## Synthetic scenarios", "### Totals over 2 scenarios",
		"## Beacon sweep", "| beacon | rita-ref |", "reference implementation of RITA v5"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md.String())
		}
	}
	if shared != "" && !strings.Contains(md.String(), "## Real captures") {
		t.Error("Markdown lacks the real captures")
	}
}
