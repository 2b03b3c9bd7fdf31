package eval

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedDir is ../shared/pcaps seen from this package.
var sharedDir = filepath.Join("..", "..", DefaultSharedDir)

func needShared(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(sharedDir, "MANIFEST.md")); err != nil {
		t.Skipf("shared captures not available: %v", err)
	}
}

func TestRealTruthMatchesManifest(t *testing.T) {
	needShared(t)
	b, err := os.ReadFile(filepath.Join(sharedDir, "MANIFEST.md"))
	if err != nil {
		t.Fatal(err)
	}
	manifest := string(b)
	seen := map[string]bool{}
	for _, rc := range RealTruth {
		if seen[rc.File] {
			t.Errorf("%s listed twice", rc.File)
		}
		seen[rc.File] = true
		if !strings.Contains(manifest, "| "+rc.File+" |") {
			t.Errorf("%s is not in the manifest", rc.File)
		}
		for _, e := range rc.Expect {
			if !e.FromFlows && !strings.Contains(manifest, e.Src.String()) {
				t.Errorf("%s: source %v not in the manifest", rc.File, e.Src)
			}
			if e.Kind == "" && !e.Optional {
				t.Errorf("%s: a required expectation needs a kind", rc.File)
			}
		}
	}
}

func TestRealCapturesZeroDetectors(t *testing.T) {
	needShared(t)
	rep, err := RealCaptures(context.Background(), sharedDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	byFile := map[string]RealResult{}
	for _, c := range rep.Captures {
		if c.Missing || c.Error != "" {
			t.Errorf("%s: missing %v, error %q", c.File, c.Missing, c.Error)
		}
		byFile[c.File] = c
	}
	var fh, rita *RealSummary
	for i := range rep.Summary {
		switch rep.Summary[i].System {
		case SystemFlowhound:
			fh = &rep.Summary[i]
		case SystemRITA:
			rita = &rep.Summary[i]
		}
	}
	if fh == nil || rita == nil {
		t.Fatalf("summary %+v", rep.Summary)
	}
	if fh.Found != 0 || fh.OtherFindings != 0 || fh.BenignClean != fh.BenignCaps || fh.Expected == 0 {
		t.Errorf("flowhound without detectors: %+v", fh)
	}
	// The reference scorer finds the two real beacons long enough to score.
	for _, f := range []string{"test-cc-capture-1.pcap", "Example-1-2021-01-06-Emotet-infection.pcap"} {
		c := byFile[f]
		if len(c.Systems) != 2 || len(c.Systems[1].Found) != 1 || len(c.Systems[1].Missed) != 0 {
			t.Errorf("%s: rita-ref %+v", f, c.Systems)
		}
	}
	if rita.Expected != 2 {
		t.Errorf("rita-ref is held to %d expectations, want the 2 beacons", rita.Expected)
	}
	var sb strings.Builder
	rep.WriteText(&sb)
	if !strings.Contains(sb.String(), "test-cc-capture-1.pcap") {
		t.Errorf("text report:\n%s", sb.String())
	}
}
