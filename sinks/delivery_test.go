package sinks

// Unit tests of the shared buffering and retrying, with a scripted driver.
// Every sink is also tested against its real server (kafka_test.go,
// influx_test.go) or file (jsonl_test.go).

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeDriver fails the first failN attempts transiently, drops messages
// whose Value is "bad" permanently, and can be paused.
type fakeDriver struct {
	mu        sync.Mutex
	failN     int
	attempts  int
	delivered []string
	gate      chan struct{} // when non-nil, each attempt waits for a token
	closed    atomic.Bool
}

func (d *fakeDriver) deliver(ctx context.Context, batch []Message) result {
	if d.gate != nil {
		select {
		case <-d.gate:
		case <-ctx.Done():
			return result{retry: batch, err: ctx.Err()}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.attempts++
	if d.attempts <= d.failN {
		return result{retry: batch, err: errors.New("connection refused")}
	}
	var r result
	for _, m := range batch {
		if string(m.Value) == "bad" {
			r.dropped++
			r.permErr = errors.New("message too large")
			continue
		}
		d.delivered = append(d.delivered, string(m.Value))
	}
	return r
}

func (d *fakeDriver) close() error { d.closed.Store(true); return nil }

func (d *fakeDriver) got() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.delivered...)
}

func testDelivery(logs *logBuffer) Delivery {
	return Delivery{Buffer: 1000, MaxBatch: 100, BackoffMin: time.Millisecond, BackoffMax: 4 * time.Millisecond,
		CloseTimeout: time.Second, Logger: newLogger(logs)}
}

func msg(v string) Message { return Message{Topic: TopicFinding, Value: []byte(v)} }

func TestBackoff(t *testing.T) {
	min, max := 100*time.Millisecond, 2*time.Second
	for attempt := 1; attempt <= 70; attempt++ {
		want := max
		if attempt <= 5 {
			want = min << (attempt - 1)
		}
		for range 50 {
			d := backoff(attempt, min, max)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: %s, want in [%s, %s]", attempt, d, want/2, want)
			}
		}
	}
}

func TestRetryUntilDelivered(t *testing.T) {
	var logs logBuffer
	d := &fakeDriver{failN: 3}
	p := newPipe("fake", testDelivery(&logs), d, nil)
	defer p.Close()
	for i := range 10 {
		if err := p.Send(context.Background(), msg(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, p, 5*time.Second)
	s := p.Stats()
	if len(d.got()) != 10 || s.Sent != 10 || s.Dropped != 0 || s.Errors != 3 || s.Retried < 10 || s.LastError != "connection refused" {
		t.Fatalf("stats %+v, delivered %v", s, d.got())
	}
	if logs.count("delivery failing") != 1 || logs.count("delivery recovered") != 1 {
		t.Errorf("logs:\n%s", logs.String())
	}
}

func TestMaxRetries(t *testing.T) {
	d := &fakeDriver{failN: 1 << 30}
	cfg := testDelivery(&logBuffer{})
	cfg.MaxRetries = 2
	p := newPipe("fake", cfg, d, nil)
	defer p.Close()
	for range 5 {
		p.Send(context.Background(), msg("x"))
	}
	flush(t, p, 5*time.Second)
	// Three attempts per batch; the worker may have taken the five in one
	// batch or more.
	if s := p.Stats(); s.Dropped != 5 || s.Sent != 0 || s.Buffered != 0 || d.attempts == 0 || d.attempts%3 != 0 {
		t.Fatalf("stats %+v after %d attempts", s, d.attempts)
	}
}

func TestPermanentDropLoggedOnce(t *testing.T) {
	var logs logBuffer
	d := &fakeDriver{}
	cfg := testDelivery(&logs)
	cfg.MaxBatch = 1
	p := newPipe("fake", cfg, d, nil)
	defer p.Close()
	for _, v := range []string{"a", "bad", "b", "bad", "c"} {
		p.Send(context.Background(), msg(v))
	}
	flush(t, p, 5*time.Second)
	if s := p.Stats(); s.Sent != 3 || s.Dropped != 2 || s.Permanent != 2 {
		t.Fatalf("stats %+v", s)
	}
	if n := logs.count("permanent error"); n != 1 {
		t.Errorf("logged %d times", n)
	}
}

// Send never blocks: with delivery stuck, the buffer fills and the rest is
// dropped and counted at once.
func TestBufferFullDrops(t *testing.T) {
	d := &fakeDriver{gate: make(chan struct{})}
	cfg := testDelivery(&logBuffer{})
	cfg.Buffer = 50
	p := newPipe("fake", cfg, d, nil)
	defer p.Close()
	start := time.Now()
	full := 0
	for range 80 {
		if errors.Is(p.Send(context.Background(), msg("m")), ErrBufferFull) {
			full++
		}
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Errorf("sends blocked")
	}
	if s := p.Stats(); full != 30 || s.Dropped != 30 || s.Buffered != 50 {
		t.Fatalf("ErrBufferFull %d, stats %+v", full, s)
	}
	close(d.gate)
	flush(t, p, 5*time.Second)
	if s := p.Stats(); s.Sent != 50 || s.Buffered != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// Flush waits for what was sent before it, not for what comes after.
func TestFlushDeadline(t *testing.T) {
	d := &fakeDriver{gate: make(chan struct{})}
	p := newPipe("fake", testDelivery(&logBuffer{}), d, nil)
	defer p.Close()
	p.Send(context.Background(), msg("a"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := p.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("flush: %v", err)
	}
	d.gate <- struct{}{}
	flush(t, p, time.Second)
}

// Close delivers what is buffered, then refuses sends.
func TestCloseDelivers(t *testing.T) {
	d := &fakeDriver{}
	p := newPipe("fake", testDelivery(&logBuffer{}), d, nil)
	for i := range 500 {
		p.Send(context.Background(), msg(fmt.Sprint(i)))
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := d.got(); len(got) != 500 || got[0] != "0" || got[499] != "499" || !d.closed.Load() {
		t.Fatalf("delivered %d, closed %v", len(got), d.closed.Load())
	}
	if err := p.Send(context.Background(), msg("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
	p.Close() // twice is fine
}

// A driver that panics loses its batch, not the process.
func TestDriverPanic(t *testing.T) {
	p := newPipe("fake", testDelivery(&logBuffer{}), panicDriver{}, nil)
	defer p.Close()
	p.Send(context.Background(), msg("x"))
	flush(t, p, time.Second)
	if s := p.Stats(); s.Permanent != 1 {
		t.Fatalf("stats %+v", s)
	}
}

type panicDriver struct{}

func (panicDriver) deliver(context.Context, []Message) result { panic("boom") }
func (panicDriver) close() error                              { return nil }

func TestTopicFilter(t *testing.T) {
	d := &fakeDriver{}
	p := newPipe("fake", testDelivery(&logBuffer{}), d, topicFilter([]Topic{TopicCounters}))
	defer p.Close()
	p.Send(context.Background(), msg("finding"))
	p.Send(context.Background(), Message{Topic: TopicCounters, Value: []byte("counters")})
	flush(t, p, time.Second)
	if got := d.got(); len(got) != 1 || got[0] != "counters" {
		t.Fatalf("delivered %v", got)
	}
}
