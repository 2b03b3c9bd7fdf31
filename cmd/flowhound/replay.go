package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"syscall"
	"time"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
)

// cmdReplay runs capture and detection over capture files and writes
// findings as JSON lines.
func cmdReplay(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf captureFlags
	cf.register(fs)
	out := fs.String("o", "-", "write findings to this file instead of stdout")
	flowsOut := fs.String("flows", "", "also write every flow record as JSON lines to this file (- for stdout, mixed with findings)")
	sensorID := fs.String("sensor", "", "sensor id stamped on findings (default: host name)")
	quiet := fs.Bool("q", false, "no summary on stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowhound replay [flags] [file|dir|-]...\n\nReplays captures through the sensor and the detectors and writes one JSON finding per line. Flags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{2, errUsageShown}
	}
	cfg, err := cf.config()
	if err != nil {
		return &exitError{2, err}
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{"-"}
	}
	src, err := openSource(paths, stdin)
	if err != nil {
		return err
	}
	defer src.Close()

	fw, closeF, err := createOutput(*out, stdout)
	if err != nil {
		return err
	}
	defer closeF()
	findingsW := bufio.NewWriterSize(fw, 64<<10)
	var flowsW *bufio.Writer
	if *flowsOut != "" {
		w, closeFl, err := createOutput(*flowsOut, stdout)
		if err != nil {
			return err
		}
		defer closeFl()
		if *flowsOut == "-" {
			flowsW = findingsW
		} else {
			flowsW = bufio.NewWriterSize(w, 1<<20)
		}
	}

	dcfg := cf.file.DetectConfig()
	if cfg.Table.HomeNets != nil {
		dcfg.HomeNets = cfg.Table.HomeNets
	}
	if dcfg.HomeNets == nil {
		dcfg.HomeNets = flow.DefaultHomeNets()
	}
	if *sensorID != "" {
		dcfg.Sensor = *sensorID
	}
	if dcfg.Sensor == "" {
		dcfg.Sensor, _ = os.Hostname()
	}
	var werr error
	var top []detect.Finding
	emitFinding := func(f *detect.Finding) {
		b, err := json.Marshal(f)
		if err == nil {
			b = append(b, '\n')
			_, err = findingsW.Write(b)
		}
		if err != nil && werr == nil {
			werr = err
		}
		top = keepTop(top, f)
	}
	engine := detect.NewEngine(dcfg.Sensor, emitFinding, detect.NewDetectors(dcfg)...)
	var line []byte
	var last time.Time
	emitRecord := func(r *flow.Record) {
		if flowsW != nil {
			line = r.AppendJSON(line[:0])
			line = append(line, '\n')
			if _, err := flowsW.Write(line); err != nil && werr == nil {
				werr = err
			}
		}
		engine.Record(r)
		if r.End.After(last) {
			last = r.End
		}
	}
	var sensor interface {
		Run(context.Context, capture.PacketSource) error
		Stats() capture.Stats
	}
	if cf.workers > 1 {
		sensor = capture.NewParallel(cfg, cf.workers, emitRecord)
	} else {
		sensor = capture.NewSensor(cfg, emitRecord)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	runErr := sensor.Run(ctx, src)
	engine.Tick(last)
	elapsed := time.Since(start)
	for _, w := range []*bufio.Writer{findingsW, flowsW} {
		if w != nil {
			if err := w.Flush(); err != nil && werr == nil {
				werr = err
			}
		}
	}
	if !*quiet {
		st := sensor.Stats()
		printSummary(stderr, &st, elapsed)
		printFindingSummary(stderr, engine, top)
	}
	if werr != nil {
		return fmt.Errorf("writing output: %w", werr)
	}
	return runErr
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
