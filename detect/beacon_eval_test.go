package detect_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/detect/eval"
	"github.com/flowhound/flowhound/flow"
)

// beaconFactory builds the beacon detector with the scenario's allowlist,
// as an operator would configure it.
func beaconFactory(env eval.Env) []detect.Detector {
	cfg := detect.DefaultConfig()
	if env.HomeNets != nil {
		cfg.HomeNets = env.HomeNets
	}
	if len(env.Allowlist) > 0 {
		cfg.Allow = &detect.Allowlist{Nets: flow.NewNetworks(env.Allowlist)}
	}
	return []detect.Detector{detect.NewBeacon(cfg)}
}

// TestBeaconEvalDirs scores the beacon detector on the scenario
// directories in FLOWHOUND_BEACON_EVAL (comma-separated).
func TestBeaconEvalDirs(t *testing.T) {
	dirs := os.Getenv("FLOWHOUND_BEACON_EVAL")
	if dirs == "" {
		t.Skip("FLOWHOUND_BEACON_EVAL not set")
	}
	ds, err := eval.ScenarioDirs(strings.Split(dirs, ","))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := eval.RunAll(context.Background(), ds, eval.Options{Detectors: beaconFactory})
	if err != nil {
		t.Fatal(err)
	}
	rep.WriteText(os.Stdout)
	if p := os.Getenv("FLOWHOUND_BEACON_EVAL_JSON"); p != "" {
		if err := eval.WriteJSON(os.Stdout, p, rep); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBeaconSweep runs the beacon sweep when FLOWHOUND_BEACON_SWEEP is set
// ("default" or "full").
func TestBeaconSweep(t *testing.T) {
	mode := os.Getenv("FLOWHOUND_BEACON_SWEEP")
	if mode == "" {
		t.Skip("FLOWHOUND_BEACON_SWEEP not set")
	}
	cfg := eval.DefaultSweepConfig()
	if mode == "full" {
		cfg.Periods = []time.Duration{10 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour}
		cfg.Jitters = []float64{0, 0.1, 0.25, 0.5}
		cfg.Missed = []float64{0, 0.1, 0.2}
	}
	rep, err := eval.Sweep(context.Background(), cfg, eval.Options{Detectors: beaconFactory})
	if err != nil {
		t.Fatal(err)
	}
	rep.WriteText(os.Stdout)
	if p := os.Getenv("FLOWHOUND_BEACON_EVAL_JSON"); p != "" {
		if err := eval.WriteJSON(os.Stdout, p, rep); err != nil {
			t.Fatal(err)
		}
	}
}
