package eval

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/flowhound/flowhound/capture/synth"
)

// SuiteConfig is the fixed evaluation `make eval` runs.
type SuiteConfig struct {
	// Profiles × Seeds are generated and scored.
	Profiles []string
	Seeds    []int64
	// Hosts and Duration of each scenario; zero takes the generator's
	// defaults.
	Hosts    int
	Duration time.Duration
	// Sweep is the beacon sweep; nil skips it.
	Sweep *SweepConfig
	// SharedDir holds the real captures; empty skips them.
	SharedDir string
	// Dir keeps the generated scenarios; empty uses a temporary directory.
	Dir string
	// Log, when set, is told about progress.
	Log func(format string, args ...any)
}

// DefaultSuiteConfig is the suite behind `make eval`: the enterprise,
// beacons and benign profiles with three seeds each at the generator's
// default size, the default sweep, and the shared real captures.
func DefaultSuiteConfig() SuiteConfig {
	sw := DefaultSweepConfig()
	return SuiteConfig{
		Profiles:  []string{"enterprise", "beacons", "benign"},
		Seeds:     []int64{1, 2, 3},
		Sweep:     &sw,
		SharedDir: DefaultSharedDir,
	}
}

// SuiteReport is the result of a suite run.
type SuiteReport struct {
	Schema    int          `json:"schema"`
	Date      time.Time    `json:"date"`
	Build     BuildInfo    `json:"build"`
	Options   OptionsInfo  `json:"options"`
	Scenarios *Report      `json:"scenarios,omitempty"`
	Sweep     *SweepReport `json:"sweep,omitempty"`
	Real      *RealReport  `json:"real,omitempty"`
	// Skipped lists the parts that did not run, with the reason.
	Skipped []string `json:"skipped,omitempty"`
	Seconds float64  `json:"elapsed_s"`
}

// RunSuite generates and scores the suite's scenarios, runs its sweep and
// scores the real captures. A part that cannot run (no shared captures, a
// generator error) is recorded in Skipped and the others still run.
func RunSuite(ctx context.Context, cfg SuiteConfig, opts Options) (*SuiteReport, error) {
	start := time.Now()
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	rep := &SuiteReport{Schema: ReportSchema, Date: time.Now().UTC().Truncate(time.Second), Build: opts.build(), Options: opts.info()}

	if len(cfg.Profiles) > 0 && len(cfg.Seeds) > 0 {
		root := cfg.Dir
		if root == "" {
			tmp, err := os.MkdirTemp("", "flowhound-suite-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(tmp)
			root = tmp
		}
		dirs, err := generateAll(ctx, root, cfg, logf)
		if err != nil {
			rep.Skipped = append(rep.Skipped, "synthetic scenarios: "+err.Error())
		} else {
			logf("scoring %d scenarios", len(dirs))
			sr, err := RunAll(ctx, dirs, opts)
			if err != nil {
				return nil, err
			}
			rep.Scenarios = sr
		}
	}
	if cfg.Sweep != nil {
		sw := *cfg.Sweep
		if sw.Log == nil {
			sw.Log = cfg.Log
		}
		if sw.Dir == "" && cfg.Dir != "" {
			sw.Dir = filepath.Join(cfg.Dir, "sweep")
		}
		r, err := Sweep(ctx, sw, opts)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			rep.Skipped = append(rep.Skipped, "sweep: "+err.Error())
		} else {
			rep.Sweep = r
		}
	}
	if cfg.SharedDir != "" {
		logf("scoring real captures in %s", cfg.SharedDir)
		r, err := RealCaptures(ctx, cfg.SharedDir, opts)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			rep.Skipped = append(rep.Skipped, "real captures: "+err.Error())
		} else {
			rep.Real = r
		}
	}
	rep.Seconds = round4(time.Since(start).Seconds())
	return rep, nil
}

// generateAll writes profile × seed scenarios under root, in parallel.
func generateAll(ctx context.Context, root string, cfg SuiteConfig, logf func(string, ...any)) ([]string, error) {
	type job struct {
		dir string
		sc  synth.ScenarioConfig
	}
	var jobs []job
	for _, p := range cfg.Profiles {
		for _, s := range cfg.Seeds {
			jobs = append(jobs, job{filepath.Join(root, fmt.Sprintf("%s-s%d", p, s)),
				synth.ScenarioConfig{Profile: p, Seed: s, Hosts: cfg.Hosts, Duration: cfg.Duration}})
		}
	}
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			t0 := time.Now()
			tr, err := generateScenario(j.dir, j.sc)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", filepath.Base(j.dir), err)
				return
			}
			logf("generated %s: %d packets, %d activities in %.1fs", filepath.Base(j.dir), tr.Packets, len(tr.Activities), time.Since(t0).Seconds())
		}()
	}
	wg.Wait()
	var dirs []string
	for i, j := range jobs {
		if errs[i] != nil {
			return nil, errs[i]
		}
		dirs = append(dirs, j.dir)
	}
	return dirs, nil
}

// WriteMarkdown writes the suite as a Markdown document.
func (s *SuiteReport) WriteMarkdown(w io.Writer) {
	dets := "none"
	if len(s.Options.Detectors) > 0 {
		dets = strings.Join(s.Options.Detectors, ", ")
	}
	fmt.Fprintf(w, "# flowhound evaluation\n\n")
	fmt.Fprintf(w, "Generated %s by `flowhound eval suite` from commit `%s` (%s) in %.0f s. Detectors: %s.\n\n",
		s.Date.Format("2006-01-02 15:04 MST"), s.Build.ShortCommit(), orDash(s.Build.Go), s.Seconds, dets)
	fmt.Fprint(w, `**rita-ref** is a reference implementation of RITA v5's published beacon score (detect/eval/rita.go),
run over the same flow records for comparison only; it is not part of flowhound.

How to read the tables: *acts* are the labelled malicious activities of a kind and *det* those matched by at
least one finding of that kind (recall = det / acts). *findings* are distinct finding UIDs: *tp* match an
activity of their kind, *rel* match a malicious activity of another kind (left out of precision), *fp-trap*
flag a benign trap, *fp-other* match nothing. Precision = tp / (tp + fp-trap + fp-other); FP/1k pairs = false
positives per 1,000 distinct benign (internal source, destination) pairs. Time to detect is the median over
detected activities: beats sent up to the first matching finding for beacons, bytes sent in the activity's
flows (from the records the engine had received) for exfiltration, and minutes since the activity started.
"–" means undefined (no denominator).

`)
	for _, sk := range s.Skipped {
		fmt.Fprintf(w, "> Skipped: %s\n\n", sk)
	}
	if s.Scenarios != nil {
		fmt.Fprintf(w, "## Synthetic scenarios\n\n")
		s.Scenarios.WriteMarkdown(w, 3)
	}
	if s.Sweep != nil {
		fmt.Fprintf(w, "## Beacon sweep\n\nEach cell pools %d generated %q scenarios; recall and precision are for beacons, FP/1k pairs counts beacon findings on benign pairs, med beats is the median number of beats sent before the first matching finding.\n\n", s.Sweep.Seeds, s.Sweep.Profile)
		s.Sweep.WriteMarkdown(w)
		fmt.Fprintln(w)
	}
	if s.Real != nil {
		fmt.Fprintf(w, "## Real captures\n\nGround truth from ../shared/pcaps/MANIFEST.md, transcribed in detect/eval/realtruth.go. rita-ref is only held to beacon expectations; *optional* are known-bad peers whose findings are neither required nor false positives.\n\n")
		s.Real.WriteMarkdown(w)
	}
}
