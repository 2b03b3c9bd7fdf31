package sinks

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Delivery tunes the buffering and retrying that every sink does. Zero
// fields take the sink's defaults.
type Delivery struct {
	// Buffer is the most messages held at once: queued, being delivered or
	// waiting for a retry. Send drops messages beyond it.
	Buffer int `yaml:"buffer"`
	// MaxBatch is the most messages delivered in one round.
	MaxBatch int `yaml:"max_batch"`
	// Linger is how long a round waits for more messages after the first
	// before delivering a batch smaller than MaxBatch. Zero delivers at
	// once; batches still form while a delivery is in flight.
	Linger time.Duration `yaml:"linger"`
	// BackoffMin and BackoffMax bound the wait before retrying a transient
	// failure; the wait doubles with each attempt, with jitter.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// MaxRetries gives up on a message after this many retries; 0 retries
	// until Close's deadline. While a batch is retried, newer messages wait
	// in the buffer (and are dropped once it is full).
	MaxRetries int `yaml:"max_retries"`
	// CloseTimeout bounds how long Close keeps delivering what is
	// buffered; Close may take one write timeout longer to cancel a
	// request in flight.
	CloseTimeout time.Duration `yaml:"close_timeout"`
	// Logger receives the sink's warnings; nil uses slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

func (d Delivery) withDefaults(def Delivery) Delivery {
	if d.Buffer == 0 {
		d.Buffer = def.Buffer
	}
	if d.MaxBatch == 0 {
		d.MaxBatch = def.MaxBatch
	}
	if d.Linger == 0 {
		d.Linger = def.Linger
	}
	if d.BackoffMin == 0 {
		d.BackoffMin = def.BackoffMin
	}
	if d.BackoffMax == 0 {
		d.BackoffMax = def.BackoffMax
	}
	if d.CloseTimeout == 0 {
		d.CloseTimeout = def.CloseTimeout
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return d
}

func (d Delivery) validate(sink string) error {
	switch {
	case d.Buffer < 1:
		return badSetting(sink, "buffer", "must be at least 1, got %d", d.Buffer)
	case d.MaxBatch < 1:
		return badSetting(sink, "max_batch", "must be at least 1, got %d", d.MaxBatch)
	case d.Linger < 0:
		return badSetting(sink, "linger", "must not be negative, got %s", d.Linger)
	case d.BackoffMin <= 0:
		return badSetting(sink, "backoff_min", "must be positive, got %s", d.BackoffMin)
	case d.BackoffMax < d.BackoffMin:
		return badSetting(sink, "backoff_max", "must be at least backoff_min (%s), got %s", d.BackoffMin, d.BackoffMax)
	case d.MaxRetries < 0:
		return badSetting(sink, "max_retries", "must not be negative, got %d", d.MaxRetries)
	case d.CloseTimeout < 0:
		return badSetting(sink, "close_timeout", "must not be negative, got %s", d.CloseTimeout)
	}
	return nil
}

// driver is the seam between the shared buffering and one destination: it
// makes one attempt at delivering a batch. It is called from one goroutine
// at a time.
type driver interface {
	deliver(ctx context.Context, batch []Message) result
	close() error
}

// result is the outcome of one delivery attempt. Messages neither retried
// nor dropped were delivered.
type result struct {
	// retry holds the messages that failed transiently, in order; err says
	// why.
	retry []Message
	err   error
	// dropped counts messages that failed permanently; permErr says why,
	// in words stable enough to log once per cause.
	dropped int
	permErr error
}

// pipe is the buffering, batching and retrying shared by every sink: a
// bounded queue in front of one worker goroutine that calls the driver.
type pipe struct {
	name   string
	d      Delivery
	drv    driver
	accept func(Topic) bool
	log    *slog.Logger

	mu     sync.RWMutex // orders Send against Close
	closed bool
	ch     chan Message

	// pending counts reserved buffer slots: messages queued, in a batch
	// being delivered or waiting for a retry.
	pending atomic.Int64
	// accepted and completed count messages queued and messages whose batch
	// finished (delivered or dropped); batches finish in queue order, so
	// Flush waits for completed to reach accepted as it saw it.
	accepted, completed atomic.Uint64

	sent, retried, dropped, permanent, errs atomic.Uint64
	lastErr                                 atomic.Pointer[errRecord]
	overflowLogged                          atomic.Bool

	// ctx is cancelled when Close's deadline passes.
	ctx    context.Context
	cancel context.CancelFunc
	kick   chan struct{} // Flush cuts lingering short
	quit   chan struct{} // closed by Close
	done   chan struct{} // closed when the worker returns

	// Worker state.
	failing     bool
	failedSince time.Time
	loggedPerm  map[string]bool
}

type errRecord struct {
	msg string
	at  time.Time
}

func newPipe(name string, d Delivery, drv driver, accept func(Topic) bool) *pipe {
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipe{
		name: name, d: d, drv: drv, accept: accept, log: d.Logger.With("sink", name),
		ch:  make(chan Message, d.Buffer),
		ctx: ctx, cancel: cancel,
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		loggedPerm: map[string]bool{},
	}
	go p.run()
	return p
}

// Send implements Sink.Send; it never blocks on I/O.
func (p *pipe) Send(_ context.Context, m Message) error {
	if p.accept != nil && !p.accept(m.Topic) {
		return nil
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	for {
		n := p.pending.Load()
		if n >= int64(p.d.Buffer) {
			p.dropped.Add(1)
			if !p.overflowLogged.Swap(true) {
				p.log.Warn("buffer full, dropping messages until delivery catches up", "buffer", p.d.Buffer)
			}
			return ErrBufferFull
		}
		if p.pending.CompareAndSwap(n, n+1) {
			break
		}
	}
	// Cannot block: the channel holds at most pending ≤ Buffer = cap.
	p.ch <- m
	p.accepted.Add(1)
	return nil
}

// Flush implements Sink.Flush.
func (p *pipe) Flush(ctx context.Context) error {
	target := p.accepted.Load()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	if p.completed.Load() >= target {
		return nil
	}
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for p.completed.Load() < target {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: flush: %d messages still buffered: %w", p.name, p.pending.Load(), ctx.Err())
		case <-p.done:
			return nil
		case <-t.C:
		}
	}
	return nil
}

// Close implements Sink.Close.
func (p *pipe) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return nil
	}
	p.closed = true
	p.mu.Unlock()

	timer := time.AfterFunc(p.d.CloseTimeout, p.cancel)
	close(p.quit)
	<-p.done
	timer.Stop()
	p.cancel()
	return p.drv.close()
}

// Stats implements Sink.Stats.
func (p *pipe) Stats() SinkStats {
	s := SinkStats{
		Name: p.name, Sent: p.sent.Load(), Retried: p.retried.Load(), Dropped: p.dropped.Load(),
		Permanent: p.permanent.Load(), Buffered: int(p.pending.Load()), Errors: p.errs.Load(),
	}
	if e := p.lastErr.Load(); e != nil {
		s.LastError, s.LastErrorTime = e.msg, e.at
	}
	return s
}

func (p *pipe) run() {
	defer close(p.done)
	batch := make([]Message, 0, p.d.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case m := <-p.ch:
			batch = append(batch, m)
		case <-p.quit:
			p.drain(batch)
			return
		}
		batch = p.fill(batch)
		p.deliverBatch(batch)
	}
}

// fill adds queued messages to batch up to MaxBatch, waiting up to Linger
// for more.
func (p *pipe) fill(batch []Message) []Message {
	for len(batch) < p.d.MaxBatch {
		select {
		case m := <-p.ch:
			batch = append(batch, m)
			continue
		default:
		}
		break
	}
	if len(batch) >= p.d.MaxBatch || p.d.Linger <= 0 {
		return batch
	}
	timer := time.NewTimer(p.d.Linger)
	defer timer.Stop()
	for len(batch) < p.d.MaxBatch {
		select {
		case m := <-p.ch:
			batch = append(batch, m)
		case <-timer.C:
			return batch
		case <-p.kick:
			return p.fillNow(batch)
		case <-p.quit:
			return batch
		}
	}
	return batch
}

func (p *pipe) fillNow(batch []Message) []Message {
	for len(batch) < p.d.MaxBatch {
		select {
		case m := <-p.ch:
			batch = append(batch, m)
		default:
			return batch
		}
	}
	return batch
}

// drain delivers everything still queued after Close, until the close
// deadline.
func (p *pipe) drain(batch []Message) {
	for {
		batch = p.fillNow(batch[:0])
		if len(batch) == 0 {
			return
		}
		p.deliverBatch(batch)
	}
}

// deliverBatch delivers batch, retrying transient failures, and settles
// every message in it as sent or dropped.
func (p *pipe) deliverBatch(batch []Message) {
	defer p.completed.Add(uint64(len(batch)))
	todo := batch
	for attempt := 1; ; attempt++ {
		if err := p.ctx.Err(); err != nil {
			p.drop(len(todo), "close timeout passed before delivery")
			return
		}
		r := p.attempt(todo)
		sent := len(todo) - len(r.retry) - r.dropped
		p.sent.Add(uint64(sent))
		p.pending.Add(-int64(sent))
		if r.dropped > 0 {
			p.permanent.Add(uint64(r.dropped))
			p.errs.Add(1)
			p.noteErr(r.permErr)
			// Bounded, in case a destination puts details in its errors.
			if key := r.permErr.Error(); !p.loggedPerm[key] && len(p.loggedPerm) < 64 {
				p.loggedPerm[key] = true
				p.log.Error("dropping messages on a permanent error (logged once per cause)", "count", r.dropped, "err", r.permErr)
			}
			p.drop(r.dropped, "")
		}
		if len(r.retry) == 0 {
			if sent > 0 {
				if p.pending.Load() < int64(p.d.Buffer/2) {
					p.overflowLogged.Store(false) // log the next overflow
				}
				if p.failing {
					p.failing = false
					p.log.Info("delivery recovered", "after", time.Since(p.failedSince).Round(time.Millisecond))
				}
			}
			return
		}
		p.errs.Add(1)
		p.noteErr(r.err)
		if !p.failing {
			p.failing, p.failedSince = true, time.Now()
			p.log.Warn("delivery failing, retrying with backoff", "messages", len(r.retry), "err", r.err)
		}
		if p.d.MaxRetries > 0 && attempt > p.d.MaxRetries {
			p.drop(len(r.retry), "retries exhausted")
			return
		}
		if !p.sleep(backoff(attempt, p.d.BackoffMin, p.d.BackoffMax)) {
			p.drop(len(r.retry), "close timeout passed before delivery")
			return
		}
		p.retried.Add(uint64(len(r.retry)))
		todo = r.retry
	}
}

// attempt calls the driver; a panic in it (a bug) drops the batch rather
// than the sensor.
func (p *pipe) attempt(batch []Message) (r result) {
	defer func() {
		if v := recover(); v != nil {
			r = result{dropped: len(batch), permErr: fmt.Errorf("%s: internal error: %v", p.name, v)}
		}
	}()
	return p.drv.deliver(p.ctx, batch)
}

func (p *pipe) drop(n int, why string) {
	if n == 0 {
		return
	}
	p.dropped.Add(uint64(n))
	p.pending.Add(-int64(n))
	if why != "" {
		p.log.Warn("dropping messages", "count", n, "reason", why)
	}
}

func (p *pipe) noteErr(err error) {
	if err != nil {
		p.lastErr.Store(&errRecord{msg: err.Error(), at: time.Now()})
	}
}

// sleep waits d, or returns false as soon as Close's deadline passes.
func (p *pipe) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.ctx.Done():
		return false
	}
}

// backoff returns the wait before retry number attempt (1, 2, ...):
// min·2^(attempt−1) capped at max, of which a random half is jitter so that
// many sensors recovering from one outage do not retry in step.
func backoff(attempt int, min, max time.Duration) time.Duration {
	d := max
	if attempt-1 < 62 {
		if x := min << (attempt - 1); x > 0 && x < max {
			d = x
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
