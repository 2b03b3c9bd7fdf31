package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/internal/testservers"
)

// syncBuffer is a bytes.Buffer that the sinks' loggers and the command may
// write at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cleanEnv hides the FLOWHOUND_ variables of the environment from the test
// (`replay -config` reads them, and rejects the ones it does not know, such
// as FLOWHOUND_TEST_KAFKA of scripts/devservices.sh).
func cleanEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "FLOWHOUND_") {
			os.Unsetenv(k)
			t.Cleanup(func() { os.Setenv(k, v) })
		}
	}
}

// sharedPcap returns the path of a capture of ../shared/pcaps, or "" when it
// is not there.
func sharedPcap(t *testing.T, name string) string {
	p := filepath.Join(testservers.RepoRoot(t), "..", "shared", "pcaps", name)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// synthScenario writes a labelled scenario (seed 1) and returns its pcap.
func synthScenario(t *testing.T, profile string) string {
	t.Helper()
	dir := t.TempDir()
	var stderr bytes.Buffer
	if err := run([]string{"synth", "scenario", "--profile", profile, "--seed", "1", "-o", dir}, nil, &stderr, &stderr); err != nil {
		t.Fatalf("synth scenario: %v\n%s", err, stderr.String())
	}
	return filepath.Join(dir, "scenario.pcap")
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "flowhound.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func lines(b []byte) [][]byte {
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	return out
}

// sinkLine returns the sent and dropped counts of one sink in the summary.
func sinkLine(t *testing.T, summary, name string) (sent, dropped int) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^sink +` + regexp.QuoteMeta(name) + `: (\d+) sent, \d+ retried, (\d+) dropped`).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("no summary line for sink %q in:\n%s", name, summary)
	}
	sent, _ = strconv.Atoi(m[1])
	dropped, _ = strconv.Atoi(m[2])
	return sent, dropped
}

func summaryPackets(t *testing.T, summary string) int64 {
	m := regexp.MustCompile(`(?m)^packets +(\d+) `).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("no packets line in:\n%s", summary)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// Replays write findings to Kafka and InfluxDB as well as to the JSON
// output: the findings topic holds exactly the JSON lines, each once, keyed
// by source host; the flows topic exactly the flow records; InfluxDB a
// point per finding and the sensor's counters. Kafka's buffer is smaller
// than the capture's flows, so the replay must wait for room rather than
// drop.
func TestReplayToKafkaAndInfluxDB(t *testing.T) {
	cleanEnv(t)
	brokers := testservers.StartKafka(t, 1, "-partitions", "3").Addrs()
	influx := testservers.StartInflux(t).URL()

	type capture struct{ name, path string }
	var captures []capture
	if p := sharedPcap(t, "LM_psexec_smb_dcerpc_epm_svcctl.pcapng"); p != "" {
		captures = append(captures, capture{"psexec", p})
	} else {
		t.Log("../shared/pcaps/LM_psexec_smb_dcerpc_epm_svcctl.pcapng is absent; replaying the synthetic scenario only")
	}
	captures = append(captures, capture{"synth_lateral", synthScenario(t, "lateral")})

	for _, c := range captures {
		t.Run(c.name, func(t *testing.T) {
			ft, flt := "replay."+c.name+".findings", "replay."+c.name+".flows"
			testservers.CreateTopic(t, brokers, ft, 3)
			testservers.CreateTopic(t, brokers, flt, 3)
			db := "replay_" + c.name
			testservers.InfluxQL(t, influx, "CREATE DATABASE "+db)
			cfg := writeConfig(t, fmt.Sprintf(`sensor:
  id: test-sensor
sinks:
  kafka:
    brokers: [%s]
    findings_topic: %s
    flows_topic: %s
    batch_size: 100
    batch_timeout: 10ms
    buffer: 500
  influxdb:
    url: %s
    bucket: %s/autogen
    interval: 10ms
`, strings.Join(brokers, ", "), ft, flt, influx, db))
			flowsFile := filepath.Join(t.TempDir(), "flows.jsonl")
			var stdout bytes.Buffer
			var stderr syncBuffer
			if err := run([]string{"replay", "-config", cfg, "-flows", flowsFile, c.path}, nil, &stdout, &stderr); err != nil {
				t.Fatalf("replay: %v\n%s", err, stderr.String())
			}
			summary := stderr.String()
			t.Logf("summary:\n%s", summary)

			findings := lines(stdout.Bytes())
			if len(findings) == 0 {
				t.Fatal("no findings")
			}
			byValue := map[string]int{}
			src := map[string]string{}
			kinds := map[detect.Kind]int64{}
			for _, l := range findings {
				var f detect.Finding
				if err := f.UnmarshalJSON(l); err != nil {
					t.Fatalf("%s: %v", l, err)
				}
				byValue[string(l)]++
				src[string(l)] = f.Src.String()
				kinds[f.Kind]++
			}
			if c.name == "psexec" && kinds[detect.KindLateralMovement] == 0 {
				t.Errorf("no lateral_movement finding from the PsExec capture")
			}
			flows := lines(mustRead(t, flowsFile))
			for _, s := range []struct {
				name string
				want int
			}{{"kafka findings", len(findings)}, {"kafka flows", len(flows)}, {"influxdb findings", len(findings)}} {
				if sent, dropped := sinkLine(t, summary, s.name); sent != s.want || dropped != 0 {
					t.Errorf("%s: %d sent, %d dropped; want %d sent", s.name, sent, dropped, s.want)
				}
			}
			if sent, dropped := sinkLine(t, summary, "influxdb counters"); sent == 0 || dropped != 0 {
				t.Errorf("influxdb counters: %d sent, %d dropped", sent, dropped)
			}

			// Kafka: the findings topic holds the JSON lines, each once.
			got := map[string]int{}
			for _, m := range testservers.Consume(t, brokers, ft, len(findings)) {
				got[string(m.Value)]++
				if want, ok := src[string(m.Value)]; !ok {
					t.Errorf("finding not in the JSON output: %s", m.Value)
				} else if string(m.Key) != want {
					t.Errorf("key %q, want the source host %s", m.Key, want)
				}
				if h := testservers.Header(m, "schema"); h != "flowhound.finding.v1" {
					t.Errorf("schema header %q", h)
				}
			}
			for v, n := range byValue {
				if got[v] != n {
					t.Errorf("finding read %d times from Kafka, written %d times as JSON: %s", got[v], n, v)
				}
			}

			// The flows topic holds the flow records, keyed by host pair.
			wantFlows := map[string]int{}
			for _, l := range flows {
				wantFlows[string(l)]++
			}
			for _, m := range testservers.Consume(t, brokers, flt, len(flows)) {
				if wantFlows[string(m.Value)] == 0 {
					t.Fatalf("flow record not in the -flows output, or twice: %s", m.Value)
				}
				wantFlows[string(m.Value)]--
				var r struct {
					OrigH netip.Addr `json:"orig_h"`
					RespH netip.Addr `json:"resp_h"`
				}
				if err := json.Unmarshal(m.Value, &r); err != nil {
					t.Fatal(err)
				}
				a, b := r.OrigH, r.RespH
				if b.Less(a) {
					a, b = b, a
				}
				if string(m.Key) != a.String()+","+b.String() {
					t.Fatalf("flow key %q, want %s,%s", m.Key, a, b)
				}
			}

			// InfluxDB: one point per finding emission (an update at the
			// same instant and severity overwrites its point).
			type pointKey struct {
				uid      string
				time     time.Time
				severity string
			}
			want := map[pointKey]detect.Finding{}
			for _, l := range findings {
				var f detect.Finding
				f.UnmarshalJSON(l)
				want[pointKey{f.UID, f.Time.Truncate(time.Microsecond), string(f.Severity)}] = f
			}
			rows := testservers.FluxRows(t, influx, db+"/autogen", "flowhound_finding")
			if len(rows) != len(want) {
				t.Errorf("%d finding points, want %d", len(rows), len(want))
			}
			for _, r := range rows {
				uid, _ := r["uid"].(string)
				sev, _ := r["severity"].(string)
				f, ok := want[pointKey{uid, r["_time"].(time.Time).Truncate(time.Microsecond), sev}]
				if !ok {
					t.Errorf("unexpected finding point %v", r)
					continue
				}
				score, _ := r["score"].(float64)
				if r["status"] != string(f.Status) || r["kind"] != string(f.Kind) || r["sensor"] != "test-sensor" ||
					r["src"] != f.Src.String() || math.Abs(score-f.Score) > 0.0005 {
					t.Errorf("point %v, want finding %+v", r, f)
				}
			}

			// Counters are published during the run (at packet time) and
			// once more at the end; the last point holds the run's totals.
			crows := testservers.FluxRows(t, influx, db+"/autogen", "flowhound_sensor")
			if len(crows) == 0 || c.name == "synth_lateral" && len(crows) < 2 {
				t.Fatalf("%d counters points", len(crows))
			}
			for i := 1; i < len(crows); i++ {
				if crows[i]["packets"].(int64) < crows[i-1]["packets"].(int64) {
					t.Errorf("packets went down from %v to %v", crows[i-1], crows[i])
				}
			}
			final := crows[0]
			for _, r := range crows {
				if r["packets"].(int64) > final["packets"].(int64) {
					final = r
				}
			}
			if p := summaryPackets(t, summary); final["packets"] != p || final["flows_active"] != int64(0) ||
				final["sensor"] != "test-sensor" || final["findings_lateral_movement"] != kinds[detect.KindLateralMovement] ||
				final["findings_scan"] != kinds[detect.KindScan] {
				t.Errorf("final counters %v; want %d packets, 0 active flows, findings %v", final, p, kinds)
			}
		})
	}
}

// With the broker unreachable from the start, the replay still completes
// and writes its JSON output; Kafka buffers findings up to its limit, drops
// the rest, and drops what it holds at the flush deadline. The exit status
// is non-zero and the summary says findings were lost.
func TestReplayKafkaUnreachable(t *testing.T) {
	cleanEnv(t)
	pcap := synthScenario(t, "lateral")
	port := testservers.FreePort(t) // nothing listens there
	cfg := writeConfig(t, fmt.Sprintf(`sinks:
  kafka:
    brokers: [127.0.0.1:%d]
    batch_size: 1
    batch_timeout: 10ms
    buffer: 3
`, port))
	var stdout bytes.Buffer
	var stderr syncBuffer
	start := time.Now()
	err := run([]string{"replay", "-config", cfg, "-flush-timeout", "1s", pcap}, nil, &stdout, &stderr)
	elapsed := time.Since(start)
	summary := stderr.String()
	t.Logf("summary:\n%s", summary)
	if elapsed > 30*time.Second {
		t.Errorf("replay took %s with the broker away", elapsed)
	}
	var ee *exitError
	if err == nil || errors.As(err, &ee) {
		t.Fatalf("replay returned %v, want an error about lost findings", err)
	}
	findings := lines(stdout.Bytes())
	if len(findings) < 5 {
		t.Fatalf("%d findings in the JSON output, want the scenario's (more than the buffer of 3)", len(findings))
	}
	want := fmt.Sprintf("%d of %d findings not delivered", len(findings), len(findings))
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want %q", err, want)
	}
	if sent, dropped := sinkLine(t, summary, "kafka findings"); sent != 0 || dropped != len(findings) {
		t.Errorf("kafka findings: %d sent, %d dropped; want 0 and %d", sent, dropped, len(findings))
	}
	if !strings.Contains(summary, fmt.Sprintf("lost      %d findings were not delivered to kafka findings", len(findings))) {
		t.Errorf("summary does not say findings were lost")
	}
	if !strings.Contains(summary, fmt.Sprintf("last error: kafka: 127.0.0.1:%d", port)) {
		t.Errorf("summary does not give the last error")
	}
	if !strings.Contains(summary, "buffer full") {
		t.Errorf("no log line about the full buffer")
	}
}

// Settings that the configuration or a sink refuses fail the replay at
// start-up, before anything is read, with an error naming the setting.
func TestReplayBadSinkSettings(t *testing.T) {
	cleanEnv(t)
	pcap := filepath.Join(testservers.RepoRoot(t), "testdata", "test-cc-capture-1.pcap.gz")
	for _, tc := range []struct{ name, yaml, want string }{
		{"broker without port", "sinks:\n  kafka:\n    brokers: [kafka-1]\n", "sinks.kafka.brokers[0]: want host:port"},
		{"SCRAM password", "sinks:\n  kafka:\n    brokers: [127.0.0.1:9]\n    sasl:\n      mechanism: SCRAM-SHA-256\n" +
			"      username: u\n      password: \"bell\\achar\"\n", "sinks.kafka: sasl.password: not usable for SCRAM"},
		{"influx url", "sinks:\n  influxdb:\n    url: ftp://influx:8086\n", "sinks.influxdb.url: want an http:// or https:// URL"},
		{"jsonl directory", "sinks:\n  jsonl:\n    path: /nonexistent-dir/findings.jsonl\n", "sinks.jsonl.path: directory /nonexistent-dir does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run([]string{"replay", "-config", writeConfig(t, tc.yaml), pcap}, nil, &stdout, &stderr)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("replay = %v, want exit status 2 and %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "bell") {
				t.Errorf("error shows the password: %v", err)
			}
			if stdout.Len() != 0 || strings.Contains(stderr.String(), "packets") {
				t.Errorf("replay ran: stdout %q stderr %q", stdout.String(), stderr.String())
			}
		})
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// killAfter sends sig to this process once n bytes have been read through
// it.
type killAfter struct {
	r    io.Reader
	n    int
	sig  syscall.Signal
	sent bool
}

func (k *killAfter) Read(p []byte) (int, error) {
	n, err := k.r.Read(p)
	if k.n -= n; k.n <= 0 && !k.sent {
		k.sent = true
		syscall.Kill(os.Getpid(), k.sig)
		time.Sleep(100 * time.Millisecond) // let the handler cancel the run before reading on
	}
	return n, err
}

// SIGTERM stops reading; what was read is flushed through the detectors
// and written out, and the replay exits 0.
func TestReplayInterrupted(t *testing.T) {
	cleanEnv(t)
	f, err := os.Open(synthScenario(t, "lateral"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stdout bytes.Buffer
	var stderr syncBuffer
	flowsFile := filepath.Join(t.TempDir(), "flows.jsonl")
	err = run([]string{"replay", "-flows", flowsFile, "-"}, &killAfter{r: f, n: 4 << 20, sig: syscall.SIGTERM}, &stdout, &stderr)
	summary := stderr.String()
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, summary)
	}
	if !strings.Contains(summary, "terminated: stopping") {
		t.Errorf("no word of the signal in:\n%s", summary)
	}
	if p := summaryPackets(t, summary); p == 0 || p >= 291151 {
		t.Errorf("%d packets read, want some but not all of the scenario's 291151", p)
	}
	flows := lines(mustRead(t, flowsFile))
	m := regexp.MustCompile(`(?m)^flows +(\d+) records \((\d+) interim\)`).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("no flows line in:\n%s", summary)
	}
	final, _ := strconv.Atoi(m[1])
	interim, _ := strconv.Atoi(m[2])
	if len(flows) != final+interim {
		t.Errorf("%d flow records written, summary says %s", len(flows), m[0])
	}
	for _, l := range flows[len(flows)-10:] {
		if !bytes.Contains(l, []byte(`"final":true`)) {
			t.Errorf("open flows not flushed as final: %s", l)
		}
	}
}
