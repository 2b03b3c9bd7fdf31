package sinks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
)

var testEpoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// makeFindings returns n distinct findings with uids F000000, F000001, ...
// from 7×5 source hosts.
func makeFindings(n int) []*detect.Finding {
	out := make([]*detect.Finding, n)
	for i := range n {
		score := float64(i%100) / 100
		status := detect.StatusNew
		if i%4 == 3 {
			status = detect.StatusUpdate
		}
		t := testEpoch.Add(time.Duration(i) * time.Second)
		out[i] = &detect.Finding{
			UID: fmt.Sprintf("F%06d", i), Time: t, Kind: detect.Kinds[i%len(detect.Kinds)], Status: status,
			Score: score, SubScores: []detect.SubScore{{Name: "interval", Value: 0.5}, {Name: "size", Value: 0.25}},
			Severity: detect.SeverityFor(score),
			Src:      netip.AddrFrom4([4]byte{10, 0, byte(i % 7), byte(1 + i%5)}),
			Dst:      netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 200)}),
			DstPort:  443, Proto: "tcp", FQDN: fmt.Sprintf("c2-%d.example.com", i%3),
			Evidence:  detect.Evidence{Connections: uint64(10 + i), BytesOut: uint64(1000 * i), BytesIn: 500},
			MITRE:     []string{"T1071.001"},
			FirstSeen: t.Add(-time.Hour), LastSeen: t, Sensor: "sensor-1",
		}
	}
	return out
}

// makeFlows returns n flow records between 20 host pairs, alternating
// directions so that both orders of a pair occur.
func makeFlows(n int) []*flow.Record {
	out := make([]*flow.Record, n)
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, 1, 0, byte(1 + i%20)})
		b := netip.AddrFrom4([4]byte{172, 16, 0, byte(1 + i%20)})
		if i%2 == 1 {
			a, b = b, a
		}
		t := testEpoch.Add(time.Duration(i) * time.Millisecond)
		out[i] = &flow.Record{
			Start: t, End: t.Add(1500 * time.Millisecond), UID: fmt.Sprintf("C%08d", i),
			CommunityID: "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
			OrigAddr:    a, OrigPort: uint16(40000 + i%20000), RespAddr: b, RespPort: 443, Proto: flow.ProtoTCP,
			Service: "tls", OrigBytes: 517, RespBytes: 4520, OrigPkts: 9, RespPkts: 8, OrigIPBytes: 1001,
			RespIPBytes: 4952, OrigFrameBytes: 1127, RespFrameBytes: 5064, ConnState: "SF", History: "ShADadfF",
			LocalOrig: true, Final: true, App: &flow.App{DNSRcode: -1, TLSSNI: "www.example.com"},
		}
	}
	return out
}

func findingMessages(t testing.TB, fs []*detect.Finding) []Message {
	t.Helper()
	out := make([]Message, len(fs))
	for i, f := range fs {
		m, err := NewFindingMessage(f)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = m
	}
	return out
}

func sendAll(t testing.TB, s Sink, ms []Message) {
	t.Helper()
	for _, m := range ms {
		if err := s.Send(context.Background(), m); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
}

func flush(t testing.TB, s Sink, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("flush: %v (stats %+v)", err, s.Stats())
	}
}

// logBuffer collects a sink's log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) count(substr string) int { return strings.Count(l.String(), substr) }

func newLogger(l *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func itoa(n int) string { return strconv.Itoa(n) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func sprintV(v any) string { return fmt.Sprintf("%v %+v", v, v) }
