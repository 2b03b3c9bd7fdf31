package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// isTerminal reports whether w is a character device (a terminal), where
// a progress line that redraws itself is welcome.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressEvery is how often the progress line is redrawn.
const progressEvery = 500 * time.Millisecond

// statusWriter is a terminal's stderr shared by a status line that
// redraws itself and by ordinary lines (logs, messages): an ordinary write
// first erases the status line, which the next redraw brings back below it.
type statusWriter struct {
	mu     sync.Mutex
	w      io.Writer
	status bool // a status line is on screen
}

func (s *statusWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eraseLocked()
	return s.w.Write(p)
}

// setStatus draws line as the status line.
func (s *statusWriter) setStatus(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	io.WriteString(s.w, "\r"+line+"\x1b[K")
	s.status = true
}

// erase removes the status line.
func (s *statusWriter) erase() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eraseLocked()
}

func (s *statusWriter) eraseLocked() {
	if s.status {
		io.WriteString(s.w, "\r\x1b[K")
		s.status = false
	}
}

// startProgress redraws one line on w every progressEvery while a replay
// runs: input read (and the share of it, with an estimate of the time
// left, when the size is known), packets per second, packets, flows and
// findings so far. stop erases the line, so that the summary that follows
// stands alone.
func startProgress(w *statusWriter, b *board, every time.Duration) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		p := progress{start: time.Now()}
		for {
			select {
			case <-done:
				w.erase()
				return
			case now := <-t.C:
				read, total := b.progress()
				w.setStatus(p.line(now, b.snapshotNoSinks(), read, total))
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// progress remembers the previous reading, for rates.
type progress struct {
	start       time.Time
	prevAt      time.Time
	prevPackets uint64
	rate        float64 // packets per second, smoothed
}

// line formats one progress reading.
func (p *progress) line(now time.Time, s snapshotView, read, total int64) string {
	var b strings.Builder
	b.WriteString("replay")
	if total > 0 {
		pct := min(100*float64(read)/float64(total), 100)
		fmt.Fprintf(&b, " %3.0f%% %s of %s", pct, humanBytes(read), humanBytes(total))
	} else if read > 0 {
		fmt.Fprintf(&b, " %s read", humanBytes(read))
	}
	if !p.prevAt.IsZero() && s.valid {
		if dt := now.Sub(p.prevAt).Seconds(); dt > 0 {
			r := float64(s.packets-p.prevPackets) / dt
			if p.rate == 0 {
				p.rate = r
			} else {
				p.rate = 0.7*p.rate + 0.3*r
			}
		}
	}
	p.prevAt, p.prevPackets = now, s.packets
	if s.valid {
		fmt.Fprintf(&b, "  %s pkt/s  %s packets  %s flows", humanCount(p.rate), humanCount(float64(s.packets)), humanCount(float64(s.flows)))
	}
	fmt.Fprintf(&b, "  %d findings", s.findings)
	if total > 0 && read > 0 && read < total {
		elapsed := now.Sub(p.start)
		left := time.Duration(float64(elapsed) * float64(total-read) / float64(read))
		fmt.Fprintf(&b, "  %s left", left.Round(time.Second))
	}
	return b.String()
}

// snapshotView is what the progress line shows of a snapshot.
type snapshotView struct {
	valid          bool
	packets, flows uint64
	findings       uint64
}

// snapshotNoSinks returns the progress line's view of the board without
// asking the sinks for their counters.
func (b *board) snapshotNoSinks() snapshotView {
	b.mu.Lock()
	defer b.mu.Unlock()
	return snapshotView{valid: b.s.SensorValid, packets: b.s.Sensor.Packets, flows: b.s.Sensor.Table.Flows, findings: b.s.Engine.New}
}

// humanBytes writes n bytes with a binary unit: 512 B, 3.4 MiB, 1.1 GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}

// humanCount writes a count with a decimal unit: 950, 12.3k, 4.5M.
func humanCount(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.1fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
