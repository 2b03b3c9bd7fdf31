package sinks

import (
	"context"
	"errors"
	"sync"
)

// Fanout sends every message to each of its sinks that takes the message's
// topic. It is itself a Sink; like its sinks, Send never blocks on I/O, and
// a slow sink does not hold the others back.
type Fanout struct {
	routes []route
}

type route struct {
	sink   Sink
	topics func(Topic) bool // nil: every topic
}

var _ Sink = (*Fanout)(nil)

// NewFanout returns an empty fan-out; add sinks with Add before sending.
func NewFanout() *Fanout { return &Fanout{} }

// Add routes the given topics (every topic if none) to s. Add is not safe
// to call concurrently with Send.
func (f *Fanout) Add(s Sink, topics ...Topic) *Fanout {
	f.routes = append(f.routes, route{sink: s, topics: topicFilter(topics)})
	return f
}

// Sinks returns the sinks in the order they were added.
func (f *Fanout) Sinks() []Sink {
	out := make([]Sink, len(f.routes))
	for i, r := range f.routes {
		out[i] = r.sink
	}
	return out
}

// Send gives m to every sink that takes its topic. The sinks share m's
// byte slices, which none of them modifies. The error joins the sinks'
// errors (ErrBufferFull when one dropped m).
func (f *Fanout) Send(ctx context.Context, m Message) error {
	var errs []error
	for _, r := range f.routes {
		if r.topics != nil && !r.topics(m.Topic) {
			continue
		}
		if err := r.sink.Send(ctx, m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Flush flushes every sink concurrently, so one slow sink does not eat the
// others' share of the deadline.
func (f *Fanout) Flush(ctx context.Context) error {
	return f.each(func(s Sink) error { return s.Flush(ctx) })
}

// Close closes every sink concurrently.
func (f *Fanout) Close() error {
	return f.each(Sink.Close)
}

func (f *Fanout) each(fn func(Sink) error) error {
	errs := make([]error, len(f.routes))
	var wg sync.WaitGroup
	for i, r := range f.routes {
		wg.Go(func() { errs[i] = fn(r.sink) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Stats returns the sums over every sink, named "fanout"; LastError is the
// most recent of the sinks' last errors (each names its sink). Use
// StatsBySink for each sink.
func (f *Fanout) Stats() SinkStats {
	total := SinkStats{Name: "fanout"}
	for _, s := range f.StatsBySink() {
		total.Sent += s.Sent
		total.Retried += s.Retried
		total.Dropped += s.Dropped
		total.Permanent += s.Permanent
		total.Buffered += s.Buffered
		total.Errors += s.Errors
		if s.LastErrorTime.After(total.LastErrorTime) {
			total.LastError, total.LastErrorTime = s.LastError, s.LastErrorTime
		}
	}
	return total
}

// StatsBySink returns each sink's stats, in the order the sinks were added.
func (f *Fanout) StatsBySink() []SinkStats {
	out := make([]SinkStats, len(f.routes))
	for i, r := range f.routes {
		out[i] = r.sink.Stats()
	}
	return out
}
