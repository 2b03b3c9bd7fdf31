package eval

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/flowhound/flowhound/capture/synth"
	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
)

// Factory makes a fresh set of detectors for one replay. A nil Factory, or
// one that returns none, is valid: the harness then reports zero recall.
type Factory func(Env) []detect.Detector

// Env is what a scenario tells the detectors about its network, as an
// operator's configuration would: the home networks and the allowlist.
type Env struct {
	HomeNets  *flow.Networks // nil: the defaults
	Allowlist []netip.Prefix
}

// Options tune a run. The zero value is usable.
type Options struct {
	// Detectors makes flowhound's detectors for each scenario.
	Detectors Factory
	// Slack widens activities in time when matching; 0 means DefaultSlack.
	Slack time.Duration
	// Tick is how often, in packet time, the engine's clock is advanced
	// between records; 0 means DefaultTick.
	Tick time.Duration
	// NoRITA leaves out the RITA reference scorer.
	NoRITA bool
	// RITA configures the reference scorer; nil means DefaultRITAConfig().
	RITA *RITAConfig
	// Commit is recorded as the build's commit when the binary carries no
	// VCS stamp (built with -buildvcs=false, or a test).
	Commit string
}

// DefaultTick is the engine tick period of a replay.
const DefaultTick = 10 * time.Second

func (o *Options) slack() time.Duration { return cmp.Or(o.Slack, DefaultSlack) }
func (o *Options) tick() time.Duration  { return cmp.Or(o.Tick, DefaultTick) }
func (o *Options) rita() RITAConfig {
	if o.RITA != nil {
		return *o.RITA
	}
	return DefaultRITAConfig()
}

func (o *Options) info() OptionsInfo {
	oi := OptionsInfo{SlackSeconds: o.slack().Seconds(), TickSeconds: o.tick().Seconds(), RITA: !o.NoRITA, Detectors: []string{}}
	if o.Detectors != nil {
		for _, d := range o.Detectors(Env{}) {
			oi.Detectors = append(oi.Detectors, string(d.Kind()))
		}
	}
	return oi
}

// TruthFile is the name of a scenario's ground truth.
const TruthFile = "truth.json"

// captureNames are the capture names a scenario directory may hold, in
// order of preference.
var captureNames = []string{"scenario.pcap", "scenario.pcapng", "scenario.pcap.gz", "scenario.pcapng.gz"}

// ErrNotScenario means a directory holds no truth.json or no capture.
var ErrNotScenario = errors.New("not a scenario directory")

// LoadScenario reads a scenario directory's truth and finds its capture.
func LoadScenario(dir string) (truth *synth.ScenarioTruth, capture string, err error) {
	b, err := os.ReadFile(filepath.Join(dir, TruthFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", fmt.Errorf("%s: %w: no %s", dir, ErrNotScenario, TruthFile)
		}
		return nil, "", err
	}
	truth = new(synth.ScenarioTruth)
	if err := json.Unmarshal(b, truth); err != nil {
		return nil, "", fmt.Errorf("%s: %w", filepath.Join(dir, TruthFile), err)
	}
	for _, n := range captureNames {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err == nil {
			return truth, p, nil
		}
	}
	return nil, "", fmt.Errorf("%s: %w: no capture (%v)", dir, ErrNotScenario, captureNames)
}

// ScenarioDirs expands each path to scenario directories: a path holding
// truth.json is one; otherwise its immediate subdirectories that hold one
// are taken, in name order.
func ScenarioDirs(paths []string) ([]string, error) {
	var dirs []string
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(p, TruthFile)); err == nil {
			dirs = append(dirs, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		n := len(dirs)
		for _, e := range ents {
			sub := filepath.Join(p, e.Name())
			if _, err := os.Stat(filepath.Join(sub, TruthFile)); e.IsDir() && err == nil {
				dirs = append(dirs, sub)
			}
		}
		if len(dirs) == n {
			return nil, fmt.Errorf("%s: %w (nor are its subdirectories)", p, ErrNotScenario)
		}
	}
	return dirs, nil
}

// Run replays one scenario and scores flowhound's findings (and, unless
// opts.NoRITA, the RITA reference scorer's) against its truth.
func Run(ctx context.Context, dir string, opts Options) (*Report, error) {
	return RunAll(ctx, []string{dir}, opts)
}

// RunAll runs several scenarios one after another and adds micro-averaged
// totals per system and kind.
func RunAll(ctx context.Context, dirs []string, opts Options) (*Report, error) {
	rep := newReport(opts)
	names := map[string]int{}
	for _, dir := range dirs {
		names[filepath.Base(filepath.Clean(dir))]++
	}
	for _, dir := range dirs {
		truth, capture, err := LoadScenario(dir)
		if err != nil {
			return nil, err
		}
		// Scenarios are named by their directory, by its path when two
		// share a name.
		name := filepath.Base(filepath.Clean(dir))
		if names[name] > 1 {
			name = filepath.Clean(dir)
		}
		sr, err := runScenario(ctx, name, []string{capture}, truth, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
		sr.Dir = dir
		rep.Scenarios = append(rep.Scenarios, *sr)
	}
	rep.Totals = Totals(rep.Scenarios)
	return rep, nil
}

func newReport(opts Options) *Report {
	return &Report{Schema: ReportSchema, Date: time.Now().UTC().Truncate(time.Second), Build: opts.build(), Options: opts.info()}
}

// build is ReadBuildInfo with o.Commit filled in when the binary has none.
func (o *Options) build() BuildInfo {
	b := ReadBuildInfo()
	if b.Commit == "" && o.Commit != "" {
		b.Commit = o.Commit
	}
	return b
}

// runScenario replays captures and scores every system against truth.
// Activities with a zero Start or End are open on that side.
func runScenario(ctx context.Context, name string, captures []string, truth *synth.ScenarioTruth, opts Options) (*ScenarioReport, error) {
	var nets *flow.Networks
	if len(truth.HomeNets) > 0 {
		nets = flow.NewNetworks(truth.HomeNets)
	}
	rr, err := replay(ctx, captures, Env{HomeNets: nets, Allowlist: truth.Allowlist}, opts.Detectors, opts.tick())
	if err != nil {
		return nil, err
	}
	sr := &ScenarioReport{
		Name: name, Capture: captures[0], Profile: truth.Profile, Seed: truth.Seed,
		Start: cmp.Or(truth.Start, rr.stats.First), End: cmp.Or(truth.End, rr.stats.Last),
		Hosts: truth.Hosts, BenignPairs: truth.BenignPairs,
		Packets: rr.stats.Packets, Records: len(rr.records),
		ReplaySeconds: round4(rr.elapsed.Seconds()),
		Engine:        EngineInfo{Proposals: rr.engine.Proposals, New: rr.engine.New, Updates: rr.engine.Updates},
		Warnings:      rr.warnings,
	}
	for _, r := range rr.records {
		if r.Final {
			sr.Flows++
		}
	}
	if len(rr.state) > 0 {
		sr.Engine.State = map[detect.Kind]StateInfo{}
		for k, st := range rr.state {
			sr.Engine.State[k] = StateInfo{Keys: st.Keys, Bytes: st.Bytes, Evictions: st.Evictions}
		}
	}
	for _, a := range truth.Activities {
		if a.Benign {
			sr.Traps++
		} else {
			sr.Activities++
		}
	}
	in := scoreInput{system: SystemFlowhound, scenario: name, truth: truth, ems: rr.ems, records: rr.records, slack: opts.slack()}
	fh := score(in)
	sortFindings(fh.Findings)
	sr.Systems = append(sr.Systems, fh)
	if !opts.NoRITA {
		cfg := opts.rita()
		// The operator's allowlist is RITA's never_included_subnets.
		cfg.NeverInclude = append(slices.Clone(cfg.NeverInclude), truth.Allowlist...)
		var ems []emission
		for _, f := range RITABeacons(rr.records, cfg) {
			ems = append(ems, emission{f: f, seq: -1})
		}
		in.system, in.ems, in.kinds = SystemRITA, ems, []detect.Kind{detect.KindBeacon}
		rita := score(in)
		sortFindings(rita.Findings)
		sr.Systems = append(sr.Systems, rita)
	}
	return sr, nil
}

// Totals pools the scenarios' per-activity and per-finding results and
// recomputes every kind's metrics over the pool (micro-averaging). Activity
// and trap IDs are qualified with the scenario name.
func Totals(scenarios []ScenarioReport) []SystemResult {
	type pool struct {
		acts  []ActivityResult
		fs    []FindingResult
		pairs int
		kinds []detect.Kind
	}
	pools := map[string]*pool{}
	var order []string
	for _, sc := range scenarios {
		for _, sys := range sc.Systems {
			p := pools[sys.System]
			if p == nil {
				p = &pool{}
				pools[sys.System] = p
				order = append(order, sys.System)
			}
			p.pairs += sc.BenignPairs
			for _, kr := range sys.Kinds {
				if !slices.Contains(p.kinds, kr.Kind) {
					p.kinds = append(p.kinds, kr.Kind)
				}
			}
			for _, a := range sys.Activities {
				a.Scenario = sc.Name
				p.acts = append(p.acts, a)
			}
			for _, f := range sys.Findings {
				f.Matches = slices.Clone(f.Matches)
				for i, id := range f.Matches {
					f.Matches[i] = sc.Name + "/" + id
				}
				p.fs = append(p.fs, f)
			}
		}
	}
	var out []SystemResult
	for _, name := range order {
		p := pools[name]
		sys := SystemResult{System: name}
		for _, k := range p.kinds {
			sys.Kinds = append(sys.Kinds, kindResult(k, p.acts, p.fs, p.pairs, ""))
		}
		out = append(out, sys)
	}
	return out
}
