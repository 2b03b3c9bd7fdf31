package live

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/flow"
)

// Options configure a Capture.
type Options struct {
	// Interfaces are captured together; each with its own fanout group.
	Interfaces []Config
	// Sensor configures every worker's packet path. Table.MaxFlows is
	// shared out between the workers, as capture.Parallel does.
	Sensor capture.Config
	// Emit receives every flow record. Calls are serialised (one at a
	// time, from the workers' goroutines) and the record is reused after
	// Emit returns. Nil discards the records.
	Emit func(*flow.Record)
	// Tick, when not nil, is called every TickEvery (default 1s) with the
	// current time, serialised with Emit, so that detectors close their
	// windows while no record arrives. The ring's timestamps are the
	// kernel's clock, so the wall clock is packet time here.
	Tick      func(now time.Time)
	TickEvery time.Duration
}

// Capture reads live interfaces into flow records: one capture.Sensor per
// fanout socket, each on its own goroutine.
type Capture struct {
	opts    Options
	ifaces  []string
	workers []*worker
	mu      sync.Mutex // serialises Emit and Tick
	ran     atomic.Bool
	done    atomic.Bool
}

type worker struct {
	iface  int
	src    *Source
	sensor *capture.Sensor
	clock  advancer // the sensor, when its clock can move without packets
	final  capture.Stats

	// The sensor's counters as of snapAt, copied by the worker itself
	// (the sensor is not safe to read from another goroutine) at most
	// every snapshotEvery, so that Stats can sum them during Run.
	n      uint32
	mu     sync.Mutex
	snap   capture.Stats
	snapAt time.Time
}

// snapshotEvery is how often a worker copies its sensor's counters for
// Stats during Run; it looks at the clock every snapshotCheck frames.
const (
	snapshotEvery = 500 * time.Millisecond
	snapshotCheck = 1024
)

// snapshot copies the sensor's counters when the last copy is old enough.
func (w *worker) snapshot(force bool) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if force || now.Sub(w.snapAt) >= snapshotEvery {
		w.snap, w.snapAt = w.sensor.Stats(), now
	}
}

// advancer is a sensor whose packet clock can be moved on while no packet
// arrives, so the flows of a quiet worker still time out.
type advancer interface{ Advance(now int64) }

// errIdle is returned by Source.next when no frame arrived in time.
var errIdle = errors.New("live: idle")

// idleAfter is how long a worker waits for a frame before it moves its
// sensor's clock on; idleLag keeps that clock behind the wall clock by more
// than a ring block can hold frames back.
const (
	idleAfter = time.Second
	idleLag   = time.Second
)

// Open opens the sockets of every interface; nothing is read until Run.
// This is the step that needs CAP_NET_RAW (and, for tcpdump-compiled
// filters, CompileFilter before it); call DropPrivileges afterwards.
func Open(opts Options) (*Capture, error) {
	if len(opts.Interfaces) == 0 {
		return nil, errors.New("live: no interface to capture")
	}
	c := &Capture{opts: opts}
	if c.opts.TickEvery <= 0 {
		c.opts.TickEvery = time.Second
	}
	total := 0
	for _, ic := range opts.Interfaces {
		total += max(ic.Workers, 1)
	}
	scfg := opts.Sensor
	if scfg.Table.MaxFlows > 0 {
		scfg.Table.MaxFlows = max(scfg.Table.MaxFlows/total, 1)
	}
	emit := func(r *flow.Record) {
		if c.opts.Emit != nil {
			c.mu.Lock()
			c.opts.Emit(r)
			c.mu.Unlock()
		}
	}
	for i, ic := range opts.Interfaces {
		srcs, err := OpenInterface(ic, i)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.ifaces = append(c.ifaces, ic.Interface)
		for _, s := range srcs {
			w := &worker{iface: i, src: s, sensor: capture.NewSensor(scfg, emit)}
			w.clock, _ = any(w.sensor).(advancer)
			c.workers = append(c.workers, w)
		}
	}
	return c, nil
}

// Run reads every socket until ctx is done or an interface disappears. It
// then reads what the rings hold at that moment, flushes every flow table
// (the records go to Emit) and returns; ctx's end is not an error. Run may
// be called once.
func (c *Capture) Run(ctx context.Context) error {
	if !c.ran.CompareAndSwap(false, true) {
		return errors.New("live: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(c.workers))
	for i, w := range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = w.run(); errs[i] != nil {
				cancel()
			}
		}()
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(c.opts.TickEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				for _, w := range c.workers {
					w.src.Stop()
				}
				return
			case now := <-t.C:
				if c.opts.Tick != nil {
					c.mu.Lock()
					c.opts.Tick(now)
					c.mu.Unlock()
				}
			}
		}
	}()
	wg.Wait()
	cancel()
	<-stopped
	c.done.Store(true)
	return errors.Join(errs...)
}

// run is one worker's loop: frames from its socket into its sensor.
func (w *worker) run() error {
	defer func() { w.final = w.sensor.Stats() }()
	w.snapshot(true)
	var p pcapfile.Packet
	for {
		err := w.src.next(&p, idleAfter)
		switch err {
		case nil:
			w.sensor.Packet(&p)
			if w.n++; w.n%snapshotCheck == 0 {
				w.snapshot(false)
			}
			continue
		case errIdle:
			if w.clock != nil {
				w.clock.Advance(time.Now().Add(-idleLag).UnixNano())
			}
			w.snapshot(false)
			continue
		case io.EOF:
			err = nil
		}
		w.sensor.Flush()
		return err
	}
}

// Stats are a capture's counters.
type Stats struct {
	// Sensor sums the workers' packet paths: during Run as each worker
	// last copied its counters (at most half a second ago while frames
	// come, about a second when idle), final once Run has returned.
	Sensor capture.Stats
	// Heartbeat is the oldest of the workers' latest copies: the wall time
	// by which every worker was last seen alive. Zero before Run.
	Heartbeat time.Time
	// Kernel sums the kernel's counters of every socket.
	Kernel     KernelStats
	Interfaces []InterfaceStats
}

// InterfaceStats are the counters of one interface.
type InterfaceStats struct {
	Name    string
	Kernel  KernelStats
	Workers []WorkerStats
}

// WorkerStats are the counters of one fanout socket.
type WorkerStats struct {
	Kernel KernelStats
	// Received are the frames read from the ring (updated as each ring
	// block is done with).
	Received int64
	// Sensor is the worker's packet path (see Stats.Sensor).
	Sensor capture.Stats
}

// Stats returns the counters. It may be called at any time, also during
// Run; an error reading a kernel counter is returned with the rest.
func (c *Capture) Stats() (Stats, error) {
	st := Stats{Interfaces: make([]InterfaceStats, len(c.ifaces))}
	for i, name := range c.ifaces {
		st.Interfaces[i].Name = name
	}
	done := c.done.Load()
	var errs []error
	for _, w := range c.workers {
		ks, err := w.src.Stats()
		if err != nil {
			errs = append(errs, err)
		}
		ws := WorkerStats{Kernel: ks, Received: w.src.Received()}
		if done {
			ws.Sensor = w.final
		} else {
			w.mu.Lock()
			ws.Sensor = w.snap
			if !w.snapAt.IsZero() && (st.Heartbeat.IsZero() || w.snapAt.Before(st.Heartbeat)) {
				st.Heartbeat = w.snapAt
			}
			w.mu.Unlock()
		}
		addStats(&st.Sensor, &ws.Sensor)
		is := &st.Interfaces[w.iface]
		is.Kernel.Add(ks)
		is.Workers = append(is.Workers, ws)
		st.Kernel.Add(ks)
	}
	return st, errors.Join(errs...)
}

// addStats adds s to dst.
func addStats(dst, s *capture.Stats) {
	dst.Packets += s.Packets
	dst.Bytes += s.Bytes
	dst.Duplicates += s.Duplicates
	for i := range dst.DecodeErrors {
		dst.DecodeErrors[i] += s.DecodeErrors[i]
	}
	t, o := &dst.Table, &s.Table
	t.Packets += o.Packets
	t.Flows += o.Flows
	t.Records += o.Records
	t.Interim += o.Interim
	t.Evicted += o.Evicted
	t.Active += o.Active
	t.Fragments += o.Fragments
	t.FragOrphans += o.FragOrphans
	t.HintErrors += o.HintErrors
	dst.FileErrors = append(dst.FileErrors, s.FileErrors...)
	if !s.First.IsZero() && (dst.First.IsZero() || s.First.Before(dst.First)) {
		dst.First = s.First
	}
	if s.Last.After(dst.Last) {
		dst.Last = s.Last
	}
}

// Close closes every socket, taking the interfaces out of promiscuous mode.
// Run must have returned. The kernel counters stay readable with Stats.
func (c *Capture) Close() error {
	var errs []error
	for _, w := range c.workers {
		errs = append(errs, w.src.Close())
	}
	return errors.Join(errs...)
}
