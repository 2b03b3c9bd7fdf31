package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/config"
	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
	"github.com/flowhound/flowhound/internal/metrics"
	"github.com/flowhound/flowhound/sinks"
)

// outputOptions says what a command writes besides the sinks of its
// configuration.
type outputOptions struct {
	// Findings, when set, receives every finding as a JSON line, written
	// synchronously (nothing is dropped), and the configuration's
	// sinks.jsonl is not used. When nil, findings go to sinks.jsonl if it
	// is enabled.
	Findings io.Writer
	// Flows, when set, receives every flow record as a JSON line. It may be
	// the same writer as Findings; the lines then interleave.
	Flows io.Writer
	// Sensor is stamped on counters that do not name their sensor.
	Sensor string
	// Wait makes a message wait for room in a sink's buffer while that
	// sink is delivering, rather than be dropped: a replay reads much
	// faster than a network sink writes, and has nothing to lose by
	// waiting. A live sensor must not wait (the capture ring would
	// overflow instead). Wait never waits for a sink that is failing.
	Wait bool
	// Logger receives the sinks' warnings.
	Logger *slog.Logger
}

// outputs sends a command's findings, flow records and counters to the
// JSON-lines writers and to every sink the configuration enables: Kafka
// (findings; flow records when sinks.kafka.flows_topic is set) and
// InfluxDB (findings and counters).
//
// Each destination gets one sink per kind of message ("kafka findings",
// "kafka flows"), so that a flood of flow records cannot crowd findings
// out of a buffer, and so that the stats tell exactly whether findings
// were lost.
//
// Finding and Flow must be called from one goroutine at a time (the one
// that feeds the detection engine); StartCounters' read function runs on
// a goroutine of its own. Close after the last Finding and Flow.
type outputs struct {
	log      *slog.Logger
	sensor   string
	wait     bool
	interval time.Duration // counters

	findings, flows *lineWriter
	line            []byte

	routes  []*route
	byTopic [sinks.TopicCounters + 1][]*route
	all     *sinks.Fanout

	mu     sync.Mutex // guards byKind, read by the counters publisher
	byKind map[detect.Kind]uint64

	encodeErr   error
	stopCounter context.CancelFunc
	counterDone chan struct{}
	closed      bool
}

// route is one sink taking one topic.
type route struct {
	name   string // "kafka findings"
	topic  sinks.Topic
	sink   sinks.Sink
	buffer int // the sink's buffer size, for Wait

	// Wait's view of the sink's progress: messages settled (sent or
	// dropped as undeliverable) when last looked at, and since when.
	settled   uint64
	settledAt time.Time
}

// Shutdown: Close gives the sinks the caller's deadline to deliver what
// they hold (Flush); what is left then is dropped at once (Close with this
// grace) and counted.
const closeGrace = 100 * time.Millisecond

// stallTimeout bounds Wait for a sink that delivers nothing and reports no
// error (a request hanging until its write timeout).
const stallTimeout = 30 * time.Second

// openOutputs builds the sinks that cfg enables. A setting that a sink
// refuses is an error naming it (sinks.kafka: sasl.password: ...); nothing
// is contacted yet, so an unreachable server is not an error: its messages
// wait in the sink's buffer.
func openOutputs(cfg *config.Config, opts outputOptions) (*outputs, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	o := &outputs{
		log: log, sensor: opts.Sensor, wait: opts.Wait, interval: cfg.Sinks.InfluxDB.Interval,
		all: sinks.NewFanout(), byKind: map[detect.Kind]uint64{},
	}
	if opts.Findings != nil {
		o.findings = newLineWriter(opts.Findings, 64<<10)
	}
	switch {
	case opts.Flows == nil:
	case opts.Flows == opts.Findings:
		o.flows = o.findings
	default:
		o.flows = newLineWriter(opts.Flows, 1<<20)
	}
	delivery := func(d sinks.Delivery, def sinks.Delivery) (sinks.Delivery, int) {
		d.Logger, d.CloseTimeout = log, closeGrace
		if d.Buffer == 0 {
			d.Buffer = def.Buffer
		}
		return d, d.Buffer
	}
	add := func(s sinks.Sink, err error, section string, topic sinks.Topic, buffer int) error {
		if err != nil {
			return fmt.Errorf("sinks.%w", err) // "sinks.kafka: tls.ca_file: ..."
		}
		o.addRoute(section+" "+topicNames[topic], topic, s, buffer)
		return nil
	}
	err := func() error {
		if j, ok := cfg.JSONLConfig(); ok && opts.Findings == nil {
			var n int
			j.Delivery, n = delivery(j.Delivery, sinks.DefaultJSONLDelivery())
			s, err := sinks.NewJSONL(j)
			if err := add(s, err, "jsonl", sinks.TopicFinding, n); err != nil {
				return err
			}
		}
		if k, ok := cfg.KafkaConfig(); ok {
			var n int
			k.Delivery, n = delivery(k.Delivery, sinks.DefaultKafkaDelivery())
			flowsTopic := k.FlowsTopic
			k.FlowsTopic, k.CountersTopic = "", ""
			s, err := sinks.NewKafka(k)
			if err := add(s, err, "kafka", sinks.TopicFinding, n); err != nil {
				return err
			}
			if flowsTopic != "" {
				k.FlowsTopic = flowsTopic // findings_topic stays set, but no finding is sent here
				s, err := sinks.NewKafka(k)
				if err := add(s, err, "kafka", sinks.TopicFlow, n); err != nil {
					return err
				}
			}
		}
		if x, ok := cfg.InfluxConfig(); ok {
			var n int
			x.Delivery, n = delivery(x.Delivery, sinks.DefaultInfluxDelivery())
			for _, t := range []sinks.Topic{sinks.TopicFinding, sinks.TopicCounters} {
				s, err := sinks.NewInflux(x)
				if err := add(s, err, "influxdb", t, n); err != nil {
					return err
				}
			}
		}
		return nil
	}()
	if err != nil {
		o.all.Close()
		return nil, err
	}
	return o, nil
}

// addRoute sends topic to s, whose buffer holds buffer messages.
func (o *outputs) addRoute(name string, topic sinks.Topic, s sinks.Sink, buffer int) {
	r := &route{name: name, topic: topic, sink: s, buffer: buffer, settledAt: time.Now()}
	o.routes = append(o.routes, r)
	o.byTopic[topic] = append(o.byTopic[topic], r)
	o.all.Add(s, topic)
}

var topicNames = [...]string{sinks.TopicFinding: "findings", sinks.TopicFlow: "flows", sinks.TopicCounters: "counters"}

// Finding writes f and sends it to the sinks that take findings. The sinks
// get a copy: detectors reuse their findings.
func (o *outputs) Finding(f *detect.Finding) {
	o.mu.Lock()
	o.byKind[f.Kind]++
	o.mu.Unlock()
	routes := o.byTopic[sinks.TopicFinding]
	var m sinks.Message
	var err error
	if len(routes) > 0 {
		m, err = sinks.NewFindingMessage(cloneFinding(f))
	} else if o.findings != nil {
		m.Value, err = f.MarshalJSON()
	}
	if err != nil {
		if o.encodeErr == nil {
			o.encodeErr = err
		}
		return
	}
	if o.findings != nil {
		o.findings.write(m.Value)
	}
	o.send(routes, m)
}

// Flow writes r and sends it to the sinks that take flow records. r is not
// kept.
func (o *outputs) Flow(r *flow.Record) {
	if o.flows != nil {
		o.line = r.AppendJSON(o.line[:0])
		o.flows.write(o.line)
	}
	if routes := o.byTopic[sinks.TopicFlow]; len(routes) > 0 {
		o.send(routes, sinks.NewFlowMessage(r))
	}
}

func (o *outputs) send(routes []*route, m sinks.Message) {
	for _, r := range routes {
		if o.wait {
			o.waitForRoom(r)
		}
		// A full buffer drops m; the sink counts it.
		r.sink.Send(context.Background(), m)
	}
}

// waitForRoom waits until r's buffer has room for one more message, as
// long as the sink keeps delivering. It returns at once when the sink is
// failing — its last error is more recent than the last delivery seen —
// and after stallTimeout without any progress, so that an unreachable
// server costs a replay its messages (counted as dropped), not its end.
func (o *outputs) waitForRoom(r *route) {
	for {
		st := r.sink.Stats()
		now := time.Now()
		if n := st.Sent + st.Permanent; n != r.settled {
			r.settled, r.settledAt = n, now
		}
		if st.Buffered < r.buffer || st.LastErrorTime.After(r.settledAt) || now.Sub(r.settledAt) > stallTimeout {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// Flush writes out the JSON lines buffered so far; a live sensor calls it
// periodically so that its output does not wait for a full buffer.
func (o *outputs) Flush() error {
	var errs []error
	for _, w := range []*lineWriter{o.findings, o.flows} {
		if w != nil {
			errs = append(errs, w.flush())
		}
	}
	return errors.Join(errs...)
}

// StartCounters publishes counters to the sinks that take them (InfluxDB)
// every sinks.influxdb.interval, and once more at Close, so that the final
// values are kept. read runs on the publisher's goroutine and must be safe
// there; ok false skips a publication (nothing to report yet). The outputs
// fill in the sensor and the findings by kind when read leaves them empty.
// Without a sink for counters, StartCounters does nothing.
func (o *outputs) StartCounters(read func() (c sinks.Counters, ok bool)) {
	routes := o.byTopic[sinks.TopicCounters]
	if len(routes) == 0 || o.stopCounter != nil || o.closed {
		return
	}
	var to sinks.Sink = routes[0].sink
	if len(routes) > 1 {
		f := sinks.NewFanout()
		for _, r := range routes {
			f.Add(r.sink)
		}
		to = f
	}
	interval := o.interval
	if interval <= 0 { // not from a validated configuration
		interval = config.Default().Sinks.InfluxDB.Interval
	}
	ctx, cancel := context.WithCancel(context.Background())
	o.stopCounter, o.counterDone = cancel, make(chan struct{})
	go func() {
		defer close(o.counterDone)
		sinks.PublishCounters(ctx, to, interval, func() *sinks.Counters {
			c, ok := read()
			if !ok {
				return nil
			}
			if c.Sensor == "" {
				c.Sensor = o.sensor
			}
			if c.Findings == nil {
				o.mu.Lock()
				c.Findings = maps.Clone(o.byKind)
				o.mu.Unlock()
			}
			return &c
		})
	}()
}

// countersOf fills the sensor's counters from its stats; the event time is
// that of the last packet.
func countersOf(st *capture.Stats) sinks.Counters {
	return sinks.Counters{
		Time: st.Last, Packets: st.Packets, Bytes: st.Bytes, FlowsActive: uint64(max(st.Table.Active, 0)),
		DecodeErrors: st.DecodeErrorTotal(),
	}
}

// Close publishes the last counters, writes out the JSON lines, gives the
// sinks until ctx's deadline to deliver what they hold, then closes them;
// what is still undelivered is dropped and counted. ctx should have a
// deadline: a sink whose server is away holds its messages until then.
// The error reports a failed write, and findings that a sink dropped.
func (o *outputs) Close(ctx context.Context) error {
	if o.closed {
		return nil
	}
	o.closed = true
	if o.stopCounter != nil {
		o.stopCounter()
		<-o.counterDone
	}
	errs := []error{o.encodeErr}
	if err := o.Flush(); err != nil {
		errs = append(errs, fmt.Errorf("writing output: %w", err))
	}
	if err := o.all.Flush(ctx); err != nil {
		o.log.Warn("sinks did not deliver everything in time; dropping the rest", "err", err)
	}
	o.all.Close()
	for _, r := range o.byTopic[sinks.TopicFinding] {
		if st := r.sink.Stats(); st.Dropped > 0 {
			errs = append(errs, fmt.Errorf("%s: %d of %d findings not delivered", r.name, st.Dropped, st.Sent+st.Dropped))
		}
	}
	return errors.Join(errs...)
}

// PrintSummary writes one line per sink: messages sent, retried and
// dropped, and the last error; then a line for every sink that lost
// findings. It prints nothing when no sink is configured.
func (o *outputs) PrintSummary(w io.Writer) {
	for _, r := range o.routes {
		st := r.sink.Stats()
		fmt.Fprintf(w, "sink      %s: %d sent, %d retried, %d dropped", r.name, st.Sent, st.Retried, st.Dropped)
		if st.Buffered > 0 {
			fmt.Fprintf(w, ", %d buffered", st.Buffered)
		}
		if st.LastError != "" {
			fmt.Fprintf(w, "; last error: %s", st.LastError)
		}
		fmt.Fprintln(w)
	}
	for _, r := range o.byTopic[sinks.TopicFinding] {
		if st := r.sink.Stats(); st.Dropped > 0 {
			fmt.Fprintf(w, "lost      %d findings were not delivered to %s\n", st.Dropped, r.name)
		}
	}
}

// sinkStats returns every sink's counters, for the metrics.
func (o *outputs) sinkStats() []metrics.Sink {
	out := make([]metrics.Sink, len(o.routes))
	for i, r := range o.routes {
		out[i] = metrics.Sink{Name: r.name, Stats: r.sink.Stats()}
	}
	return out
}

// cloneFinding copies f deeply enough that the detector that made it may
// reuse its own.
func cloneFinding(f *detect.Finding) *detect.Finding {
	c := *f
	c.SubScores = slices.Clone(f.SubScores)
	c.MITRE = slices.Clone(f.MITRE)
	e := &c.Evidence
	e.Peers, e.Ports = slices.Clone(e.Peers), slices.Clone(e.Ports)
	e.Names, e.Notes = slices.Clone(e.Names), slices.Clone(e.Notes)
	e.Extra = maps.Clone(e.Extra)
	return &c
}

// lineWriter writes JSON lines through a buffer and keeps the first error.
type lineWriter struct {
	bw  *bufio.Writer
	err error
}

func newLineWriter(w io.Writer, size int) *lineWriter {
	return &lineWriter{bw: bufio.NewWriterSize(w, size)}
}

func (w *lineWriter) write(b []byte) {
	if w.err != nil {
		return
	}
	if _, err := w.bw.Write(b); err != nil {
		w.err = err
	} else if err := w.bw.WriteByte('\n'); err != nil {
		w.err = err
	}
}

func (w *lineWriter) flush() error {
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	return w.err
}

// onShutdownSignal cancels the run at the first SIGINT or SIGTERM, so that
// the command stops reading, flushes its open flows through the detectors
// and gives its sinks time to deliver; a second signal calls exit with
// 128 + the signal's number at once. stop undoes it.
func onShutdownSignal(stderr io.Writer, cancel context.CancelFunc, exit func(code int)) (stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	var stopped atomic.Bool
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(stderr, "%v: stopping; flushing open flows and outputs (signal again to exit at once)\n", s)
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			fmt.Fprintf(stderr, "%v: exiting without flushing\n", s)
			code := 1
			if n, ok := s.(syscall.Signal); ok {
				code = 128 + int(n)
			}
			exit(code)
		case <-done:
		}
	}()
	return func() {
		if !stopped.Swap(true) {
			signal.Stop(sigs)
			close(done)
		}
	}
}
