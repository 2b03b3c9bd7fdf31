package live

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSenseCommand runs `flowhound sense` in the capture namespace with two
// fanout workers and --user nobody, sends it traffic, checks that it runs
// without privileges, stops it with SIGINT and reads its flow records.
func TestSenseCommand(t *testing.T) {
	tn := newTestNet(t)
	startServer(t, tn)
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is needed to build flowhound")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skip("no user nobody to drop privileges to")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "flowhound")
	start := time.Now()
	if out, err := exec.Command(goCmd, "build", "-o", bin, "github.com/flowhound/flowhound/cmd/flowhound").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built flowhound in %v", time.Since(start).Round(time.Millisecond))

	flowsPath := filepath.Join(dir, "flows.jsonl")
	// The metrics listen on the namespace's own loopback, away from the
	// captured interface.
	if err := ipCmd("-n", tn.nsA, "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	args := []string{"netns", "exec", tn.nsA, bin, "sense", "-i", tn.ifA, "-workers", "2", "-ring-size", "2MiB",
		"--user", "nobody", "-o", filepath.Join(dir, "findings.jsonl"), "-flows", flowsPath, "-sensor", "veth-test",
		"-metrics", "127.0.0.1:0"}
	if _, err := exec.LookPath("tcpdump"); err == nil {
		args = append(args, "-f", "tcp")
	}
	cmd := exec.Command("ip", args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 100)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	}()
	// `ip netns exec` execs flowhound: the pid is flowhound's.
	waitFor := func(prefix string) string {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("flowhound exited before printing %q:\n%s", prefix, log.String())
				}
				log.WriteString(l + "\n")
				if strings.Contains(l, prefix) {
					return l
				}
			case <-timeout:
				t.Fatalf("flowhound did not print %q in 10s:\n%s", prefix, log.String())
			}
		}
	}
	waitFor("capturing on " + tn.ifA)
	metricsAddr := afterPrefix(waitFor("serving metrics"), "url=http://")
	metricsAddr, _, _ = strings.Cut(metricsAddr, "/")

	status, err := readStatus(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"Uid": "65534", "CapEff": "0000000000000000", "CapPrm": "0000000000000000", "CapAmb": "0000000000000000"} {
		if got := strings.Fields(status[k]); len(got) == 0 || got[0] != want {
			t.Errorf("after --user nobody: %s is %q, want %s", k, status[k], want)
		}
	}

	var truth []sent
	for _, size := range []int{5000, 70_000, 300} {
		s, err := exchange(tn, addrA, bulkPort, size, 2*size)
		if err != nil {
			t.Fatal(err)
		}
		truth = append(truth, s)
	}
	// The metrics count every packet sent, or the kernel says it dropped
	// it; the workers copy their counters at least once a second.
	var truthPkts uint64
	for _, s := range truth {
		truthPkts += s.origPkts + s.respPkts
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, code := scrapeInNetns(t, tn.nsA, metricsAddr, "/metrics")
		pkts, drops := m["flowhound_packets_total"], m[`flowhound_kernel_drops_total{interface="`+tn.ifA+`"}`]
		kpkts := m[`flowhound_kernel_packets_total{interface="`+tn.ifA+`"}`]
		if code == 200 && pkts+drops >= float64(truthPkts) && kpkts >= float64(truthPkts) && m["flowhound_flows_created_total"] >= float64(len(truth)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics (%d) never counted the %d packets sent: packets %v, kernel %v, drops %v, flows %v",
				code, truthPkts, pkts, kpkts, drops, m["flowhound_flows_created_total"])
		}
		time.Sleep(200 * time.Millisecond)
	}
	if h, code := scrapeInNetns(t, tn.nsA, metricsAddr, "/healthz"); code != 200 || h[`"status":"ok"`] != 1 {
		t.Errorf("/healthz while capturing: %d %v", code, h)
	}
	// No pause: the last frames are still in the block the kernel is
	// filling, and stopping must wait for it.
	cmd.Process.Signal(syscall.SIGINT)
	waitFor("interrupt: stopping")
	for l := range lines {
		log.WriteString(l + "\n")
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("flowhound sense after SIGINT: %v, want exit status 0\n%s", err, log.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("flowhound sense did not exit within 10s of SIGINT\n%s", log.String())
	}
	// The kernel may drop a frame when the machine is loaded (CI runs the
	// test packages in parallel); the summary must then say so, and the
	// drops must account for every packet missing below.
	var kpkts, kdrops uint64
	if _, err := fmt.Sscanf(afterPrefix(log.String(), fmt.Sprintf("kernel    %s: ", tn.ifA)), "%d packets, %d dropped", &kpkts, &kdrops); err != nil {
		t.Errorf("no kernel counters in the summary (%v):\n%s", err, log.String())
	}

	data, err := os.ReadFile(flowsPath)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		OrigP     uint16 `json:"orig_p"`
		OrigBytes uint64 `json:"orig_bytes"`
		RespBytes uint64 `json:"resp_bytes"`
		OrigPkts  uint64 `json:"orig_pkts"`
		RespPkts  uint64 `json:"resp_pkts"`
	}
	got := map[uint16]rec{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r rec
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("flow record %q: %v", l, err)
		}
		got[r.OrigP] = r
	}
	if len(got) != len(truth) {
		t.Errorf("%d flow records, want %d:\n%s", len(got), len(truth), data)
	}
	var missing uint64
	for _, s := range truth {
		want := rec{s.src.Port(), s.origBytes, s.respBytes, s.origPkts, s.respPkts}
		g := got[s.src.Port()]
		// Bytes come from sequence numbers, so a dropped segment does not
		// change them; packets may be short by what the kernel dropped.
		if g.OrigP != want.OrigP || g.OrigBytes != want.OrigBytes || g.RespBytes != want.RespBytes ||
			g.OrigPkts > want.OrigPkts || g.RespPkts > want.RespPkts {
			t.Errorf("flow %v: got %+v, want %+v", s, g, want)
		}
		missing += want.OrigPkts - min(g.OrigPkts, want.OrigPkts) + want.RespPkts - min(g.RespPkts, want.RespPkts)
	}
	if missing > kdrops {
		t.Errorf("%d packets missing from the flows but the kernel reported %d dropped", missing, kdrops)
	}
	if kdrops > 0 {
		t.Logf("the kernel dropped %d packets (machine under load); %d missing from the flows", kdrops, missing)
	}
	if t.Failed() {
		t.Logf("flowhound's stderr:\n%s", log.String())
	}
}

// scrapeInNetns GETs path from addr inside the namespace ns (whose
// loopback the sensor listens on) and returns the status code and the
// samples of a Prometheus text body ("name{labels}" to value); for any
// other body, its comma-separated JSON members map to 1.
func scrapeInNetns(t *testing.T, ns, addr, path string) (map[string]float64, int) {
	t.Helper()
	var body string
	err := inNetns(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr)
		b, err := io.ReadAll(c)
		body = string(b)
		return err
	})
	if err != nil {
		t.Fatalf("GET %s in %s: %v", path, ns, err)
	}
	head, content, _ := strings.Cut(body, "\r\n\r\n")
	var code int
	fmt.Sscanf(head, "HTTP/1.0 %d", &code)
	if code == 0 {
		fmt.Sscanf(head, "HTTP/1.1 %d", &code)
	}
	m := map[string]float64{}
	if strings.HasPrefix(content, "{") {
		for _, member := range strings.Split(strings.Trim(strings.TrimSpace(content), "{}"), ",") {
			m[member] = 1
		}
		return m, code
	}
	for _, l := range strings.Split(content, "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if v, err := strconv.ParseFloat(l[i+1:], 64); i > 0 && err == nil {
			m[l[:i]] = v
		}
	}
	return m, code
}

// readStatus returns the fields of /proc/PID/status.
func readStatus(pid int) (map[string]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m, nil
}

// afterPrefix returns what follows the first occurrence of prefix in s, or "".
func afterPrefix(s, prefix string) string {
	if _, after, ok := strings.Cut(s, prefix); ok {
		return after
	}
	return ""
}
