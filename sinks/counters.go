package sinks

import (
	"context"
	"time"
)

// PublishCounters sends the counters that read returns to s every interval,
// and once more when ctx ends, so that the last values are not lost at
// shutdown. It returns when ctx is done. read is called from this goroutine
// only; it must return a fresh Counters each time (the sink keeps it), or
// nil when there is nothing to report yet.
func PublishCounters(ctx context.Context, s Sink, interval time.Duration, read func() *Counters) {
	t := time.NewTicker(interval)
	defer t.Stop()
	send := func() {
		c := read()
		if c == nil {
			return // nothing to report yet
		}
		if c.Time.IsZero() {
			c.Time = time.Now()
		}
		if m, err := NewCountersMessage(c); err == nil {
			s.Send(context.WithoutCancel(ctx), m) // a full buffer is counted by the sink
		}
	}
	for {
		select {
		case <-ctx.Done():
			send()
			return
		case <-t.C:
			send()
		}
	}
}
