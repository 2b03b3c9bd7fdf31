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

// evalCmd is one eval subcommand: its flag set, the options every
// subcommand shares, and where it writes.
type evalCmd struct {
	fs             *flag.FlagSet
	stdout, stderr io.Writer

	json   string
	slack  time.Duration
	tick   time.Duration
	noRITA bool
	commit string
}

// newEvalCmd returns the subcommand `flowhound NAME` with the shared flags
// registered; its -h prints usage, then the flags.
func newEvalCmd(name, usage string, stdout, stderr io.Writer) *evalCmd {
	c := &evalCmd{fs: flag.NewFlagSet(name, flag.ContinueOnError), stdout: stdout, stderr: stderr}
	fs := c.fs
	fs.SetOutput(stderr)
	fs.StringVar(&c.json, "json", "", "also write the JSON report to this file (- for stdout; the tables then go to stderr)")
	fs.DurationVar(&c.slack, "slack", eval.DefaultSlack, "widen each activity's time span by this much when matching findings")
	fs.DurationVar(&c.tick, "tick", eval.DefaultTick, "advance the engine's clock this often in packet time")
	fs.BoolVar(&c.noRITA, "no-rita", false, "leave out the RITA reference scorer")
	fs.StringVar(&c.commit, "commit", "", "commit to record when the binary carries no VCS stamp (e.g. $(git rev-parse HEAD))")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return c
}

// parse parses args, which must all be flags, and returns the options.
func (c *evalCmd) parse(args []string) (eval.Options, error) {
	if err := c.fs.Parse(args); err != nil || c.fs.NArg() > 0 {
		if err == nil {
			c.fs.Usage()
		}
		return eval.Options{}, &exitError{2, errUsageShown}
	}
	return c.options()
}

// options returns the options of the parsed flags.
func (c *evalCmd) options() (eval.Options, error) {
	if c.slack < 0 || c.tick <= 0 {
		return eval.Options{}, &exitError{2, fmt.Errorf("-slack must be ≥ 0 and -tick positive (got %v, %v)", c.slack, c.tick)}
	}
	return eval.Options{Detectors: evalDetectors, Slack: c.slack, Tick: c.tick, NoRITA: c.noRITA, Commit: c.commit}, nil
}

// textReport is a report that prints as tables.
type textReport interface{ WriteText(io.Writer) }

// run runs an evaluation that SIGINT and SIGTERM cancel, then writes its
// tables and, with -json, its JSON report.
func (c *evalCmd) run(evaluate func(context.Context) (textReport, error)) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := evaluate(ctx)
	if err != nil {
		return err
	}
	rep.WriteText(c.textOut())
	return c.writeJSON(rep)
}

// textOut is where the tables go: stdout, unless the JSON report does.
func (c *evalCmd) textOut() io.Writer {
	if c.json == "-" {
		return c.stderr
	}
	return c.stdout
}

func (c *evalCmd) writeJSON(v any) error {
	if c.json == "" {
		return nil
	}
	return eval.WriteJSON(c.stdout, c.json, v)
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
	c := newEvalCmd("eval", evalUsage+"\nFlags of 'flowhound eval DIR...':\n", stdout, stderr)
	dirArgs, err := parseInterleaved(c.fs, args)
	if err != nil {
		return &exitError{2, errUsageShown}
	}
	if len(dirArgs) == 0 {
		c.fs.Usage()
		return &exitError{2, errors.New("eval: no scenario directory given")}
	}
	opts, err := c.options()
	if err != nil {
		return err
	}
	dirs, err := eval.ScenarioDirs(dirArgs)
	if err != nil {
		return err
	}
	return c.run(func(ctx context.Context) (textReport, error) { return eval.RunAll(ctx, dirs, opts) })
}

func evalSweep(args []string, stdout, stderr io.Writer) error {
	c := newEvalCmd("eval sweep", "usage: flowhound eval sweep [flags]\n\nGenerates a \"beacons\" scenario for every period x jitter x missed x seed, scores it and\nprints recall, false positives and beats to first detection per cell. Flags:\n", stdout, stderr)
	fs := c.fs
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
	opts, err := c.parse(args)
	if err != nil {
		return err
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
	return c.run(func(ctx context.Context) (textReport, error) { return eval.Sweep(ctx, cfg, opts) })
}

func evalReal(args []string, stdout, stderr io.Writer) error {
	c := newEvalCmd("eval real", "usage: flowhound eval real [flags]\n\nScores the shared real captures whose MANIFEST.md gives ground truth and prints, per capture,\nwhat was found, missed and flagged besides. Flags:\n", stdout, stderr)
	shared := c.fs.String("shared", eval.DefaultSharedDir, "directory of the shared captures")
	opts, err := c.parse(args)
	if err != nil {
		return err
	}
	return c.run(func(ctx context.Context) (textReport, error) { return eval.RealCaptures(ctx, *shared, opts) })
}

func evalSuite(args []string, stdout, stderr io.Writer) error {
	c := newEvalCmd("eval suite", "usage: flowhound eval suite [flags]\n\nRuns the fixed evaluation (profiles x seeds, the default beacon sweep, the real captures)\nand writes a Markdown report with the date and commit. Flags:\n", stdout, stderr)
	fs := c.fs
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
	opts, err := c.parse(args)
	if err != nil {
		return err
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
	return c.writeJSON(rep)
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
