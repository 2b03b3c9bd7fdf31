package testservers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
)

// EnvInflux names the variable that points SharedInflux at a running
// InfluxDB (http://host:port).
const EnvInflux = "FLOWHOUND_TEST_INFLUX"

// Influx is one influxd process with its data in a directory of its own.
// Its methods are for the goroutine of the test that started it.
type Influx struct {
	t                 testing.TB
	bin, dir          string
	httpPort, rpcPort int
	proc              *process // nil while stopped
}

// StartInflux starts influxd with its data in a temporary directory; it
// stops, and the directory goes, when the test ends.
func StartInflux(t testing.TB) *Influx {
	t.Helper()
	bin := Binary(t, "influxd")
	s := newInflux(t, bin, t.TempDir())
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

func newInflux(t testing.TB, bin, dir string) *Influx {
	t.Helper()
	s := &Influx{t: t, bin: bin, dir: dir, httpPort: FreePort(t), rpcPort: FreePort(t)}
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
	if err := os.WriteFile(s.conf(), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *Influx) conf() string { return filepath.Join(s.dir, "influxdb.conf") }
func (s *Influx) log() string  { return filepath.Join(s.dir, "influxd.log") }

// URL returns the server's HTTP address.
func (s *Influx) URL() string { return "http://127.0.0.1:" + strconv.Itoa(s.httpPort) }

// Start starts influxd again after Stop, on the same ports and data; it
// returns once the server answers /ping, and fails the test if it does not
// within a minute.
func (s *Influx) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *Influx) start() error {
	logf, err := os.OpenFile(s.log(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, "run", "-config", s.conf())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = orphanGuard()
	if err := cmd.Start(); err != nil {
		return err
	}
	s.proc = watch(cmd)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.URL() + "/ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return nil
			}
		}
		select {
		case <-s.proc.done:
			s.proc = nil
			log, _ := os.ReadFile(s.log())
			return fmt.Errorf("influxd exited at start:\n%s", log)
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.Stop()
	return fmt.Errorf("influxd did not answer /ping on %s", s.URL())
}

// Stop stops influxd gracefully (SIGTERM); its data stays.
func (s *Influx) Stop() {
	if s.proc != nil {
		s.proc.stop()
		s.proc = nil
	}
}

// SharedInflux is one influxd for all the tests of a test binary that need
// no server of their own; its zero value is ready. A test package keeps one
// in a variable and calls Stop from TestMain once its tests have run.
type SharedInflux struct {
	mu  sync.Mutex
	srv *Influx
	dir string
}

// URL returns FLOWHOUND_TEST_INFLUX when it is set; otherwise it starts
// influxd on the first call and returns its URL. Tests sharing a server
// use databases of their own (NewDatabase).
func (sh *SharedInflux) URL(t testing.TB) string {
	t.Helper()
	if v := os.Getenv(EnvInflux); v != "" {
		return v
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.srv == nil {
		bin := Binary(t, "influxd")
		// Not t.TempDir: the server outlives the test that starts it.
		dir, err := os.MkdirTemp("", "flowhound-influx-")
		if err != nil {
			t.Fatal(err)
		}
		s := newInflux(t, bin, dir)
		if err := s.start(); err != nil {
			os.RemoveAll(dir)
			t.Fatal(err)
		}
		sh.srv, sh.dir = s, dir
	}
	return sh.srv.URL()
}

// Stop stops the shared influxd, if one was started, and removes its data.
func (sh *SharedInflux) Stop() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.srv != nil {
		sh.srv.Stop()
		os.RemoveAll(sh.dir)
		sh.srv = nil
	}
}

// InfluxQL runs an InfluxQL statement (CREATE DATABASE) through the 1.x
// API and fails the test on an error.
func InfluxQL(t testing.TB, server, q string) {
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

// NewDatabase creates a database with a unique name and returns the name.
func NewDatabase(t testing.TB, server string) string {
	t.Helper()
	db := strings.ReplaceAll(UniqueName("flowhound_test"), ".", "_")
	InfluxQL(t, server, "CREATE DATABASE "+db)
	return db
}

// FluxRows returns the points of measurement in bucket (DB/RP), pivoted to
// one row per point: its fields and tags by name, and its time as "_time".
func FluxRows(t testing.TB, server, bucket, measurement string) []map[string]any {
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
