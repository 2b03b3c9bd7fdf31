package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/sinks"
)

// fakeSink holds at most capacity messages and, every 200µs, delivers up
// to five of them — or, when failing, records a failed attempt.
type fakeSink struct {
	mu        sync.Mutex
	capacity  int
	failing   bool
	queue     []sinks.Message
	delivered []sinks.Message
	st        sinks.SinkStats
	stop      chan struct{}
	done      chan struct{}
}

func newFakeSink(capacity int, failing bool) *fakeSink {
	s := &fakeSink{capacity: capacity, failing: failing, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			s.mu.Lock()
			if s.failing {
				s.st.Errors++
				s.st.LastError, s.st.LastErrorTime = "fake: down", time.Now()
			} else {
				n := min(5, len(s.queue))
				s.delivered = append(s.delivered, s.queue[:n]...)
				s.queue = s.queue[n:]
				s.st.Sent += uint64(n)
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *fakeSink) Send(_ context.Context, m sinks.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) >= s.capacity {
		s.st.Dropped++
		return sinks.ErrBufferFull
	}
	s.queue = append(s.queue, m)
	return nil
}

func (s *fakeSink) Flush(ctx context.Context) error {
	for s.Stats().Buffered > 0 && !s.failing {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

func (s *fakeSink) Close() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	return nil
}

func (s *fakeSink) Stats() sinks.SinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Buffered = len(s.queue)
	return st
}

func testOutputs(t *testing.T, wait bool, topic sinks.Topic, s *fakeSink) *outputs {
	o := &outputs{log: slog.New(slog.NewTextHandler(io.Discard, nil)), wait: wait, all: sinks.NewFanout(),
		byKind: map[detect.Kind]uint64{}}
	o.addRoute("fake", topic, s, s.capacity)
	t.Cleanup(func() { s.Close() })
	return o
}

// A replay waits for a slow sink rather than drop; it does not wait for a
// failing one.
func TestWaitForRoom(t *testing.T) {
	const n = 300
	m := sinks.Message{Topic: sinks.TopicFlow, Value: []byte(`{}`)}
	for _, tc := range []struct {
		name          string
		wait, failing bool
		dropped       func(uint64) bool
	}{
		{"slow sink, waiting", true, false, func(d uint64) bool { return d == 0 }},
		{"slow sink, not waiting", false, false, func(d uint64) bool { return d > 0 }},
		{"failing sink, waiting", true, true, func(d uint64) bool { return d == n-10 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeSink(10, tc.failing)
			o := testOutputs(t, tc.wait, sinks.TopicFlow, s)
			start := time.Now()
			for range n {
				o.send(o.byTopic[sinks.TopicFlow], m)
			}
			if d := time.Since(start); tc.failing && d > 2*time.Second {
				t.Errorf("sending to a failing sink took %s", d)
			}
			if st := s.Stats(); !tc.dropped(st.Dropped) {
				t.Errorf("%d dropped", st.Dropped)
			}
		})
	}
}

// The sinks get a copy of each finding (detectors reuse theirs), and the
// JSON line is what json.Marshal makes of the finding.
func TestFindingCopiedForSinks(t *testing.T) {
	s := newFakeSink(100, false)
	o := testOutputs(t, false, sinks.TopicFinding, s)
	var out bytes.Buffer
	o.findings = newLineWriter(&out, 4096)
	f := &detect.Finding{UID: "F1", Kind: detect.KindLateralMovement, Score: 0.9, Severity: detect.SeverityCritical,
		SubScores: []detect.SubScore{{Name: "exec_shape", Value: 0.9}}, Src: netip.MustParseAddr("10.0.0.1"),
		Evidence: detect.Evidence{Peers: []netip.Addr{netip.MustParseAddr("10.0.0.2")}, Notes: []string{"psexec"}},
		MITRE:    []string{"T1021.002"}}
	want, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	o.Finding(f)
	f.SubScores[0].Value, f.Evidence.Peers[0], f.Evidence.Notes[0], f.MITRE[0] = 0, netip.Addr{}, "", ""
	if err := o.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSuffix(out.String(), "\n"); got != string(want) {
		t.Errorf("JSON line\n%s\nwant\n%s", got, want)
	}
	if len(s.delivered) != 1 {
		t.Fatalf("%d messages delivered", len(s.delivered))
	}
	m := s.delivered[0]
	if string(m.Value) != string(want) || string(m.Key) != "10.0.0.1" {
		t.Errorf("message %s key %s", m.Value, m.Key)
	}
	if g := m.Finding; g.SubScores[0].Value != 0.9 || g.Evidence.Peers[0] != netip.MustParseAddr("10.0.0.2") ||
		g.Evidence.Notes[0] != "psexec" || g.MITRE[0] != "T1021.002" {
		t.Errorf("the sink's finding changed with the detector's: %+v", g)
	}
}

// The first SIGINT or SIGTERM cancels the run; the second exits at once.
func TestShutdownSignal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exited := make(chan int, 1)
	var stderr syncBuffer
	stop := onShutdownSignal(&stderr, cancel, func(code int) { exited <- code })
	defer stop()

	syscall.Kill(os.Getpid(), syscall.SIGINT)
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("SIGINT did not cancel the run")
	}
	select {
	case code := <-exited:
		t.Fatalf("exited with %d at the first signal", code)
	case <-time.After(50 * time.Millisecond):
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-exited:
		if code != 128+int(syscall.SIGTERM) {
			t.Errorf("exit status %d, want %d", code, 128+int(syscall.SIGTERM))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second signal did not exit")
	}
	if s := stderr.String(); !strings.Contains(s, "interrupt: stopping") || !strings.Contains(s, "terminated: exiting without flushing") {
		t.Errorf("stderr: %q", s)
	}
}
