package main

import (
	"maps"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/capture/live"
	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/config"
	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
	"github.com/flowhound/flowhound/internal/metrics"
	"github.com/flowhound/flowhound/sinks"
)

// publishEvery is how often the goroutines that own counters copy them to
// the board; they look at the clock only every few hundred records or
// packets, so the hot paths pay nothing measurable for it.
const publishEvery = 250 * time.Millisecond

// pipeline is the detection half that replay and sense share: it feeds
// every flow record to the outputs and the engine, applies settings
// reloaded on SIGHUP between two records, and publishes the engine's
// counters to the board. Record, Tick and Finish must be called from one
// goroutine at a time (the one that owns the engine).
type pipeline struct {
	engine  *detect.Engine
	outs    *outputs
	board   *board
	last    time.Time // latest record end: the detectors' clock at the end
	n       uint32
	pubAt   time.Time
	pending atomic.Pointer[pendingReload]
}

// pendingReload is a configuration that SIGHUP loaded, waiting to be
// applied between two records.
type pendingReload struct {
	cfg  detect.Config
	done func(kept []string) // reports the settings that need a restart
}

func newPipeline(engine *detect.Engine, outs *outputs, b *board) *pipeline {
	return &pipeline{engine: engine, outs: outs, board: b}
}

// Record handles one flow record.
func (p *pipeline) Record(r *flow.Record) {
	if p.pending.Load() != nil {
		p.applyReload()
	}
	p.outs.Flow(r)
	p.engine.Record(r)
	if r.End.After(p.last) {
		p.last = r.End
	}
	if p.n++; p.n%256 == 0 {
		p.publish(false)
	}
}

// Tick moves the detectors' clock on while no record comes (live capture).
func (p *pipeline) Tick(now time.Time) {
	if p.pending.Load() != nil {
		p.applyReload()
	}
	p.engine.Tick(now)
	p.publish(true)
}

// Finish closes the detectors' windows at the last record's time.
func (p *pipeline) Finish() {
	p.engine.Tick(p.last)
	p.publish(true)
}

// Reload asks for cfg to be applied before the next record; done is called
// on the pipeline's goroutine once it is.
func (p *pipeline) Reload(cfg detect.Config, done func(kept []string)) {
	p.pending.Store(&pendingReload{cfg: cfg, done: done})
}

func (p *pipeline) applyReload() {
	r := p.pending.Swap(nil)
	if r == nil {
		return
	}
	kept := p.engine.Reconfigure(r.cfg)
	p.publish(true)
	if r.done != nil {
		r.done(kept)
	}
}

func (p *pipeline) publish(force bool) {
	now := time.Now()
	if !force && now.Sub(p.pubAt) < publishEvery {
		return
	}
	p.pubAt = now
	st := p.engine.Stats()
	st.ByKind = maps.Clone(st.ByKind)
	p.board.setEngine(st, p.engine.DetectorStats())
}

// board gathers the parts of a metrics.Snapshot that different goroutines
// own — the packet path, the engine, the sinks, the reloads — so that
// /metrics, /healthz, the progress line and the InfluxDB counters can read
// them at any time.
type board struct {
	mu       sync.Mutex
	s        metrics.Snapshot
	read     int64 // input bytes read (replay), of total
	total    int64
	live     func() (live.Stats, error) // a live capture's counters, safe at any time
	sinkList func() []metrics.Sink

	// A replay's packet reader publishes on request too (see freshen), so
	// that counters read between two of its periodic publications are
	// current; reading is true while it runs.
	reading atomic.Bool
	want    atomic.Bool
	fresh   chan struct{}
}

// freshWait bounds how long freshen waits for the packet reader: no packet
// may come (a stalled pipe), and then the last publication stands.
const freshWait = 100 * time.Millisecond

// freshen asks the replay's packet reader to publish at its next packet and
// waits a moment for it.
func (b *board) freshen() {
	if !b.reading.Load() || b.fresh == nil {
		return
	}
	select {
	case <-b.fresh: // a stale answer
	default:
	}
	b.want.Store(true)
	select {
	case <-b.fresh:
	case <-time.After(freshWait):
	}
}

func (b *board) setEngine(st detect.EngineStats, det map[detect.Kind]detect.DetectorStats) {
	b.mu.Lock()
	b.s.Engine, b.s.Detectors = st, det
	b.mu.Unlock()
}

// setSensor records the packet path's counters (valid false: not readable
// during this run) and the input read so far; it is a heartbeat.
func (b *board) setSensor(st capture.Stats, valid bool, read, total int64) {
	b.mu.Lock()
	if valid {
		b.s.Sensor, b.s.SensorValid = st, true
	}
	b.read, b.total = read, total
	b.s.Heartbeat = time.Now()
	b.mu.Unlock()
}

// reloaded counts a reload.
func (b *board) reloaded(ok bool) {
	b.mu.Lock()
	if ok {
		b.s.Reloads.OK++
		b.s.Reloads.Last = time.Now()
	} else {
		b.s.Reloads.Failed++
	}
	b.mu.Unlock()
}

// snapshot returns the latest counters of every part.
func (b *board) snapshot() *metrics.Snapshot {
	b.mu.Lock()
	s := b.s
	b.mu.Unlock()
	if b.live != nil {
		ls, _ := b.live() // a counter the kernel would not give stays zero
		s.Sensor, s.SensorValid = ls.Sensor, true
		if !ls.Heartbeat.IsZero() {
			s.Heartbeat = ls.Heartbeat
		}
		s.Interfaces = make([]metrics.Interface, len(ls.Interfaces))
		for i, is := range ls.Interfaces {
			s.Interfaces[i] = metrics.Interface{Name: is.Name, Packets: is.Kernel.Packets, Drops: is.Kernel.Drops, Freezes: is.Kernel.Freezes}
		}
	}
	if b.sinkList != nil {
		s.Sinks = b.sinkList()
	}
	return &s
}

// progress returns the input read so far and its total size (0 when
// unknown: standard input, compressed files).
func (b *board) progress() (read, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.read, b.total
}

// counters are the InfluxDB counters as of now; ok is false before the
// first packet, when there is nothing to report (and no packet time to
// stamp it with).
func (b *board) counters() (c sinks.Counters, ok bool) {
	b.freshen()
	s := b.snapshot()
	if !s.SensorValid || s.Sensor.Packets == 0 && len(s.Interfaces) == 0 {
		return c, false
	}
	c = countersOf(&s.Sensor)
	for _, i := range s.Interfaces {
		c.Drops += i.Drops
	}
	if c.Time.IsZero() {
		c.Time = time.Now() // a live capture before its first packet
	}
	return c, true
}

// replayTap publishes the packet path's counters and the input's progress
// to the board from the goroutine that reads packets (the sensor's own
// with one worker, so its counters are safe to read there).
type replayTap struct {
	packetSource
	board  *board
	sensor func() capture.Stats // nil with several workers
	n      uint32
	at     time.Time
}

func (t *replayTap) Next(p *pcapfile.Packet) error {
	if t.board.want.Load() {
		t.board.want.Store(false)
		t.publish()
		select {
		case t.board.fresh <- struct{}{}:
		default:
		}
	} else if t.n++; t.n%64 == 0 {
		if now := time.Now(); now.Sub(t.at) >= publishEvery {
			t.at = now
			t.publish()
		}
	}
	return t.packetSource.Next(p)
}

func (t *replayTap) publish() {
	var st capture.Stats
	if t.sensor != nil {
		st = t.sensor()
	}
	read, total := int64(0), int64(0)
	if p, ok := t.packetSource.(interface{ Progress() (int64, int64) }); ok {
		read, total = p.Progress()
	}
	t.board.setSensor(st, t.sensor != nil, read, total)
}

// staleAfter is how old the heartbeat may be before /healthz fails.
const staleAfter = 10 * time.Second

// detectConfig is the engine's configuration from file, with the capture's
// home networks (those of -home-net, when given) and the sensor id of
// -sensor, else of the file, else the host name.
func detectConfig(file *config.Config, homeNets *flow.Networks, sensor string) detect.Config {
	dcfg := file.DetectConfig()
	if homeNets != nil {
		dcfg.HomeNets = homeNets
	}
	if dcfg.HomeNets == nil {
		dcfg.HomeNets = flow.DefaultHomeNets()
	}
	if sensor != "" {
		dcfg.Sensor = sensor
	}
	if dcfg.Sensor == "" {
		dcfg.Sensor, _ = os.Hostname()
	}
	return dcfg
}
