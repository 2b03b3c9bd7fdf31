package sinks

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowhound/flowhound/internal/testservers"
)

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// Standard output gets one value per line, only for the topics asked for.
func TestJSONLStdout(t *testing.T) {
	var out bytes.Buffer
	j, err := NewJSONL(JSONLConfig{Path: "-", Topics: []Topic{TopicFinding}, stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	msgs := findingMessages(t, makeFindings(25))
	sendAll(t, j, msgs)
	sendAll(t, j, []Message{NewFlowMessage(makeFlows(1)[0])})
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 25 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, l := range lines {
		if l != string(msgs[i].Value) {
			t.Errorf("line %d: %s", i, l)
		}
	}
	if s := j.Stats(); s.Sent != 25 || s.Name != "jsonl" {
		t.Errorf("stats %+v", s)
	}
}

// Rotation by size keeps the newest RotateKeep files besides the current
// one; together they hold a gapless tail of the stream, in order.
func TestJSONLRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "findings.jsonl")
	j, err := NewJSONL(JSONLConfig{Path: path, RotateSize: 4000, RotateKeep: 2, Delivery: Delivery{MaxBatch: 3}})
	if err != nil {
		t.Fatal(err)
	}
	msgs := findingMessages(t, makeFindings(200))
	for _, m := range msgs {
		j.Send(context.Background(), m)
		if err := j.Flush(context.Background()); err != nil { // small batches: many rotations
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("%s.3 exists: %v", path, err)
	}
	var all []string
	for _, p := range []string{path + ".2", path + ".1", path} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 4000 {
			t.Errorf("%s: %d bytes", p, st.Size())
		}
		all = append(all, readLines(t, p)...)
	}
	off := len(msgs) - len(all)
	if off <= 0 {
		t.Fatalf("kept %d lines of %d: nothing rotated away", len(all), len(msgs))
	}
	for i, l := range all {
		if l != string(msgs[off+i].Value) {
			t.Fatalf("kept line %d is not message %d", i, off+i)
		}
	}
}

// A file that exists is appended to, and its size counts toward rotation.
func TestJSONLAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.jsonl")
	os.WriteFile(path, []byte(`{"old":true}`+"\n"), 0o644)
	j, err := NewJSONL(JSONLConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	sendAll(t, j, findingMessages(t, makeFindings(2)))
	j.Close()
	if lines := readLines(t, path); len(lines) != 3 || lines[0] != `{"old":true}` {
		t.Fatalf("lines %q", lines)
	}
}

// The fan-out feeds each sink its topics; a sink whose server is away
// drops on its own without holding the others back.
func TestFanout(t *testing.T) {
	var findingsOut, allOut bytes.Buffer
	jf, _ := NewJSONL(JSONLConfig{stdout: &findingsOut})
	ja, _ := NewJSONL(JSONLConfig{stdout: &allOut})
	away, err := NewKafka(KafkaConfig{Brokers: []string{"127.0.0.1:" + itoa(testservers.FreePort(t))}, FindingsTopic: "f",
		Delivery: Delivery{Buffer: 10, CloseTimeout: 50 * time.Millisecond, Logger: newLogger(&logBuffer{})}})
	if err != nil {
		t.Fatal(err)
	}
	f := NewFanout().Add(jf, TopicFinding).Add(ja).Add(away, TopicFinding)
	findings := findingMessages(t, makeFindings(30))
	full := 0
	for _, m := range findings {
		if err := f.Send(context.Background(), m); errors.Is(err, ErrBufferFull) {
			full++
		}
	}
	for _, r := range makeFlows(5) {
		if err := f.Send(context.Background(), NewFlowMessage(r)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = f.Flush(ctx)
	if err == nil || !strings.Contains(err.Error(), "kafka") {
		t.Errorf("flush: %v", err)
	}
	f.Close()
	if n := strings.Count(findingsOut.String(), "\n"); n != 30 {
		t.Errorf("findings sink: %d lines", n)
	}
	if n := strings.Count(allOut.String(), "\n"); n != 35 {
		t.Errorf("all-topics sink: %d lines", n)
	}
	by := f.StatsBySink()
	if full != 20 || by[2].Dropped != 30 || by[0].Sent != 30 || by[1].Sent != 35 {
		t.Errorf("ErrBufferFull %d times; stats %+v", full, by)
	}
	if tot := f.Stats(); tot.Sent != 65 || tot.Dropped != 30 || !strings.HasPrefix(tot.LastError, "kafka: ") {
		t.Errorf("total %+v", tot)
	}
}

func TestPublishCounters(t *testing.T) {
	var out bytes.Buffer
	j, err := NewJSONL(JSONLConfig{stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Millisecond)
	defer cancel()
	n := uint64(0)
	PublishCounters(ctx, j, 10*time.Millisecond, func() *Counters {
		n++
		return &Counters{Sensor: "s1", Packets: n}
	})
	j.Close()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 4 || !strings.Contains(lines[len(lines)-1], fmt.Sprintf(`"packets":%d`, n)) ||
		!strings.Contains(lines[0], `"sensor":"s1"`) {
		t.Fatalf("%d lines: %s", len(lines), out.String())
	}
}
