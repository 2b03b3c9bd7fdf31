package testservers

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InfluxVersion is the InfluxDB release the tests run against.
const InfluxVersion = "1.8.10"

// RepoRoot returns the directory of flowhound's go.mod, searched upwards
// from the working directory (a test's is its package directory).
func RepoRoot(t testing.TB) string {
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

// builds holds one build attempt per binary name, shared by the tests of a
// test binary so that parallel tests build each binary once.
var builds sync.Map // name → *build

type build struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of .bin/NAME ("kafkabroker" or "influxd"),
// building it when it is missing. It skips the test when it cannot be built.
func Binary(t testing.TB, name string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(name, &build{})
	b := v.(*build)
	b.once.Do(func() {
		root := RepoRoot(t)
		b.path = filepath.Join(root, ".bin", name)
		if _, err := os.Stat(b.path); err == nil {
			return
		}
		var cmd *exec.Cmd
		switch name {
		case "kafkabroker":
			cmd = exec.Command("go", "build", "-o", b.path, ".")
			cmd.Dir = filepath.Join(root, "tools", "kafkabroker")
		case "influxd":
			cmd = exec.Command("go", "install", "github.com/influxdata/influxdb/cmd/influxd@v"+InfluxVersion)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "GOBIN="+filepath.Join(root, ".bin"))
		default:
			b.err = fmt.Errorf("testservers knows no server binary %q", name)
			return
		}
		// The repository's GOFLAGS (say -mod=vendor) are not the tool's.
		cmd.Env = append(cmd.Environ(), "GOFLAGS=")
		t.Logf("building %s (scripts/devservices.sh build caches it in .bin/)", name)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Skipf("%s is not in .bin/ and cannot be built; run scripts/devservices.sh build: %v", name, b.err)
	}
	return b.path
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var nameSeq struct {
	sync.Mutex
	n int
}

// UniqueName returns PREFIX.TIME.N, unique within this test process and,
// with the time, across runs against one shared server: topic, consumer
// group and (dots replaced) database names.
func UniqueName(prefix string) string {
	nameSeq.Lock()
	defer nameSeq.Unlock()
	nameSeq.n++
	return fmt.Sprintf("%s.%d.%d", prefix, time.Now().UnixNano()%1e9, nameSeq.n)
}

// process is a started server whose exit done announces.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// watch waits for cmd, started, in the background.
func watch(cmd *exec.Cmd) *process {
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p
}

// stop asks the server to stop (SIGTERM) and kills it if it has not within
// 15 seconds.
func (p *process) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// kill stops the server at once (SIGKILL), as a crash would.
func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.done
}
