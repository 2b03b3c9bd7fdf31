package main

// Real servers for the command's integration tests, started like the sink
// tests start theirs (sinks/servers_test.go): the Kafka wire-protocol broker
// of tools/kafkabroker and InfluxDB 1.8.10, on loopback, from the binaries
// scripts/devservices.sh caches in .bin/ (built here when missing).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/segmentio/kafka-go"
)

// repoRoot is the directory of flowhound's go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.HasPrefix(string(b), "module github.com/flowhound/flowhound\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("cannot find flowhound's go.mod above the working directory")
		}
		dir = parent
	}
}

var builds sync.Map // binary name → *buildResult

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// serverBinary returns the path of .bin/NAME, building it when missing. It
// skips the test when it cannot be built.
func serverBinary(t testing.TB, name string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(name, &buildResult{})
	br := v.(*buildResult)
	br.once.Do(func() {
		root := repoRoot(t)
		br.path = filepath.Join(root, ".bin", name)
		if _, err := os.Stat(br.path); err == nil {
			return
		}
		var cmd *exec.Cmd
		switch name {
		case "kafkabroker":
			cmd = exec.Command("go", "build", "-o", br.path, ".")
			cmd.Dir = filepath.Join(root, "tools", "kafkabroker")
		case "influxd":
			cmd = exec.Command("go", "install", "github.com/influxdata/influxdb/cmd/influxd@v1.8.10")
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "GOBIN="+filepath.Join(root, ".bin"))
		}
		cmd.Env = append(cmd.Environ(), "GOFLAGS=")
		t.Logf("building %s (scripts/devservices.sh build caches it in .bin/)", name)
		if out, err := cmd.CombinedOutput(); err != nil {
			br.err = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if br.err != nil {
		t.Skipf("%s is not in .bin/ and cannot be built; run scripts/devservices.sh build: %v", name, br.err)
	}
	return br.path
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startBroker starts one kafkabroker with extra flags and returns its
// address; it stops when the test ends.
func startBroker(t testing.TB, extra ...string) string {
	t.Helper()
	bin := serverBinary(t, "kafkabroker")
	port := freePort(t)
	args := append([]string{"-ports", strconv.Itoa(port)}, extra...)
	var lastErr error
	for range 50 { // the port may be taken in between; try another
		cmd := exec.Command(bin, args...)
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "listening ") {
				go io.Copy(io.Discard, out)
				done := make(chan struct{})
				go func() { cmd.Wait(); close(done) }()
				t.Cleanup(func() { stopProcess(cmd, done) })
				return "127.0.0.1:" + strconv.Itoa(port)
			}
		}
		lastErr = cmd.Wait()
		port = freePort(t)
		args[1] = strconv.Itoa(port)
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("kafkabroker %v did not start: %v", args, lastErr)
	return ""
}

func stopProcess(cmd *exec.Cmd, done chan struct{}) {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// createTopic creates topic with the given partitions.
func createTopic(t testing.TB, broker, topic string, partitions int) {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second}
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

// consume reads want messages from topic in a fresh consumer group, then
// makes sure no more arrive for a moment.
func consume(t testing.TB, broker, topic string, want int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{broker}, GroupID: "flowhound-test-" + topic, Topic: topic,
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

// startInflux starts influxd with its data in a temporary directory and
// returns its URL; it stops when the test ends.
func startInflux(t testing.TB) string {
	t.Helper()
	bin := serverBinary(t, "influxd")
	dir := t.TempDir()
	httpPort, rpcPort := freePort(t), freePort(t)
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:%d"
  auth-enabled = false
  flux-enabled = true
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
`, rpcPort, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpPort)
	if err := os.WriteFile(filepath.Join(dir, "influxdb.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "influxd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "run", "-config", filepath.Join(dir, "influxdb.conf"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { stopProcess(cmd, done) })
	u := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u + "/ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return u
			}
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "influxd.log"))
			t.Fatalf("influxd exited at start:\n%s", log)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("influxd did not answer /ping on %s", u)
	return ""
}

// influxQL runs an InfluxQL statement (CREATE DATABASE) through the 1.x API.
func influxQL(t testing.TB, server, q string) {
	t.Helper()
	resp, err := http.PostForm(server+"/query", url.Values{"q": {q}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), `"error"`) {
		t.Fatalf("%s: HTTP %d: %s", q, resp.StatusCode, body)
	}
}

// fluxRows runs a Flux query pivoted to one row per point.
func fluxRows(t testing.TB, server, bucket, measurement string) []map[string]any {
	t.Helper()
	c := influxdb2.NewClient(server, "")
	defer c.Close()
	q := fmt.Sprintf(`from(bucket: %q)
  |> range(start: 2000-01-01T00:00:00Z)
  |> filter(fn: (r) => r._measurement == %q)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")`, bucket, measurement)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.QueryAPI("").Query(ctx, q)
	if err != nil {
		t.Fatalf("flux: %v", err)
	}
	var rows []map[string]any
	for res.Next() {
		v := res.Record().Values()
		v["_time"] = res.Record().Time()
		rows = append(rows, v)
	}
	if res.Err() != nil {
		t.Fatalf("flux: %v", res.Err())
	}
	return rows
}
