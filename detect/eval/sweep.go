package eval

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowhound/flowhound/capture/synth"
	"github.com/flowhound/flowhound/detect"
)

// SweepProfile is the generator profile a sweep uses.
const SweepProfile = "beacons"

// SweepConfig is a grid of beacon parameters to generate and score.
type SweepConfig struct {
	Periods []time.Duration
	Jitters []float64 // ± fraction of the period
	Missed  []float64 // fraction of beats skipped
	// Seeds is how many scenarios (seeds 1..Seeds) each cell gets.
	Seeds int
	// MinBeats sets each scenario's duration: long enough for this many
	// beats after the missed ones are taken out.
	MinBeats int
	// Hosts is the number of workstations per scenario.
	Hosts int
	// Dir keeps the generated scenarios there; empty writes them to a
	// temporary directory that is removed afterwards.
	Dir string
	// Workers run cells in parallel; 0 means GOMAXPROCS.
	Workers int
	// Log, when set, is told about each scenario as it finishes.
	Log func(format string, args ...any)
}

// DefaultSweepConfig is the grid `flowhound eval sweep` runs by default:
// 3 periods × 3 jitters × 2 missed rates × 2 seeds, sized to run in a few
// minutes on two cores.
func DefaultSweepConfig() SweepConfig {
	return SweepConfig{
		Periods:  []time.Duration{30 * time.Second, 5 * time.Minute, time.Hour},
		Jitters:  []float64{0, 0.25, 0.5},
		Missed:   []float64{0, 0.2},
		Seeds:    2,
		MinBeats: 30,
		Hosts:    12,
	}
}

// SweepDuration is the scenario length for a cell: enough periods for
// minBeats beats once the missed share is taken out, plus four periods of
// margin, and at least the generator's minimum of ten minutes.
func SweepDuration(period time.Duration, missed float64, minBeats int) time.Duration {
	// Missed beats are random and beacons start at staggered times, so
	// leave a third more beats than the expectation, plus ten.
	n := math.Ceil(float64(minBeats)/(1-min(max(missed, 0), 0.9))*4/3) + 10
	return max(time.Duration(n)*period, 20*time.Minute)
}

// SweepReport is the result of a sweep.
type SweepReport struct {
	Schema  int         `json:"schema"`
	Date    time.Time   `json:"date"`
	Build   BuildInfo   `json:"build"`
	Options OptionsInfo `json:"options"`
	Profile string      `json:"profile"`
	Seeds   int         `json:"seeds"`
	Hosts   int         `json:"hosts"`
	Cells   []SweepCell `json:"cells"`
}

// SweepCell is one grid point, pooled over its seeds.
type SweepCell struct {
	Period          string  `json:"period"`
	PeriodSeconds   float64 `json:"period_s"`
	Jitter          float64 `json:"jitter"`
	Missed          float64 `json:"missed"`
	DurationSeconds float64 `json:"duration_s"`
	Scenarios       int     `json:"scenarios"`
	// MinBeats is the fewest beats any beacon of the cell sent.
	MinBeats int           `json:"min_beats"`
	Systems  []SweepResult `json:"systems"`
	Error    string        `json:"error,omitempty"`
}

// SweepResult is one system's beacon score in a cell.
type SweepResult struct {
	System        string   `json:"system"`
	Beacons       int      `json:"beacons"`
	Detected      int      `json:"detected"`
	Recall        Ratio    `json:"recall"`
	Findings      int      `json:"findings"`
	FalsePos      int      `json:"false_positives"`
	Precision     Ratio    `json:"precision"`
	FPPer1kPairs  Ratio    `json:"fp_per_1k_pairs"`
	MedianBeats   *float64 `json:"median_beats_to_detect"`
	MedianMinutes *float64 `json:"median_min_to_detect"`
}

// Sweep generates a SweepProfile scenario for every cell and seed of the
// grid, runs it and pools each cell's seeds.
func Sweep(ctx context.Context, cfg SweepConfig, opts Options) (*SweepReport, error) {
	if len(cfg.Periods) == 0 || len(cfg.Jitters) == 0 || len(cfg.Missed) == 0 || cfg.Seeds < 1 {
		return nil, fmt.Errorf("sweep: empty grid (periods %v, jitters %v, missed %v, seeds %d)", cfg.Periods, cfg.Jitters, cfg.Missed, cfg.Seeds)
	}
	root := cfg.Dir
	if root == "" {
		tmp, err := os.MkdirTemp("", "flowhound-sweep-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		root = tmp
	}
	rep := &SweepReport{Schema: ReportSchema, Date: time.Now().UTC().Truncate(time.Second), Build: opts.build(),
		Options: opts.info(), Profile: SweepProfile, Seeds: cfg.Seeds, Hosts: cfg.Hosts}
	for _, p := range cfg.Periods {
		for _, j := range cfg.Jitters {
			for _, m := range cfg.Missed {
				d := SweepDuration(p, m, cfg.MinBeats)
				rep.Cells = append(rep.Cells, SweepCell{Period: shortDuration(p), PeriodSeconds: p.Seconds(), Jitter: j, Missed: m,
					DurationSeconds: d.Seconds()})
			}
		}
	}

	// One job per scenario; cells are pooled afterwards in grid order.
	type job struct{ cell, seed int }
	results := make([][]*ScenarioReport, len(rep.Cells))
	errs := make([]error, len(rep.Cells))
	for i := range results {
		results[i] = make([]*ScenarioReport, cfg.Seeds)
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	var mu sync.Mutex
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for jb := range jobs {
				c := &rep.Cells[jb.cell]
				sr, err := sweepScenario(ctx, root, c, int64(jb.seed+1), cfg, opts)
				mu.Lock()
				if err != nil && errs[jb.cell] == nil {
					errs[jb.cell] = err
				}
				results[jb.cell][jb.seed] = sr
				if cfg.Log != nil {
					if err != nil {
						cfg.Log("sweep period %s jitter %g missed %g seed %d: %v", c.Period, c.Jitter, c.Missed, jb.seed+1, err)
					} else {
						cfg.Log("sweep period %s jitter %g missed %g seed %d: %d packets in %.1fs", c.Period, c.Jitter, c.Missed, jb.seed+1, sr.Packets, sr.ReplaySeconds)
					}
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for ci := range rep.Cells {
		for s := range cfg.Seeds {
			select {
			case jobs <- job{ci, s}:
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	for ci := range rep.Cells {
		c := &rep.Cells[ci]
		if errs[ci] != nil {
			c.Error = errs[ci].Error()
		}
		var scs []ScenarioReport
		for _, sr := range results[ci] {
			if sr != nil {
				scs = append(scs, *sr)
			}
		}
		c.Scenarios = len(scs)
		c.MinBeats = -1
		for _, sc := range scs {
			for _, a := range sc.Systems[0].Activities {
				if !a.Benign && a.Kind == string(detect.KindBeacon) && (c.MinBeats < 0 || a.Beats < c.MinBeats) {
					c.MinBeats = a.Beats
				}
			}
		}
		c.MinBeats = max(c.MinBeats, 0)
		for _, sys := range Totals(scs) {
			k := sys.Kind(detect.KindBeacon)
			if k == nil {
				continue
			}
			c.Systems = append(c.Systems, SweepResult{System: sys.System, Beacons: k.Activities, Detected: k.Detected, Recall: k.Recall,
				Findings: k.Findings, FalsePos: k.FalsePositives(), Precision: k.Precision, FPPer1kPairs: k.FPPer1kPairs,
				MedianBeats: k.Detection.MedianBeats, MedianMinutes: k.Detection.MedianMinutes})
		}
	}
	return rep, nil
}

// sweepScenario generates and runs one scenario of a cell. Jitter and
// missed rates of 0 are passed as negative numbers, which the generator
// takes as "exactly zero" (its zero means "profile default").
func sweepScenario(ctx context.Context, root string, c *SweepCell, seed int64, cfg SweepConfig, opts Options) (*ScenarioReport, error) {
	name := fmt.Sprintf("beacons-p%s-j%g-m%g-s%d", c.Period, c.Jitter, c.Missed, seed)
	dir := filepath.Join(root, name)
	exact := func(v float64) float64 {
		if v == 0 {
			return -1
		}
		return v
	}
	truth, err := generateScenario(dir, synth.ScenarioConfig{Profile: SweepProfile, Seed: seed, Hosts: cfg.Hosts,
		Duration: time.Duration(c.DurationSeconds * float64(time.Second)),
		Period:   time.Duration(c.PeriodSeconds * float64(time.Second)), Jitter: exact(c.Jitter), Missed: exact(c.Missed)})
	if err != nil {
		return nil, err
	}
	_, capture, err := LoadScenario(dir)
	if err != nil {
		return nil, err
	}
	sr, err := runScenario(ctx, name, []string{capture}, truth, opts)
	if err != nil {
		return nil, err
	}
	sr.Dir = dir
	if cfg.Dir == "" {
		os.RemoveAll(dir) // keep the temporary disk use to the running scenarios
	}
	return sr, nil
}

// generateScenario writes a generated scenario into dir.
func generateScenario(dir string, cfg synth.ScenarioConfig) (*synth.ScenarioTruth, error) {
	return synth.WriteScenarioFiles(dir, cfg)
}

// shortDuration prints 30s, 5m, 1h, 1h30m rather than 5m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// sweepTable lays the cells out with the systems side by side.
func (r *SweepReport) table() *table {
	var systems []string
	for _, c := range r.Cells {
		for _, s := range c.Systems {
			if !slices.Contains(systems, s.System) {
				systems = append(systems, s.System)
			}
		}
	}
	t := &table{head: []string{"period", "jitter", "missed", "beacons", "min beats"}, left: 1}
	for _, s := range systems {
		t.head = append(t.head, s+" recall", s+" FP/1k pairs", s+" precision", s+" med beats")
	}
	for _, c := range r.Cells {
		beacons := 0
		if len(c.Systems) > 0 {
			beacons = c.Systems[0].Beacons
		}
		row := []string{c.Period, strconv.FormatFloat(c.Jitter, 'f', -1, 64), strconv.FormatFloat(c.Missed, 'f', -1, 64), itoa(beacons), itoa(c.MinBeats)}
		for _, name := range systems {
			i := slices.IndexFunc(c.Systems, func(s SweepResult) bool { return s.System == name })
			if i < 0 {
				row = append(row, "–", "–", "–", "–")
				continue
			}
			s := c.Systems[i]
			beats := "–"
			if s.MedianBeats != nil {
				beats = strconv.FormatFloat(*s.MedianBeats, 'f', -1, 64)
			}
			row = append(row, s.Recall.Format(2), s.FPPer1kPairs.Format(2), s.Precision.Format(2), beats)
		}
		if c.Error != "" {
			row = append(row, "error: "+c.Error)
		}
		t.add(row...)
	}
	return t
}

func (r *SweepReport) preamble() string {
	return fmt.Sprintf("flowhound eval sweep, %s, commit %s; profile %s, %d seeds per cell, %d hosts",
		r.Date.Format("2006-01-02 15:04:05 MST"), r.Build.ShortCommit(), r.Profile, r.Seeds, r.Hosts)
}

// WriteText writes the sweep as an aligned table.
func (r *SweepReport) WriteText(w io.Writer) {
	fmt.Fprintln(w, r.preamble())
	r.table().text(w)
}

// WriteMarkdown writes the sweep as a Markdown table.
func (r *SweepReport) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "%s.\n\n", r.preamble())
	r.table().markdown(w)
}
