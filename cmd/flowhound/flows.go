package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"syscall"
	"time"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/config"
	"github.com/flowhound/flowhound/flow"
)

// captureFlags are the sensor settings shared by the commands that read
// packets.
type captureFlags struct {
	fs            *flag.FlagSet
	configPath    string
	file          *config.Config // loaded from configPath, or the defaults
	homeNet       string
	maxFlows      int
	activeTimeout time.Duration
	tcpTimeout    time.Duration
	udpTimeout    time.Duration
	dedup         time.Duration
	workers       int
}

func (c *captureFlags) register(fs *flag.FlagSet) {
	c.fs = fs
	fs.StringVar(&c.configPath, "config", "", "configuration file (see flowhound.example.yaml); flags given on the command line override it")
	def := capture.DefaultTableConfig()
	fs.StringVar(&c.homeNet, "home-net", "", "comma-separated home networks for local_orig/local_resp (default RFC 1918, 100.64/10, ULA, link-local)")
	fs.IntVar(&c.maxFlows, "max-flows", def.MaxFlows, "maximum flows tracked at once; the least recently active is evicted beyond it")
	fs.DurationVar(&c.activeTimeout, "active-timeout", def.ActiveTimeout, "emit an interim record for flows open this long, and again every period")
	fs.DurationVar(&c.tcpTimeout, "tcp-timeout", def.TCPTimeout, "idle timeout of established TCP flows")
	fs.DurationVar(&c.udpTimeout, "udp-timeout", def.UDPTimeout, "idle timeout of UDP flows")
	fs.IntVar(&c.workers, "workers", 1, "flow table workers; packets are sharded between them by host pair (record order then varies between runs)")
	fs.DurationVar(&c.dedup, "dedup", 0, "drop frames identical to one seen within this window (e.g. 5ms for SPAN sessions that mirror both directions); 0 disables")
}

// config builds the capture configuration: the configuration file (or the
// defaults), FLOWHOUND_* environment overrides when a file is given, then
// the flags set on the command line.
func (c *captureFlags) config() (capture.Config, error) {
	c.file = config.Default()
	if c.configPath != "" {
		f, err := config.LoadWithEnv(c.configPath, os.Environ())
		if err != nil {
			return capture.Config{}, err
		}
		c.file = f
	}
	cfg := c.file.CaptureConfig()
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.configPath != "" {
		// Only the flags given explicitly override the file.
		if !set["max-flows"] {
			c.maxFlows = cfg.Table.MaxFlows
		}
		if !set["active-timeout"] {
			c.activeTimeout = cfg.Table.ActiveTimeout
		}
		if !set["tcp-timeout"] {
			c.tcpTimeout = cfg.Table.TCPTimeout
		}
		if !set["udp-timeout"] {
			c.udpTimeout = cfg.Table.UDPTimeout
		}
		if !set["dedup"] {
			c.dedup = cfg.Dedup
		}
		if !set["workers"] {
			c.workers = c.file.Capture.Workers
		}
	}
	cfg.Dedup = c.dedup
	if c.homeNet != "" {
		n, err := flow.ParseNetworks(c.homeNet)
		if err != nil {
			return cfg, fmt.Errorf("-home-net: %w", err)
		}
		cfg.Table.HomeNets = n
	}
	if c.maxFlows <= 0 {
		return cfg, fmt.Errorf("-max-flows must be positive, got %d", c.maxFlows)
	}
	for name, d := range map[string]time.Duration{"-active-timeout": c.activeTimeout, "-tcp-timeout": c.tcpTimeout, "-udp-timeout": c.udpTimeout} {
		if d <= 0 {
			return cfg, fmt.Errorf("%s must be positive, got %v", name, d)
		}
	}
	if c.workers < 1 || c.workers > 256 {
		return cfg, fmt.Errorf("-workers must be between 1 and 256, got %d", c.workers)
	}
	if c.dedup < 0 || c.dedup > time.Second {
		return cfg, fmt.Errorf("-dedup must be between 0 and 1s, got %v", c.dedup)
	}
	cfg.Table.MaxFlows = c.maxFlows
	cfg.Table.ActiveTimeout = c.activeTimeout
	cfg.Table.TCPTimeout = c.tcpTimeout
	cfg.Table.UDPTimeout = c.udpTimeout
	return cfg, nil
}

func cmdFlows(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("flows", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf captureFlags
	cf.register(fs)
	out := fs.String("o", "-", "write records to this file instead of stdout")
	quiet := fs.Bool("q", false, "no summary on stderr")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowhound flows [flags] [file|dir|-]...\n\nReads pcap/pcapng captures (optionally gzip-compressed; a directory is read in time order; - is stdin)\nand writes one JSON flow record per line. Flags:")
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

	w := stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var line []byte
	var werr error
	emit := func(r *flow.Record) {
		line = r.AppendJSON(line[:0])
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil && werr == nil {
			werr = err
		}
	}
	var sensor interface {
		Run(context.Context, capture.PacketSource) error
		Stats() capture.Stats
	}
	if cf.workers > 1 {
		sensor = capture.NewParallel(cfg, cf.workers, emit)
	} else {
		sensor = capture.NewSensor(cfg, emit)
	}

	if *cpuprofile != "" {
		pf, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	runErr := sensor.Run(ctx, src)
	elapsed := time.Since(start)
	if err := bw.Flush(); err != nil && werr == nil {
		werr = err
	}
	st := sensor.Stats()
	if !*quiet {
		printSummary(stderr, &st, elapsed)
	}
	if werr != nil {
		return fmt.Errorf("writing records: %w", werr)
	}
	return runErr
}

// packetSource is what the sensor reads from.
type packetSource interface {
	Next(*pcapfile.Packet) error
	Close() error
}

func openSource(paths []string, stdin io.Reader) (packetSource, error) {
	if len(paths) == 1 && paths[0] == "-" && stdin != os.Stdin {
		return pcapfile.NewReader(stdin, "-")
	}
	return pcapfile.OpenSource(paths)
}

func printSummary(w io.Writer, st *capture.Stats, elapsed time.Duration) {
	secs := elapsed.Seconds()
	mpps := 0.0
	if secs > 0 {
		mpps = float64(st.Packets) / secs / 1e6
	}
	fmt.Fprintf(w, "packets   %d (%d bytes on the wire)\n", st.Packets, st.Bytes)
	if !st.First.IsZero() {
		fmt.Fprintf(w, "span      %s .. %s (%s)\n", st.First.Format(time.RFC3339Nano), st.Last.Format(time.RFC3339Nano), st.Last.Sub(st.First))
	}
	fmt.Fprintf(w, "flows     %d records (%d interim), %d evicted early\n", st.Table.Records, st.Table.Interim, st.Table.Evicted)
	if st.Duplicates > 0 {
		fmt.Fprintf(w, "dedup     %d duplicate frames dropped\n", st.Duplicates)
	}
	if st.Table.Fragments > 0 {
		fmt.Fprintf(w, "fragments %d later fragments, %d without their first fragment\n", st.Table.Fragments, st.Table.FragOrphans)
	}
	if n := st.DecodeErrorTotal(); n > 0 {
		kinds := st.DecodeErrorsByKind()
		names := make([]string, 0, len(kinds))
		for k := range kinds {
			names = append(names, k)
		}
		sort.Strings(names)
		fmt.Fprintf(w, "decode    %d frames with problems:", n)
		for _, k := range names {
			fmt.Fprintf(w, " %s=%d", k, kinds[k])
		}
		fmt.Fprintln(w)
	}
	for _, e := range st.FileErrors {
		fmt.Fprintf(w, "error     %v\n", e)
	}
	fmt.Fprintf(w, "elapsed   %.3fs, %.2f Mpps\n", secs, mpps)
}
