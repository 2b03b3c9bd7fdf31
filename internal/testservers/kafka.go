package testservers

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// EnvKafka names the variable that points SharedKafka at running brokers
// (host:port, comma-separated).
const EnvKafka = "FLOWHOUND_TEST_KAFKA"

// Kafka is one kafkabroker process, serving one or more brokers of a
// cluster on loopback ports. Its methods are for the test goroutine.
type Kafka struct {
	t     testing.TB
	bin   string
	args  []string
	ports []int
	proc  *process // nil while stopped
}

// StartKafka starts a kafkabroker with n brokers on free ports, passing it
// the extra flags; it stops when the test ends.
func StartKafka(t testing.TB, n int, extra ...string) *Kafka {
	t.Helper()
	bin := Binary(t, "kafkabroker")
	ports := make([]int, n)
	for i := range ports {
		ports[i] = FreePort(t)
	}
	return startKafka(t, bin, ports, extra)
}

// StartKafkaOn is StartKafka on the given ports, for a test that has
// already pointed a client at them.
func StartKafkaOn(t testing.TB, ports []int, extra ...string) *Kafka {
	t.Helper()
	return startKafka(t, Binary(t, "kafkabroker"), ports, extra)
}

func startKafka(t testing.TB, bin string, ports []int, extra []string) *Kafka {
	t.Helper()
	k := &Kafka{t: t, bin: bin, ports: ports, args: extra}
	t.Cleanup(k.Stop)
	k.Start()
	return k
}

// SharedKafka returns the brokers of FLOWHOUND_TEST_KAFKA when it is set,
// and otherwise those of a single broker (three partitions a topic) started
// for the test. Tests sharing a server use unique topic names.
func SharedKafka(t testing.TB) []string {
	t.Helper()
	if v := os.Getenv(EnvKafka); v != "" {
		return strings.Split(v, ",")
	}
	return StartKafka(t, 1, "-partitions", "3").Addrs()
}

// Addrs returns the brokers' host:port addresses.
func (k *Kafka) Addrs() []string {
	out := make([]string, len(k.ports))
	for i, p := range k.ports {
		out[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	return out
}

// Start starts the broker again after Stop or Kill, on the same ports; it
// returns once every broker listens, and fails the test if they do not.
func (k *Kafka) Start() {
	k.t.Helper()
	ps := make([]string, len(k.ports))
	for i, p := range k.ports {
		ps[i] = strconv.Itoa(p)
	}
	args := append([]string{"-ports", strings.Join(ps, ",")}, k.args...)
	// A port was free a moment ago, or is the previous incarnation's: retry
	// for a while if it is still held.
	var lastErr error
	for range 50 {
		cmd := exec.Command(k.bin, args...)
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = orphanGuard()
		out, err := cmd.StdoutPipe()
		if err != nil {
			k.t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			k.t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		listening := 0
		for listening < len(k.ports) && sc.Scan() {
			if strings.HasPrefix(sc.Text(), "listening ") {
				listening++
			}
		}
		if listening == len(k.ports) {
			go io.Copy(io.Discard, out)
			k.proc = watch(cmd)
			return
		}
		lastErr = cmd.Wait()
		time.Sleep(100 * time.Millisecond)
	}
	k.t.Fatalf("kafkabroker %v did not start: %v", args, lastErr)
}

// Stop stops the broker gracefully (SIGTERM).
func (k *Kafka) Stop() {
	if k.proc != nil {
		k.proc.stop()
		k.proc = nil
	}
}

// Kill stops the broker at once (SIGKILL), as a crash would.
func (k *Kafka) Kill() {
	if k.proc != nil {
		k.proc.kill()
		k.proc = nil
	}
}

// CreateTopic creates topic with the given partitions, replicated once.
func CreateTopic(t testing.TB, brokers []string, topic string, partitions int) {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	resp, err := c.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1},
	}})
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// Consume reads want messages from topic, from its start, in a fresh
// consumer group, then makes sure no more arrive for half a second.
func Consume(t testing.TB, brokers []string, topic string, want int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: brokers, GroupID: UniqueName("flowhound-test"), Topic: topic,
		StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond, MinBytes: 1, MaxBytes: 16 << 20,
		HeartbeatInterval: 500 * time.Millisecond, CommitInterval: 100 * time.Millisecond,
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []kafka.Message
	for len(out) < want {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("consumed %d of %d messages from %s: %v", len(out), want, topic, err)
		}
		out = append(out, m)
	}
	extra, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	if m, err := r.FetchMessage(extra); err == nil {
		t.Errorf("%s: more than the %d messages expected, e.g. key %s", topic, want, m.Key)
	}
	return out
}

// Header returns the value of m's header key, or "".
func Header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
