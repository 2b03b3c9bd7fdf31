package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/flowhound/flowhound/capture/live"
	"github.com/flowhound/flowhound/config"
	"github.com/flowhound/flowhound/detect"
)

// senseFlags are the live capture settings of `flowhound sense`.
type senseFlags struct {
	ifaces   string
	filter   string
	ringSize string
	snaplen  int
	promisc  bool
	user     string
	out      string
	flowsOut string
	sensorID string
	statsInt time.Duration
	metrics  string
	quiet    bool
}

// cmdSense captures live interfaces (AF_PACKET) through the sensor and the
// detectors until SIGINT or SIGTERM, and writes findings as JSON lines.
func cmdSense(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sense", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf captureFlags
	cf.register(fs)
	fs.Lookup("workers").Usage = "fanout sockets per interface, each with its own ring and flow table; the kernel shares out packets by flow (overrides fanout_workers of -config)"
	def := config.DefaultInterface("")
	var sf senseFlags
	fs.StringVar(&sf.ifaces, "i", "", "comma-separated interfaces to capture (default: capture.interfaces of -config)")
	fs.StringVar(&sf.filter, "f", "", "capture filter in tcpdump syntax, e.g. 'not port 22' (compiled by running tcpdump once at start)")
	fs.StringVar(&sf.ringSize, "ring-size", def.RingSize.String(), "ring memory of each fanout socket")
	fs.IntVar(&sf.snaplen, "snaplen", def.Snaplen, "most bytes kept of each frame (byte counts use the original length)")
	fs.BoolVar(&sf.promisc, "promisc", def.Promiscuous, "put the interfaces in promiscuous mode (needed on a SPAN or TAP port)")
	fs.StringVar(&sf.user, "user", "", "after opening the sockets, switch to this user and drop all capabilities")
	fs.StringVar(&sf.out, "o", "-", "write findings to this file instead of stdout")
	fs.StringVar(&sf.flowsOut, "flows", "", "also write every flow record as JSON lines to this file (- for stdout, mixed with findings)")
	fs.StringVar(&sf.sensorID, "sensor", "", "sensor id stamped on findings (default: sensor.id of -config, else the host name)")
	fs.DurationVar(&sf.statsInt, "stats-interval", 0, "print packet and kernel drop counters to stderr this often (0: only at exit)")
	fs.StringVar(&sf.metrics, "metrics", "", "serve Prometheus /metrics and /healthz on this host:port (default: metrics.listen of -config, 127.0.0.1:9750; \"\" or \"off\" disables)")
	fs.BoolVar(&sf.quiet, "q", false, "no start line and no summary on stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowhound sense -i IFACE[,IFACE] [flags]\n       flowhound sense -config FILE [flags]\n\n"+
			"Captures live interfaces (AF_PACKET TPACKET_V3 rings, PACKET_FANOUT_HASH across -workers sockets),\n"+
			"runs the detectors and writes one JSON finding per line until SIGINT or SIGTERM; then it flushes the\n"+
			"open flows through the detectors and exits 0. A second signal exits at once. Needs CAP_NET_RAW\n"+
			"(promiscuous mode too); -user drops it once the sockets are open. Flags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{2, errUsageShown}
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return &exitError{2, fmt.Errorf("sense takes no arguments, got %q", fs.Args())}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	opts, dcfg, filters, err := senseSettings(&cf, &sf, set)
	if err != nil {
		return &exitError{2, err}
	}

	// Findings go to -o (stdout by default) and to every sink the
	// configuration enables; a live sensor never waits for a sink (the
	// capture ring would overflow instead): a full buffer drops, counted.
	log, level := newLogger(stderr, &cf.file.Log)
	metricsAddr := cf.file.Metrics.Listen
	if set["metrics"] {
		metricsAddr = sf.metrics
	}
	if metricsAddr == "off" {
		metricsAddr = ""
	}
	oopts := outputOptions{Sensor: dcfg.Sensor, Wait: false, Logger: log}
	fw, closeF, err := createOutput(sf.out, stdout)
	if err != nil {
		return err
	}
	defer closeF()
	oopts.Findings = fw
	if sf.flowsOut != "" {
		if sf.flowsOut == "-" && fw == stdout {
			oopts.Flows = stdout
		} else {
			w, closeFl, err := createOutput(sf.flowsOut, stdout)
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
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
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
	b := &board{sinkList: outs.sinkStats}
	pipe := newPipeline(engine, outs, b)
	// Emit and Tick are serialised by the capture: records and findings
	// of all workers are merged here.
	opts.Emit = pipe.Record
	opts.Tick = func(now time.Time) {
		pipe.Tick(now)
		outs.Flush() // a live sensor's output should not wait for a full buffer
	}

	// Filters are compiled by tcpdump, which needs the privileges that
	// opening the sockets needs: both happen before they are dropped.
	ctx := context.Background()
	for i := range opts.Interfaces {
		ic := &opts.Interfaces[i]
		if ic.Filter, err = live.CompileFilter(ctx, ic.Interface, ic.Snaplen, filters[i]); err != nil {
			return err
		}
	}
	capt, err := live.Open(opts)
	if err != nil {
		return err
	}
	defer capt.Close()
	b.live = capt.Stats
	who := "privileges kept (no -user)"
	if sf.user != "" {
		if err := live.DropPrivileges(sf.user); err != nil {
			return err
		}
		who = "as " + sf.user + ", no capabilities"
	}
	if !sf.quiet {
		for i, ic := range opts.Interfaces {
			fmt.Fprintf(stderr, "capturing on %s: %s, ring %s each, snaplen %d%s%s; %s\n", ic.Interface, plural(ic.Workers, "worker"),
				config.ByteSize(ic.RingSize), ic.Snaplen, map[bool]string{true: ", promiscuous"}[ic.Promiscuous],
				describeFilter(filters[i]), who)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rl := &reloader{path: cf.configPath, running: cf.file, log: log, level: level, pipe: pipe, board: b,
		detectConfig: func(f *config.Config) detect.Config { return detectConfig(f, dcfg.HomeNets, dcfg.Sensor) }}
	stopReload := rl.watch()
	defer stopReload()
	if err := startMetrics(ctx, metricsAddr, dcfg.Sensor, b, staleAfter, log); err != nil {
		return &exitError{2, err}
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer func() {
		signal.Stop(sigs)
		close(sigs) // no signal is sent on it after Stop
	}()
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		fmt.Fprintf(stderr, "%v: stopping; flushing open flows (signal again to exit at once)\n", s)
		cancel()
		if s, ok = <-sigs; ok {
			fmt.Fprintf(stderr, "%v: exiting without flushing\n", s)
			os.Exit(128 + int(s.(syscall.Signal)))
		}
	}()
	if sf.statsInt > 0 {
		go func() {
			t := time.NewTicker(sf.statsInt)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					st, _ := capt.Stats()
					printKernelStats(stderr, &st)
				}
			}
		}()
	}

	// Counters for InfluxDB: the workers' packet paths as they last
	// copied them, and the kernel's drops.
	outs.StartCounters(b.counters)

	start := time.Now()
	runErr := capt.Run(ctx)
	elapsed := time.Since(start)
	pipe.Finish()
	st, statErr := capt.Stats() // final: Run has returned
	outErr := closeOutputs()
	if !sf.quiet {
		printSummary(stderr, &st.Sensor, elapsed)
		printKernelStats(stderr, &st)
		printFindingSummary(stderr, engine, top)
		outs.PrintSummary(stderr)
	}
	if runErr != nil {
		return runErr
	}
	return errors.Join(outErr, statErr)
}

// senseSettings merges the configuration file of -config (or the defaults)
// with the flags given on the command line. It returns the capture filter
// expression of each interface beside the options; they are compiled later.
func senseSettings(cf *captureFlags, sf *senseFlags, set map[string]bool) (opts live.Options, dcfg detect.Config, filters []string, err error) {
	if opts.Sensor, err = cf.config(); err != nil {
		return opts, dcfg, nil, err
	}
	file := cf.file
	dcfg = detectConfig(file, opts.Sensor.Table.HomeNets, sf.sensorID)

	// The interfaces: -i picks them (with the file's settings for those it
	// lists), and the capture flags given override every interface.
	ifaces := file.Capture.Interfaces
	if sf.ifaces != "" {
		ifaces = nil
		for _, name := range strings.Split(sf.ifaces, ",") {
			name = strings.TrimSpace(name)
			ic := config.DefaultInterface(name)
			for _, fc := range file.Capture.Interfaces {
				if fc.Name == name {
					ic = fc
				}
			}
			ifaces = append(ifaces, ic)
		}
	}
	if len(ifaces) == 0 {
		return opts, dcfg, nil, fmt.Errorf("no interface to capture: give -i IFACE, or capture.interfaces in the -config file")
	}
	var ring config.ByteSize
	if set["ring-size"] {
		if ring, err = config.ParseByteSize(sf.ringSize); err != nil {
			return opts, dcfg, nil, fmt.Errorf("-ring-size: %w", err)
		}
	}
	for _, ic := range ifaces {
		lc := live.Config{
			Interface: ic.Name, Workers: ic.FanoutWorkers, RingSize: int(ic.RingSize),
			Snaplen: ic.Snaplen, Promiscuous: ic.Promiscuous,
		}
		if set["workers"] {
			lc.Workers = cf.workers
		}
		if set["ring-size"] {
			lc.RingSize = int(ring)
		}
		if set["snaplen"] {
			lc.Snaplen = sf.snaplen
		}
		if set["promisc"] {
			lc.Promiscuous = sf.promisc
		}
		switch {
		case lc.Interface == "" || strings.ContainsAny(lc.Interface, "/: \t") || len(lc.Interface) > 15:
			return opts, dcfg, nil, fmt.Errorf("not a network interface name: %q", lc.Interface)
		case lc.RingSize < 1<<20:
			return opts, dcfg, nil, fmt.Errorf("-ring-size must be at least 1MiB, got %s", config.ByteSize(lc.RingSize))
		case lc.Snaplen < 64 || lc.Snaplen > live.MaxSnaplen:
			return opts, dcfg, nil, fmt.Errorf("-snaplen must be between 64 and %d, got %d", live.MaxSnaplen, lc.Snaplen)
		}
		opts.Interfaces = append(opts.Interfaces, lc)
		f := ic.BPF
		if set["f"] {
			f = sf.filter
		}
		filters = append(filters, strings.TrimSpace(f))
	}
	return opts, dcfg, filters, nil
}

func describeFilter(expr string) string {
	if expr == "" {
		return ""
	}
	return fmt.Sprintf(", filter %q", expr)
}

// printKernelStats prints each interface's kernel counters.
func printKernelStats(w io.Writer, st *live.Stats) {
	for _, is := range st.Interfaces {
		var read int64
		for _, ws := range is.Workers {
			read += ws.Received
		}
		fmt.Fprintf(w, "kernel    %s: %d packets, %d dropped (%d ring full), %d read by %s\n",
			is.Name, is.Kernel.Packets, is.Kernel.Drops, is.Kernel.Freezes, read, plural(len(is.Workers), "worker"))
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
