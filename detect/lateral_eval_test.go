package detect_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowhound/flowhound/capture/synth"
	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/detect/eval"
	"github.com/flowhound/flowhound/flow"
)

// lateralScanFactoryFor builds the lateral and scan detectors with the
// scenario's allowlist.
func lateralScanFactoryFor(_ *synth.ScenarioTruth) eval.Factory {
	return func(env eval.Env) []detect.Detector {
		cfg := detect.DefaultConfig()
		if len(env.Allowlist) > 0 {
			cfg.Allow = &detect.Allowlist{Nets: flow.NewNetworks(env.Allowlist)}
		}
		return []detect.Detector{detect.NewLateral(cfg), detect.NewScan(cfg)}
	}
}

// TestLateralScanEval generates "lateral" scenarios (seeds from
// FLOWHOUND_LATERAL_EVAL, e.g. "1,2,3") into FLOWHOUND_LATERAL_EVAL_DIR (or
// a temporary directory; existing scenarios are reused) and scores the
// lateral and scan detectors against their truth.
func TestLateralScanEval(t *testing.T) {
	seeds := os.Getenv("FLOWHOUND_LATERAL_EVAL")
	if seeds == "" {
		t.Skip("FLOWHOUND_LATERAL_EVAL not set (comma-separated seeds)")
	}
	root := os.Getenv("FLOWHOUND_LATERAL_EVAL_DIR")
	if root == "" {
		root = t.TempDir()
	}
	profile := os.Getenv("FLOWHOUND_LATERAL_EVAL_PROFILE")
	if profile == "" {
		profile = "lateral"
	}
	// Optional size knobs: FLOWHOUND_LATERAL_EVAL_DURATION (e.g. 72h) and
	// FLOWHOUND_LATERAL_EVAL_HOSTS.
	var dur time.Duration
	if v := os.Getenv("FLOWHOUND_LATERAL_EVAL_DURATION"); v != "" {
		var err error
		if dur, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	hosts, _ := strconv.Atoi(os.Getenv("FLOWHOUND_LATERAL_EVAL_HOSTS"))
	for _, s := range strings.Split(seeds, ",") {
		seed, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(root, fmt.Sprintf("%s-s%d", profile, seed))
		if dur > 0 || hosts > 0 {
			dir += fmt.Sprintf("-%v-%dh", dur, hosts)
		}
		if _, _, err := eval.LoadScenario(dir); err != nil {
			if _, err := synth.WriteScenarioFiles(dir, synth.ScenarioConfig{Profile: profile, Seed: seed, Duration: dur, Hosts: hosts}); err != nil {
				t.Fatal(err)
			}
		}
		truth, _, err := eval.LoadScenario(dir)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := eval.Run(context.Background(), dir, eval.Options{Detectors: lateralScanFactoryFor(truth), NoRITA: true})
		if err != nil {
			t.Fatal(err)
		}
		rep.WriteText(os.Stdout)
	}
}

// TestLateralScanRealEval scores the lateral and scan detectors on the
// shared real captures with the harness (FLOWHOUND_LATERAL_EVAL_REAL=1).
// Expectations of other kinds show as misses.
func TestLateralScanRealEval(t *testing.T) {
	if os.Getenv("FLOWHOUND_LATERAL_EVAL_REAL") == "" {
		t.Skip("FLOWHOUND_LATERAL_EVAL_REAL not set")
	}
	dir := filepath.Join("..", eval.DefaultSharedDir)
	if _, err := os.Stat(dir); err != nil {
		t.Skip(err)
	}
	rep, err := eval.RealCaptures(context.Background(), dir, eval.Options{Detectors: lateralScanFactoryFor(nil), NoRITA: true})
	if err != nil {
		t.Fatal(err)
	}
	rep.WriteText(os.Stdout)
}
