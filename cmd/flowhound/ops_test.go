package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCapture returns the bundled beacon capture, uncompressed.
func testCapture(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "test-cc-capture-1.pcap.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pcapPackets counts the whole packets in a prefix of a little-endian pcap
// file, and returns the offset where each packet ends.
func pcapPackets(t *testing.T, b []byte) []int {
	t.Helper()
	if binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
		t.Fatalf("the test capture is not a little-endian microsecond pcap")
	}
	var ends []int
	for off := 24; off+16 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off+8:]))
		off += 16 + n
		if off > len(b) {
			break
		}
		ends = append(ends, off)
	}
	return ends
}

// replayRun is `flowhound replay` running in the test's process, reading a
// capture the test feeds it through a pipe.
type replayRun struct {
	t      *testing.T
	in     *io.PipeWriter
	stdout bytes.Buffer
	stderr syncBuffer
	done   chan error
}

func startReplay(t *testing.T, args ...string) *replayRun {
	r := &replayRun{t: t, done: make(chan error, 1)}
	pr, pw := io.Pipe()
	r.in = pw
	go func() {
		r.done <- run(append([]string{"replay"}, args...), pr, &r.stdout, &r.stderr)
		pr.Close()
	}()
	t.Cleanup(func() { pw.Close() })
	return r
}

// waitLog waits for a line of stderr matching re and returns its matches.
func (r *replayRun) waitLog(re string) []string {
	r.t.Helper()
	x := regexp.MustCompile(re)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if m := x.FindStringSubmatch(r.stderr.String()); m != nil {
			return m
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatalf("no %q on stderr within 15s:\n%s", re, r.stderr.String())
	return nil
}

func (r *replayRun) finish() error {
	r.t.Helper()
	r.in.Close()
	select {
	case err := <-r.done:
		return err
	case <-time.After(30 * time.Second):
		r.t.Fatal("replay did not end within 30s of the end of its input")
		return nil
	}
}

// scrape returns the value of an unlabelled or labelled sample of /metrics
// (name as it appears before the value), and whether it is there.
func scrape(t *testing.T, url, name string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", sc.Text(), err)
			}
			return f, true
		}
	}
	return 0, false
}

// A replay fed slowly through a pipe serves its counters while it runs,
// reloads its configuration on SIGHUP without losing detector state
// (same findings as a run without reloads), keeps running when the file
// has become invalid, and draws a progress line when asked to.
func TestReplayMetricsReloadProgress(t *testing.T) {
	pcap := testCapture(t)
	ends := pcapPackets(t, pcap)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "flowhound.yaml")
	good := "home_nets: [147.32.0.0/16]\nlog:\n  level: info\n"
	if err := os.WriteFile(cfgPath, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}

	// The reference: the same capture and configuration, no reloads.
	var refOut, refErr bytes.Buffer
	if err := run([]string{"replay", "-config", cfgPath, "-sensor", "t", "-progress", "off"}, bytes.NewReader(pcap), &refOut, &refErr); err != nil {
		t.Fatalf("reference replay: %v\n%s", err, refErr.String())
	}
	if !strings.Contains(refOut.String(), `"kind":"beacon"`) {
		t.Fatalf("the reference replay found no beacon:\n%s", refOut.String())
	}

	r := startReplay(t, "-config", cfgPath, "-sensor", "t", "-metrics", "127.0.0.1:0", "-progress", "on")
	if _, err := r.in.Write(pcap[:24]); err != nil { // the file header: the replay starts once it has read it
		t.Fatal(err)
	}
	url := r.waitLog(`url=(http://127\.0\.0\.1:\d+/metrics)`)[1]
	healthz := strings.TrimSuffix(url, "metrics") + "healthz"

	// Feed the first half slowly, so that the reader publishes its
	// counters on the way (it looks at the clock every 64 packets).
	half := ends[len(ends)/2]
	const chunks = 20
	for i := 0; i < chunks; i++ {
		if _, err := r.in.Write(pcap[24+(half-24)*i/chunks : 24+(half-24)*(i+1)/chunks]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(40 * time.Millisecond)
	}
	var packets float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, ok := scrape(t, url, "flowhound_packets_total")
		if ok && v > 0 {
			packets = v
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flowhound_packets_total never rose above 0 (last %v, present %v)", v, ok)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if packets > float64(len(ends)/2) {
		t.Errorf("flowhound_packets_total %v, but only %d whole packets were written", packets, len(ends)/2)
	}
	resp, err := http.Get(healthz)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz while replaying: %s", resp.Status)
	}
	// The healthcheck command asks the same sensor, by URL and through a
	// configuration file naming its metrics address.
	var hcOut, hcErr bytes.Buffer
	if err := run([]string{"healthcheck", "-url", healthz}, nil, &hcOut, &hcErr); err != nil || !strings.Contains(hcOut.String(), ": ok, heartbeat") {
		t.Errorf("healthcheck -url %s: %v\n%s%s", healthz, err, hcOut.String(), hcErr.String())
	}
	hcCfg := filepath.Join(dir, "hc.yaml")
	listen := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/metrics")
	if err := os.WriteFile(hcCfg, []byte("metrics:\n  listen: "+listen+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hcOut.Reset()
	if err := run([]string{"healthcheck", "-q", "-config", hcCfg}, nil, &hcOut, &hcErr); err != nil || hcOut.Len() != 0 {
		t.Errorf("healthcheck -q -config (listen %s): %v, printed %q\n%s", listen, err, hcOut.String(), hcErr.String())
	}

	// A broken file: the running configuration stays, the error names the
	// file and line, and the failure is counted.
	if err := os.WriteFile(cfgPath, []byte(good+"detect:\n  beacon:\n    threshold: 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	r.waitLog(`configuration not reloaded.*flowhound\.yaml:\d+: detect\.beacon\.threshold`)
	// The same settings again: applied before the next record, state kept.
	if err := os.WriteFile(cfgPath, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	time.Sleep(100 * time.Millisecond) // the reload waits for a record; some are still to come
	if _, err := r.in.Write(pcap[half:]); err != nil {
		t.Fatal(err)
	}
	r.waitLog(`configuration reloaded`)
	for name, want := range map[string]float64{
		`flowhound_config_reloads_total{result="ok"}`:     1,
		`flowhound_config_reloads_total{result="failed"}`: 1,
	} {
		if v, ok := scrape(t, url, name); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if err := r.finish(); err != nil {
		t.Fatalf("replay: %v\n%s", err, r.stderr.String())
	}
	if got, want := findingLines(r.stdout.String()), findingLines(refOut.String()); got != want {
		t.Errorf("findings after two reloads differ from a run without:\n got %s\nwant %s", got, want)
	}
	stderr := r.stderr.String()
	if !regexp.MustCompile(`\rreplay[^\r]*  \S+ pkt/s  \S+ packets  \S+ flows  \d+ findings`).MatchString(stderr) {
		t.Errorf("no progress line on stderr:\n%q", stderr)
	}
	if !strings.Contains(stderr, fmt.Sprintf("packets   %d ", len(ends))) {
		t.Errorf("summary does not count every packet (%d):\n%s", len(ends), stderr)
	}
}

// findingLines returns the findings' kinds, uids, statuses and scores, the
// part of a finding that depends on detector state.
func findingLines(out string) string {
	var b strings.Builder
	re := regexp.MustCompile(`"uid":"[^"]+"|"kind":"[^"]+"|"status":"[^"]+"|"score":[0-9.]+`)
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		b.WriteString(strings.Join(re.FindAllString(l, -1), " "))
		b.WriteString("; ")
	}
	return b.String()
}
