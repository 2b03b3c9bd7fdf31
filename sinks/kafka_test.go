package sinks

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/internal/testservers"
)

func newTestKafka(t testing.TB, cfg KafkaConfig) *Kafka {
	t.Helper()
	if cfg.Delivery.Logger == nil {
		cfg.Delivery.Logger = newLogger(&logBuffer{})
	}
	k, err := NewKafka(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// Findings and flows go to their topics, each once, keyed and headed right,
// and read back with a consumer group (and with kcat when installed).
func TestKafkaRoundTrip(t *testing.T) {
	brokers := testservers.SharedKafka(t)
	ft, flt := testservers.UniqueName("flowhound.findings"), testservers.UniqueName("flowhound.flows")
	testservers.CreateTopic(t, brokers, ft, 3)
	testservers.CreateTopic(t, brokers, flt, 3)
	k := newTestKafka(t, KafkaConfig{Brokers: brokers, FindingsTopic: ft, FlowsTopic: flt})

	findings := makeFindings(200)
	flows := makeFlows(300)
	sendAll(t, k, findingMessages(t, findings))
	for _, r := range flows {
		if err := k.Send(context.Background(), NewFlowMessage(r)); err != nil {
			t.Fatal(err)
		}
	}
	counters, _ := NewCountersMessage(&Counters{Sensor: "s"})
	k.Send(context.Background(), counters) // no counters topic: ignored
	flush(t, k, 20*time.Second)
	if s := k.Stats(); s.Sent != 500 || s.Dropped != 0 || s.Buffered != 0 {
		t.Fatalf("stats %+v, want 500 sent", s)
	}

	byUID := map[string]*detect.Finding{}
	for _, f := range findings {
		byUID[f.UID] = f
	}
	seen := map[string]int{}
	keyPartition := map[string]int{}
	for _, m := range testservers.Consume(t, brokers, ft, len(findings)) {
		var got detect.Finding
		if err := got.UnmarshalJSON(m.Value); err != nil {
			t.Fatalf("value %s: %v", m.Value, err)
		}
		seen[got.UID]++
		want := byUID[got.UID]
		if want == nil {
			t.Fatalf("unexpected finding %s", got.UID)
		}
		wantJSON, _ := want.MarshalJSON()
		if !bytes.Equal(m.Value, wantJSON) {
			t.Errorf("%s: value\n%s\nwant\n%s", got.UID, m.Value, wantJSON)
		}
		if string(m.Key) != want.Src.String() {
			t.Errorf("%s: key %q, want source host %s", got.UID, m.Key, want.Src)
		}
		if h := testservers.Header(m, "schema"); h != "flowhound.finding.v1" {
			t.Errorf("%s: schema header %q", got.UID, h)
		}
		if p, ok := keyPartition[string(m.Key)]; ok && p != m.Partition {
			t.Errorf("key %s in partitions %d and %d", m.Key, p, m.Partition)
		}
		keyPartition[string(m.Key)] = m.Partition
	}
	for uid := range byUID {
		if seen[uid] != 1 {
			t.Errorf("finding %s read %d times, want once", uid, seen[uid])
		}
	}
	if len(keyPartition) < 2 {
		t.Errorf("all findings in one partition")
	}

	flowSeen := map[string]int{}
	pairPartition := map[string]int{}
	for _, m := range testservers.Consume(t, brokers, flt, len(flows)) {
		if h := testservers.Header(m, "schema"); h != "flowhound.flow.v1" {
			t.Errorf("flow schema header %q", h)
		}
		var r struct {
			UID   string `json:"uid"`
			OrigH string `json:"orig_h"`
			RespH string `json:"resp_h"`
		}
		if err := jsonUnmarshal(m.Value, &r); err != nil {
			t.Fatal(err)
		}
		flowSeen[r.UID]++
		a, b := r.OrigH, r.RespH
		if b < a { // the test's addresses sort the same as strings and as addresses
			a, b = b, a
		}
		if string(m.Key) != a+","+b {
			t.Errorf("flow %s: key %q, want %q", r.UID, m.Key, a+","+b)
		}
		if p, ok := pairPartition[string(m.Key)]; ok && p != m.Partition {
			t.Errorf("pair %s in partitions %d and %d", m.Key, p, m.Partition)
		}
		pairPartition[string(m.Key)] = m.Partition
	}
	if len(flowSeen) != len(flows) {
		t.Errorf("read %d distinct flows, want %d", len(flowSeen), len(flows))
	}

	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Log("kcat not installed (Debian package kcat); skipping the kcat read-back")
		return
	}
	out, err := exec.Command(kcat, "-b", strings.Join(brokers, ","), "-C", "-t", ft, "-e", "-q",
		"-f", `%k\t%h\t%s\n`).Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	kseen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		key, rest, _ := strings.Cut(sc.Text(), "\t")
		hdr, val, _ := strings.Cut(rest, "\t")
		var f detect.Finding
		if err := f.UnmarshalJSON([]byte(val)); err != nil {
			t.Fatalf("kcat line %q: %v", sc.Text(), err)
		}
		if hdr != "schema=flowhound.finding.v1" || key != byUID[f.UID].Src.String() {
			t.Errorf("kcat: %s: key %q header %q", f.UID, key, hdr)
		}
		kseen[f.UID]++
	}
	if len(kseen) != len(findings) {
		t.Errorf("kcat read %d distinct findings, want %d", len(kseen), len(findings))
	}
	for uid, n := range kseen {
		if n != 1 {
			t.Errorf("kcat read %s %d times", uid, n)
		}
	}
}

// Every codec is accepted by the broker and read back.
func TestKafkaCompression(t *testing.T) {
	brokers := testservers.SharedKafka(t)
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			topic := testservers.UniqueName("flowhound.flows." + codec)
			testservers.CreateTopic(t, brokers, topic, 2)
			k := newTestKafka(t, KafkaConfig{Brokers: brokers, FindingsTopic: "unused", FlowsTopic: topic, Compression: codec})
			for _, r := range makeFlows(100) {
				k.Send(context.Background(), NewFlowMessage(r))
			}
			flush(t, k, 10*time.Second)
			if got := testservers.Consume(t, brokers, topic, 100); len(got) != 100 {
				t.Fatalf("read %d", len(got))
			}
		})
	}
}

// A three-broker cluster: partitions are led by different brokers.
func TestKafkaCluster(t *testing.T) {
	b := testservers.StartKafka(t, 3, "-partitions", "6", "-topics", "flowhound.findings.v1")
	k := newTestKafka(t, KafkaConfig{Brokers: b.Addrs(), FindingsTopic: "flowhound.findings.v1"})
	sendAll(t, k, findingMessages(t, makeFindings(300)))
	flush(t, k, 20*time.Second)
	got := testservers.Consume(t, b.Addrs()[1:2], "flowhound.findings.v1", 300)
	parts := map[int]bool{}
	for _, m := range got {
		parts[m.Partition] = true
	}
	if len(parts) < 4 {
		t.Errorf("findings in %d partitions of 6", len(parts))
	}
}

// The broker crashes (SIGKILL) while findings stream in and comes back on
// the same port; every finding is delivered (duplicates allowed, losses
// not). The broker persists its log (-data-dir), so everything any
// incarnation acknowledged is read back from the last one.
func TestKafkaBrokerRestart(t *testing.T) {
	const topic = "flowhound.findings.v1"
	b := testservers.StartKafka(t, 1, "-partitions", "3", "-topics", topic, "-data-dir", t.TempDir())
	var logs logBuffer
	k := newTestKafka(t, KafkaConfig{Brokers: b.Addrs(), FindingsTopic: topic, DialTimeout: time.Second,
		Delivery: Delivery{Linger: time.Millisecond, MaxBatch: 50, BackoffMin: 20 * time.Millisecond,
			BackoffMax: 200 * time.Millisecond, Logger: newLogger(&logs)}})

	findings := makeFindings(3000)
	msgs := findingMessages(t, findings)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i, m := range msgs {
			if err := k.Send(context.Background(), m); err != nil {
				t.Errorf("send %d: %v", i, err)
			}
			if i%10 == 0 {
				time.Sleep(time.Millisecond) // a stream, not a burst
			}
		}
	})
	// Crash twice, mid-stream.
	for range 2 {
		waitFor(t, 10*time.Second, func() bool { return k.Stats().Sent > 0 })
		time.Sleep(40 * time.Millisecond)
		b.Kill()
		waitFor(t, 10*time.Second, func() bool { return k.Stats().Errors > 0 })
		time.Sleep(150 * time.Millisecond)
		b.Start()
	}
	wg.Wait()
	flush(t, k, 30*time.Second)
	s := k.Stats()
	if s.Dropped != 0 || s.Sent != uint64(len(findings)) || s.Errors == 0 || s.Retried == 0 {
		t.Fatalf("stats %+v: want %d sent, retries, nothing dropped", s, len(findings))
	}
	if logs.count("delivery failing") == 0 || logs.count("delivery recovered") == 0 {
		t.Errorf("logs lack failing/recovered:\n%s", logs.String())
	}

	// Read everything back, duplicates included.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: b.Addrs(), GroupID: testservers.UniqueName("restart"), Topic: topic,
		StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	seen := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for len(seen) < len(findings) {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read back %d distinct findings of %d: %v", len(seen), len(findings), err)
		}
		var f detect.Finding
		if err := f.UnmarshalJSON(m.Value); err != nil {
			t.Fatal(err)
		}
		seen[f.UID]++
	}
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	t.Logf("all %d findings delivered across two broker crashes; %d duplicates, %d retries", len(findings), dups, s.Retried)
}

// With no broker at all the sink neither blocks nor grows: it buffers up to
// its limit, counts the rest as dropped, and delivers the buffer once a
// broker appears.
func TestKafkaUnreachable(t *testing.T) {
	t.Parallel()
	const topic = "flowhound.findings.v1"
	port := testservers.FreePort(t)
	addr := "127.0.0.1:" + itoa(port)
	k := newTestKafka(t, KafkaConfig{Brokers: []string{addr}, FindingsTopic: topic, DialTimeout: 500 * time.Millisecond,
		Delivery: Delivery{Buffer: 100, BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond}})
	msgs := findingMessages(t, makeFindings(150))
	start := time.Now()
	full := 0
	for _, m := range msgs {
		if err := k.Send(context.Background(), m); errors.Is(err, ErrBufferFull) {
			full++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > time.Second { // dialing alone could take 500ms
		t.Errorf("150 sends took %s with the broker away", d)
	}
	waitFor(t, 5*time.Second, func() bool { return k.Stats().Errors > 0 })
	s := k.Stats()
	if full != 50 || s.Dropped != 50 || s.Buffered != 100 || s.Sent != 0 || !strings.Contains(s.LastError, "connect") {
		t.Fatalf("ErrBufferFull %d times, stats %+v: want 50 dropped, 100 buffered, a connection error", full, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	err := k.Flush(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("flush with no broker: %v", err)
	}

	// A broker appears on the address: the buffer drains.
	b := testservers.StartKafkaOn(t, []int{port}, "-topics", topic)
	flush(t, k, 20*time.Second)
	if s := k.Stats(); s.Sent != 100 || s.Dropped != 50 || s.Buffered != 0 {
		t.Fatalf("after the broker came: %+v", s)
	}
	testservers.Consume(t, b.Addrs(), topic, 100)
}

// Close with the broker away gives up after its timeout and counts what it
// could not deliver.
func TestKafkaCloseDeadline(t *testing.T) {
	k, err := NewKafka(KafkaConfig{Brokers: []string{"127.0.0.1:" + itoa(testservers.FreePort(t))}, FindingsTopic: "x",
		Delivery: Delivery{CloseTimeout: 300 * time.Millisecond, BackoffMin: 10 * time.Millisecond, Logger: newLogger(&logBuffer{})}})
	if err != nil {
		t.Fatal(err)
	}
	sendAll(t, k, findingMessages(t, makeFindings(20)))
	start := time.Now()
	k.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("close took %s", d)
	}
	if s := k.Stats(); s.Dropped != 20 || s.Buffered != 0 {
		t.Errorf("stats after close %+v", s)
	}
	if err := k.Send(context.Background(), findingMessages(t, makeFindings(1))[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("send after close: %v", err)
	}
}

func waitFor(t testing.TB, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The broker restarts empty (kfake without -data-dir keeps nothing): what
// the first incarnation acknowledged is read from it, what was sent while it
// was down or after is read from the second.
func TestKafkaBrokerRestartEmpty(t *testing.T) {
	const topic = "flowhound.findings.v1"
	b := testservers.StartKafka(t, 1, "-partitions", "3", "-topics", topic)
	k := newTestKafka(t, KafkaConfig{Brokers: b.Addrs(), FindingsTopic: topic, DialTimeout: time.Second,
		Delivery: Delivery{BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond}})
	findings := findingMessages(t, makeFindings(1000))
	sendAll(t, k, findings[:400])
	flush(t, k, 10*time.Second)
	first := testservers.Consume(t, b.Addrs(), topic, 400)

	b.Kill()
	sendAll(t, k, findings[400:])
	waitFor(t, 10*time.Second, func() bool { return k.Stats().Errors > 0 })
	b.Start()
	flush(t, k, 30*time.Second)
	second := testservers.Consume(t, b.Addrs(), topic, 600)

	seen := map[string]bool{}
	for _, m := range append(first, second...) {
		var f detect.Finding
		if err := f.UnmarshalJSON(m.Value); err != nil {
			t.Fatal(err)
		}
		seen[f.UID] = true
	}
	if s := k.Stats(); len(seen) != 1000 || s.Sent != 1000 || s.Dropped != 0 {
		t.Fatalf("%d distinct findings read, stats %+v", len(seen), s)
	}
}
