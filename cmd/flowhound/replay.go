package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/config"
	"github.com/flowhound/flowhound/detect"
)

// cmdReplay runs capture and detection over capture files and writes
// findings as JSON lines, and to the sinks its configuration enables.
func cmdReplay(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf captureFlags
	cf.register(fs)
	out := fs.String("o", "-", "write findings to this file (- for stdout); without -o, to sinks.jsonl.path of -config when that names a file, else to stdout")
	flowsOut := fs.String("flows", "", "also write every flow record as JSON lines to this file (- for stdout, mixed with findings)")
	sensorID := fs.String("sensor", "", "sensor id stamped on findings (default: host name)")
	flushTimeout := fs.Duration("flush-timeout", 10*time.Second, "at the end, how long the sinks (Kafka, InfluxDB) may take to deliver what they hold; the rest is dropped and counted")
	quiet := fs.Bool("q", false, "no summary on stderr")
	metricsAddr := fs.String("metrics", "", "serve Prometheus /metrics and /healthz on this host:port during the replay (:0 picks a port; the address is logged)")
	progressMode := fs.String("progress", "auto", "progress line on stderr: auto (when stderr is a terminal and not -q), on, off")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowhound replay [flags] [file|dir|-]...\n\nReplays captures through the sensor and the detectors and writes one JSON finding per line,\nalso to the Kafka and InfluxDB sinks that -config enables. Flags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{2, errUsageShown}
	}
	cfg, err := cf.config()
	if err != nil {
		return &exitError{2, err}
	}
	if *flushTimeout <= 0 {
		return &exitError{2, fmt.Errorf("-flush-timeout must be positive, got %v", *flushTimeout)}
	}
	var showProgress bool
	switch *progressMode {
	case "auto":
		showProgress = !*quiet && isTerminal(stderr)
	case "on":
		showProgress = true
	case "off":
	default:
		return &exitError{2, fmt.Errorf("-progress must be auto, on or off, got %q", *progressMode)}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	dcfg := detectConfig(cf.file, cfg.Table.HomeNets, *sensorID)
	// On a terminal, logs and messages share stderr with the progress
	// line: each erases it first.
	stderr = &statusWriter{w: stderr}
	log, level := newLogger(stderr, &cf.file.Log)

	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{"-"}
	}
	src, err := openSource(paths, stdin)
	if err != nil {
		return err
	}
	defer src.Close()

	// Findings go to -o; without it, to sinks.jsonl.path when that names a
	// file (rotated by the JSONL sink), else to stdout.
	oopts := outputOptions{Sensor: dcfg.Sensor, Wait: true, Logger: log}
	if j := cf.file.Sinks.JSONL.Path; set["o"] || j == "" || j == "-" {
		w, closeF, err := createOutput(*out, stdout)
		if err != nil {
			return err
		}
		defer closeF()
		oopts.Findings = w
	}
	if *flowsOut != "" {
		if *flowsOut == "-" && oopts.Findings == stdout {
			oopts.Flows = stdout
		} else {
			w, closeFl, err := createOutput(*flowsOut, stdout)
			if err != nil {
				return err
			}
			defer closeFl()
			oopts.Flows = w
		}
	}
	outs, err := openOutputs(cf.file, oopts)
	if err != nil {
		return &exitError{2, err}
	}
	closeOutputs := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), *flushTimeout)
		defer cancel()
		return outs.Close(ctx)
	}
	defer closeOutputs() // on early returns; a no-op after the first call

	var top []detect.Finding
	emitFinding := func(f *detect.Finding) {
		outs.Finding(f)
		top = keepTop(top, f)
	}
	engine := detect.NewEngine(dcfg.Sensor, emitFinding, detect.NewDetectors(dcfg)...)
	b := &board{sinkList: outs.sinkStats, fresh: make(chan struct{}, 1)}
	pipe := newPipeline(engine, outs, b)
	tap := &replayTap{packetSource: src, board: b}
	var sensor interface {
		Run(context.Context, capture.PacketSource) error
		Stats() capture.Stats
	}
	if cf.workers > 1 {
		// Parallel's packet counters are complete only after Run: the
		// metrics leave them out until then, and InfluxDB gets only the
		// final ones.
		sensor = capture.NewParallel(cfg, cf.workers, pipe.Record)
	} else {
		s := capture.NewSensor(cfg, pipe.Record)
		sensor = s
		tap.sensor = s.Stats
		b.reading.Store(true)
		outs.StartCounters(b.counters)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopSignals := onShutdownSignal(stderr, cancel, os.Exit)
	defer stopSignals()
	rl := &reloader{path: cf.configPath, running: cf.file, log: log, level: level, pipe: pipe, board: b,
		detectConfig: func(f *config.Config) detect.Config { return detectConfig(f, dcfg.HomeNets, dcfg.Sensor) }}
	stopReload := rl.watch()
	if err := startMetrics(ctx, *metricsAddr, dcfg.Sensor, b, staleAfter, log); err != nil {
		return &exitError{2, err}
	}
	stopProgress := func() {}
	if showProgress {
		stopProgress = startProgress(stderr.(*statusWriter), b, progressEvery)
	}
	start := time.Now()
	tap.publish() // a first heartbeat
	runErr := sensor.Run(ctx, tap)
	b.reading.Store(false)
	pipe.Finish()
	elapsed := time.Since(start)
	stopProgress()
	stopReload()
	st := sensor.Stats()
	tap.publish() // the input read to the end
	read, total := b.progress()
	b.setSensor(st, true, read, total)
	outs.StartCounters(b.counters) // with -workers: the final counters
	outErr := closeOutputs()
	if !*quiet {
		printSummary(stderr, &st, elapsed)
		printFindingSummary(stderr, engine, top)
		outs.PrintSummary(stderr)
	}
	if errors.Is(runErr, context.Canceled) && ctx.Err() != nil {
		runErr = nil // stopped by a signal, after flushing everything
	}
	return errors.Join(runErr, outErr)
}

func createOutput(path string, stdout io.Writer) (io.Writer, func(), error) {
	if path == "-" || path == "" {
		return stdout, func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// keepTop keeps the ten highest-scoring findings, one per uid.
func keepTop(top []detect.Finding, f *detect.Finding) []detect.Finding {
	if i := slices.IndexFunc(top, func(x detect.Finding) bool { return x.UID == f.UID }); i >= 0 {
		top[i] = *f
	} else {
		top = append(top, *f)
	}
	sort.SliceStable(top, func(i, j int) bool { return top[i].Score > top[j].Score })
	return top[:min(len(top), 10)]
}

func printFindingSummary(w io.Writer, e *detect.Engine, top []detect.Finding) {
	st := e.Stats()
	fmt.Fprintf(w, "findings  %d new, %d updates", st.New, st.Updates)
	for _, k := range detect.Kinds {
		if n := st.ByKind[k]; n > 0 {
			fmt.Fprintf(w, ", %s=%d", k, n)
		}
	}
	fmt.Fprintln(w)
	if len(top) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%-17s %-6s %-8s %s\n", "kind", "score", "severity", "source -> destination (address or name)")
	for _, f := range top {
		var dst string
		switch {
		case f.FQDN != "" && f.Dst.IsValid():
			dst = f.FQDN + " (" + f.Dst.String() + ")"
		case f.Dst.IsValid():
			dst = f.Dst.String()
		case f.FQDN != "":
			dst = f.FQDN
		default:
			dst = fmt.Sprintf("%d peers", len(f.Evidence.Peers))
		}
		if f.DstPort != 0 {
			dst = fmt.Sprintf("%s:%d", dst, f.DstPort)
		}
		fmt.Fprintf(w, "%-17s %-6.2f %-8s %s -> %s\n", f.Kind, f.Score, f.Severity, f.Src, dst)
	}
}
