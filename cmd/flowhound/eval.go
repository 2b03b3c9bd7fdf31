package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/detect/eval"
	"github.com/flowhound/flowhound/flow"
)

// evalDetectors makes the detectors `flowhound eval` scores, configured as
// an operator would for the scenario's network: its home networks and its
// allowlist (the approved vulnerability scanner).
func evalDetectors(env eval.Env) []detect.Detector {
	cfg := detect.DefaultConfig()
	if env.HomeNets != nil {
		cfg.HomeNets = env.HomeNets
	}
	if len(env.Allowlist) > 0 {
		cfg.Allow = &detect.Allowlist{Nets: flow.NewNetworks(env.Allowlist)}
	}
	return detect.NewDetectors(cfg)
}

const evalUsage = `usage:
  flowhound eval [flags] DIR...        score scenario directories (scenario.pcap + truth.json; a
                                       directory of such directories counts as all of them)
  flowhound eval sweep [flags]         generate and score "beacons" scenarios over period x jitter x missed
  flowhound eval real [flags]          score the shared real captures with ground truth (MANIFEST.md)
  flowhound eval suite [flags]         the fixed evaluation behind 'make eval'; writes a Markdown report

Every report scores flowhound's detectors and, side by side, rita-ref: a reference implementation
of RITA v5's beacon score, for comparison. Run 'flowhound eval <sub> -h' for the flags.
`

// evalFlags are the options every eval subcommand shares.
type evalFlags struct {
	json   string
	slack  time.Duration
	tick   time.Duration
	noRITA bool
	commit string
}

func (e *evalFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&e.json, "json", "", "also write the JSON report to this file (- for stdout; the tables then go to stderr)")
	fs.DurationVar(&e.slack, "slack", eval.DefaultSlack, "widen each activity's time span by this much when matching findings")
	fs.DurationVar(&e.tick, "tick", eval.DefaultTick, "advance the engine's clock this often in packet time")
	fs.BoolVar(&e.noRITA, "no-rita", false, "leave out the RITA reference scorer")
	fs.StringVar(&e.commit, "commit", "", "commit to record when the binary carries no VCS stamp (e.g. $(git rev-parse HEAD))")
}

func (e *evalFlags) options() (eval.Options, error) {
	if e.slack < 0 || e.tick <= 0 {
		return eval.Options{}, fmt.Errorf("-slack must be ≥ 0 and -tick positive (got %v, %v)", e.slack, e.tick)
	}
	return eval.Options{Detectors: evalDetectors, Slack: e.slack, Tick: e.tick, NoRITA: e.noRITA, Commit: e.commit}, nil
}

// textOut is where the tables go: stdout, unless the JSON report does.
func (e *evalFlags) textOut(stdout, stderr io.Writer) io.Writer {
	if e.json == "-" {
		return stderr
	}
	return stdout
}

func (e *evalFlags) writeJSON(stdout io.Writer, v any) error {
	if e.json == "" {
		return nil
	}
	return eval.WriteJSON(stdout, e.json, v)
}

func cmdEval(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "sweep":
			return evalSweep(args[1:], stdout, stderr)
		case "real":
			return evalReal(args[1:], stdout, stderr)
		case "suite":
			return evalSuite(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ef evalFlags
	ef.register(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, evalUsage, "\nFlags of 'flowhound eval DIR...':\n")
		fs.PrintDefaults()
	}
	dirArgs, err := parseInterleaved(fs, args)
	if err != nil {
		return &exitError{2, errUsageShown}
	}
	if len(dirArgs) == 0 {
		fs.Usage()
		return &exitError{2, errors.New("eval: no scenario directory given")}
	}
	opts, err := ef.options()
	if err != nil {
		return &exitError{2, err}
	}
	dirs, err := eval.ScenarioDirs(dirArgs)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := eval.RunAll(ctx, dirs, opts)
	if err != nil {
		return err
	}
	rep.WriteText(ef.textOut(stdout, stderr))
	return ef.writeJSON(stdout, rep)
}

func evalSweep(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval sweep", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ef evalFlags
	ef.register(fs)
	def := eval.DefaultSweepConfig()
	periods := fs.String("periods", joinDurations(def.Periods), "comma-separated beacon periods")
	jitters := fs.String("jitters", joinFloats(def.Jitters), "comma-separated jitters (± fraction of the period)")
	missed := fs.String("missed", joinFloats(def.Missed), "comma-separated fractions of beats skipped")
	seeds := fs.Int("seeds", def.Seeds, "scenarios (seeds 1..N) per cell")
	minBeats := fs.Int("min-beats", def.MinBeats, "make each scenario long enough for this many beats")
	hosts := fs.Int("hosts", def.Hosts, "workstations per scenario")
	keep := fs.String("keep", "", "keep the generated scenarios in this directory")
	workers := fs.Int("workers", 0, "scenarios generated and run at once (0: GOMAXPROCS)")
	quiet := fs.Bool("q", false, "no progress on stderr")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: flowhound eval sweep [flags]\n\nGenerates a \"beacons\" scenario for every period x jitter x missed x seed, scores it and\nprints recall, false positives and beats to first detection per cell. Flags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if err == nil {
			fs.Usage()
		}
		return &exitError{2, errUsageShown}
	}
	opts, err := ef.options()
	if err != nil {
		return &exitError{2, err}
	}
	cfg := eval.SweepConfig{Seeds: *seeds, MinBeats: *minBeats, Hosts: *hosts, Dir: *keep, Workers: *workers}
	if cfg.Periods, err = parseDurations(*periods); err == nil {
		if cfg.Jitters, err = parseFloats(*jitters); err == nil {
			cfg.Missed, err = parseFloats(*missed)
		}
	}
	if err != nil {
		return &exitError{2, fmt.Errorf("eval sweep: %w", err)}
	}
	if !*quiet {
		cfg.Log = logTo(stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := eval.Sweep(ctx, cfg, opts)
	if err != nil {
		return err
	}
	rep.WriteText(ef.textOut(stdout, stderr))
	return ef.writeJSON(stdout, rep)
}

func evalReal(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval real", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ef evalFlags
	ef.register(fs)
	shared := fs.String("shared", eval.DefaultSharedDir, "directory of the shared captures")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: flowhound eval real [flags]\n\nScores the shared real captures whose MANIFEST.md gives ground truth and prints, per capture,\nwhat was found, missed and flagged besides. Flags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if err == nil {
			fs.Usage()
		}
		return &exitError{2, errUsageShown}
	}
	opts, err := ef.options()
	if err != nil {
		return &exitError{2, err}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := eval.RealCaptures(ctx, *shared, opts)
	if err != nil {
		return err
	}
	rep.WriteText(ef.textOut(stdout, stderr))
	return ef.writeJSON(stdout, rep)
}

func evalSuite(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ef evalFlags
	ef.register(fs)
	def := eval.DefaultSuiteConfig()
	out := fs.String("out", "docs/eval.md", "write the Markdown report here (- for stdout)")
	profiles := fs.String("profiles", strings.Join(def.Profiles, ","), "comma-separated scenario profiles")
	seeds := fs.String("seeds", joinInts(def.Seeds), "comma-separated seeds per profile")
	hosts := fs.Int("hosts", def.Hosts, "workstations per scenario (0: the generator's default)")
	duration := fs.Duration("duration", def.Duration, "length of each scenario (0: the generator's default)")
	shared := fs.String("shared", def.SharedDir, "directory of the shared real captures (empty: skip them)")
	noSweep := fs.Bool("no-sweep", false, "skip the beacon sweep")
	keep := fs.String("keep", "", "keep the generated scenarios in this directory")
	quiet := fs.Bool("q", false, "no progress on stderr")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: flowhound eval suite [flags]\n\nRuns the fixed evaluation (profiles x seeds, the default beacon sweep, the real captures)\nand writes a Markdown report with the date and commit. Flags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if err == nil {
			fs.Usage()
		}
		return &exitError{2, errUsageShown}
	}
	opts, err := ef.options()
	if err != nil {
		return &exitError{2, err}
	}
	cfg := def
	cfg.Profiles = splitList(*profiles)
	cfg.Hosts, cfg.Duration, cfg.SharedDir, cfg.Dir = *hosts, *duration, *shared, *keep
	if cfg.Seeds, err = parseInts(*seeds); err != nil {
		return &exitError{2, fmt.Errorf("eval suite: %w", err)}
	}
	if *noSweep {
		cfg.Sweep = nil
	}
	if !*quiet {
		cfg.Log = logTo(stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := eval.RunSuite(ctx, cfg, opts)
	if err != nil {
		return err
	}
	w := stdout
	if *out != "-" {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			return err
		}
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	rep.WriteMarkdown(w)
	if *out != "-" {
		fmt.Fprintf(stderr, "wrote %s in %.0fs\n", *out, rep.Seconds)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintln(stderr, "skipped:", s)
	}
	return ef.writeJSON(stdout, rep)
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments, which it returns ("--" ends the flags).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func logTo(w io.Writer) func(string, ...any) {
	start := time.Now()
	return func(format string, args ...any) {
		fmt.Fprintf(w, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseDurations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range splitList(s) {
		d, err := time.ParseDuration(f)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("bad duration %q", f)
		}
		out = append(out, d)
	}
	return out, nil
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, f := range splitList(s) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v < 0 || v >= 1 {
			return nil, fmt.Errorf("bad fraction %q (want 0 ≤ x < 1)", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func parseInts(s string) ([]int64, error) {
	var out []int64
	for _, f := range splitList(s) {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad integer %q", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func joinDurations(ds []time.Duration) string {
	var ss []string
	for _, d := range ds {
		ss = append(ss, d.String())
	}
	return strings.Join(ss, ",")
}

func joinFloats(fs []float64) string {
	var ss []string
	for _, f := range fs {
		ss = append(ss, strconv.FormatFloat(f, 'f', -1, 64))
	}
	return strings.Join(ss, ",")
}

func joinInts(is []int64) string {
	var ss []string
	for _, i := range is {
		ss = append(ss, strconv.FormatInt(i, 10))
	}
	return strings.Join(ss, ",")
}
