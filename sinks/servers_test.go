package sinks

// Real servers for the integration tests: the Kafka wire-protocol broker in
// tools/kafkabroker (franz-go's kfake) and InfluxDB 1.8.10, both on
// loopback, started from the binaries that scripts/devservices.sh caches in
// .bin/ (built here when missing). FLOWHOUND_TEST_KAFKA and
// FLOWHOUND_TEST_INFLUX point the tests that need no server of their own at
// servers already running (scripts/devservices.sh start).

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

	"github.com/segmentio/kafka-go"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopSharedInflux()
	os.Exit(code)
}

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

var (
	buildOnce sync.Map // binary name → *buildResult
)

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// serverBinary returns the path of .bin/NAME, building it when missing.
// It skips the test when it cannot be built.
func serverBinary(t testing.TB, name string) string {
	t.Helper()
	v, _ := buildOnce.LoadOrStore(name, &buildResult{})
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

// orphanGuard kills a server when the test process dies without cleaning
// up (a panic, a timeout).
func orphanGuard() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }

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

// broker is one kafkabroker process.
type broker struct {
	t     testing.TB
	bin   string
	args  []string
	ports []int
	cmd   *exec.Cmd
	done  chan struct{}
}

// startBroker starts a broker on free ports (n brokers) with extra flags.
func startBroker(t testing.TB, n int, extra ...string) *broker {
	t.Helper()
	b := &broker{t: t, bin: serverBinary(t, "kafkabroker")}
	for range n {
		b.ports = append(b.ports, freePort(t))
	}
	b.args = extra
	b.start()
	t.Cleanup(b.stop)
	return b
}

// Addrs returns the brokers' host:port addresses.
func (b *broker) Addrs() []string {
	var out []string
	for _, p := range b.ports {
		out = append(out, "127.0.0.1:"+strconv.Itoa(p))
	}
	return out
}

func (b *broker) start() {
	b.t.Helper()
	var ps []string
	for _, p := range b.ports {
		ps = append(ps, strconv.Itoa(p))
	}
	args := append([]string{"-ports", strings.Join(ps, ",")}, b.args...)
	// The port was free a moment ago, or was the previous incarnation's;
	// retry briefly if it is still held.
	var lastErr error
	for range 50 {
		cmd := exec.Command(b.bin, args...)
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = orphanGuard()
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		listening := 0
		for listening < len(b.ports) && sc.Scan() {
			if strings.HasPrefix(sc.Text(), "listening ") {
				listening++
			}
		}
		if listening == len(b.ports) {
			go io.Copy(io.Discard, out)
			b.cmd = cmd
			b.done = make(chan struct{})
			go func(done chan struct{}) { cmd.Wait(); close(done) }(b.done)
			return
		}
		lastErr = cmd.Wait()
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("kafkabroker %v did not start: %v", args, lastErr)
}

// kill stops the broker at once (SIGKILL), as a crash would.
func (b *broker) kill() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.done
	b.cmd = nil
}

// stop stops the broker gracefully (SIGTERM).
func (b *broker) stop() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd = nil
}

// sharedKafka returns FLOWHOUND_TEST_KAFKA's brokers, or starts a broker for
// the test.
func sharedKafka(t testing.TB) []string {
	t.Helper()
	if v := os.Getenv("FLOWHOUND_TEST_KAFKA"); v != "" {
		return strings.Split(v, ",")
	}
	return startBroker(t, 1, "-partitions", "3").Addrs()
}

// createTopic creates topic with the given partitions (tests use unique
// names, so a shared broker needs no auto-creation).
func createTopic(t testing.TB, brokers []string, topic string, partitions int) {
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

var topicSeq struct {
	sync.Mutex
	n int
}

// uniqueName returns a name unique within this test process (and, with the
// time, across runs against one shared server).
func uniqueName(prefix string) string {
	topicSeq.Lock()
	defer topicSeq.Unlock()
	topicSeq.n++
	return fmt.Sprintf("%s.%d.%d", prefix, time.Now().UnixNano()%1e9, topicSeq.n)
}

// influxServer is one influxd process.
type influxServer struct {
	t        testing.TB
	bin, dir string
	httpPort int
	rpcPort  int
	cmd      *exec.Cmd
	done     chan struct{}
}

func (s *influxServer) URL() string { return "http://127.0.0.1:" + strconv.Itoa(s.httpPort) }

// startInflux starts influxd with its data in a temporary directory.
func startInflux(t testing.TB, dir string) *influxServer {
	t.Helper()
	s := &influxServer{t: t, bin: serverBinary(t, "influxd"), dir: dir, httpPort: freePort(t), rpcPort: freePort(t)}
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
`, s.rpcPort, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), s.httpPort)
	if err := os.WriteFile(filepath.Join(dir, "influxdb.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *influxServer) start() error {
	logf, err := os.OpenFile(filepath.Join(s.dir, "influxd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, "run", "-config", filepath.Join(s.dir, "influxdb.conf"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = orphanGuard()
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.done)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.URL() + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return nil
			}
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "influxd.log"))
			return fmt.Errorf("influxd exited at start:\n%s", log)
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.stop()
	return fmt.Errorf("influxd did not answer /ping on %s", s.URL())
}

func (s *influxServer) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

var shared struct {
	sync.Mutex
	influx *influxServer
	dir    string
}

// sharedInflux returns FLOWHOUND_TEST_INFLUX, or an influxd started once for
// this test process.
func sharedInflux(t testing.TB) string {
	t.Helper()
	if v := os.Getenv("FLOWHOUND_TEST_INFLUX"); v != "" {
		return v
	}
	shared.Lock()
	defer shared.Unlock()
	if shared.influx == nil {
		dir, err := os.MkdirTemp("", "flowhound-influx-")
		if err != nil {
			t.Fatal(err)
		}
		shared.dir = dir
		shared.influx = startInflux(t, dir)
	}
	return shared.influx.URL()
}

func stopSharedInflux() {
	shared.Lock()
	defer shared.Unlock()
	if shared.influx != nil {
		shared.influx.stop()
		os.RemoveAll(shared.dir)
	}
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

// newDatabase creates a database with a unique name.
func newDatabase(t testing.TB, server string) string {
	t.Helper()
	db := strings.NewReplacer(".", "_").Replace(uniqueName("flowhound_test"))
	influxQL(t, server, "CREATE DATABASE "+db)
	return db
}
