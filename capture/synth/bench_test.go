package synth

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// smallBench is the configuration the tests run tshark on.
var smallBench = BenchConfig{Seed: 1, Packets: 20_000}

func writeBench(t testing.TB, cfg BenchConfig, ng bool) (*Truth, []byte) {
	t.Helper()
	var buf bytes.Buffer
	var w PacketWriter
	var err error
	if ng {
		w, err = NewPcapngWriter(&buf, LinkTypeEthernet, 0)
	} else {
		w, err = NewPcapWriter(&buf, LinkTypeEthernet, 0, true)
	}
	if err != nil {
		t.Fatal(err)
	}
	truth, err := WriteBench(w, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return truth, buf.Bytes()
}

func TestWriteBenchDeterministic(t *testing.T) {
	hash := func(cfg BenchConfig, ng bool) [32]byte {
		_, b := writeBench(t, cfg, ng)
		return sha256.Sum256(b)
	}
	a, b := hash(smallBench, false), hash(smallBench, false)
	if a != b {
		t.Fatal("same seed, different pcap bytes")
	}
	if hash(smallBench, true) != hash(smallBench, true) {
		t.Fatal("same seed, different pcapng bytes")
	}
	other := smallBench
	other.Seed = 2
	if hash(other, false) == a {
		t.Fatal("different seeds, same bytes")
	}
}

// TestWriteBenchReadBack reads the capture back (pcap and pcapng) and checks
// every flow of the truth against what the packets say, and the truth
// against the plan it was made from.
func TestWriteBenchReadBack(t *testing.T) {
	for _, ng := range []bool{false, true} {
		truth, file := writeBench(t, smallBench, ng)
		var recs []record
		if ng {
			recs = readPcapng(t, file)
		} else {
			recs = readPcap(t, file)
		}
		compareTruth(t, truth, analyze(t, recs, false))
	}

	truth, _ := writeBench(t, smallBench, false)
	cfg, _ := smallBench.withDefaults()
	pl := newBenchPlanner(cfg)
	pl.plan()
	if len(pl.items) != len(truth.Flows) {
		t.Fatalf("planned %d conversations, truth has %d", len(pl.items), len(truth.Flows))
	}
	for i, it := range pl.items {
		f := truth.Flows[i]
		var n int
		var state string
		var a, b Endpoint
		if it.dns {
			q := &pl.dnss[it.idx]
			n, state, a, b = q.Packets(), q.ConnState(), q.Client, q.Server
		} else {
			c := &pl.tcps[it.idx]
			n, state, a, b = c.Packets(), c.ConnState(), c.Orig, c.Resp
		}
		if f.OrigAddr != a.Addr || f.OrigPort != a.Port || f.RespAddr != b.Addr || f.RespPort != b.Port {
			t.Fatalf("flow %d is not the planned conversation %d", i, i)
		}
		if f.OrigPkts+f.RespPkts != uint64(n) || f.ConnState != state {
			t.Fatalf("flow %d: %d packets %s, planned %d %s", i, f.OrigPkts+f.RespPkts, f.ConnState, n, state)
		}
	}
	if truth.Packets < uint64(cfg.Packets) || truth.Packets > uint64(cfg.Packets)*11/10 {
		t.Errorf("%d packets for a target of %d", truth.Packets, cfg.Packets)
	}
}

// TestWriteBenchShape checks the mix the benchmark is meant to contain.
func TestWriteBenchShape(t *testing.T) {
	truth, err := WriteBench(discard{}, BenchConfig{Seed: 3, Packets: 200_000})
	if err != nil {
		t.Fatal(err)
	}
	avg := float64(truth.Bytes) / float64(truth.Packets)
	span := truth.End.Sub(truth.Start)
	states := map[string]int{}
	var v6, dns, bulk, long int
	scan := map[netip.Addr]int{}
	type edge struct {
		t     time.Time
		delta int
	}
	var edges []edge
	for _, f := range truth.Flows {
		states[f.ConnState]++
		if f.OrigAddr.Is6() {
			v6++
		}
		if f.Proto == ProtoUDP && f.RespPort == 53 {
			dns++
		}
		if f.OrigBytes+f.RespBytes > 1e6 {
			bulk++
		}
		if f.End.Sub(f.Start) > span/2 {
			long++
		}
		if f.ConnState == "REJ" || f.ConnState == "RSTO" && f.OrigBytes == 0 {
			scan[f.RespAddr]++
		}
		edges = append(edges, edge{f.Start, 1}, edge{f.End, -1})
	}
	slices.SortFunc(edges, func(a, b edge) int { return a.t.Compare(b.t) })
	open, maxOpen := 0, 0
	for _, e := range edges {
		open += e.delta
		maxOpen = max(maxOpen, open)
	}
	maxScan := 0
	for _, n := range scan {
		maxScan = max(maxScan, n)
	}
	t.Logf("%d packets, %d flows, avg frame %.0f B, span %v, max open %d, states %v, IPv6 %d, DNS %d, bulk %d, long-lived %d",
		truth.Packets, len(truth.Flows), avg, span, maxOpen, states, v6, dns, bulk, long)
	check := func(what string, ok bool) {
		if !ok {
			t.Errorf("unexpected %s", what)
		}
	}
	check("average frame size", avg >= 450 && avg <= 550)
	check("number of flows", len(truth.Flows) > 3000 && len(truth.Flows) < 8000)
	check("time span", span >= time.Minute && span <= 16*time.Minute)
	check("concurrency", maxOpen >= 100)
	check("IPv6 share", v6 > len(truth.Flows)/40 && v6 < len(truth.Flows)/10)
	check("DNS share", dns > len(truth.Flows)/5)
	check("bulk transfers", bulk >= 1)
	check("long-lived connections", long >= 10)
	check("port scan", maxScan >= 1000)
	for _, s := range []string{"SF", "S0", "REJ", "RSTO", "RSTR"} {
		check("count of "+s, states[s] > 0)
	}
}

type discard struct{}

func (discard) WritePacket(int64, []byte, int) error { return nil }
func (discard) Flush() error                         { return nil }

func TestWriteBenchSnaplen(t *testing.T) {
	full, _ := writeBench(t, smallBench, false)
	cut := smallBench
	cut.Snaplen = 96
	truth, file := writeBench(t, cut, false)
	if !reflect.DeepEqual(full, truth) {
		t.Fatal("snaplen changed the truth")
	}
	recs := readPcap(t, file)
	for i, r := range recs {
		if len(r.data) > 96 || len(r.data) < min(r.wire, 96) {
			t.Fatalf("packet %d: %d of %d bytes captured", i, len(r.data), r.wire)
		}
	}
	compareTruth(t, truth, analyze(t, recs, true))

	if !haveTshark(t) {
		return
	}
	path := filepath.Join(t.TempDir(), "snap96.pcap")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	checkTsharkFlows(t, path, truth, nil)
	checkTsharkConv(t, path, truth)
}

// The tshark cross-checks: an independent dissector must find well-formed
// packets with good checksums, DNS, TLS and HTTP where we put them, and
// exactly the flows and counts of the truth.

func haveTshark(t *testing.T) bool {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Log("tshark not installed: skipping the tshark cross-checks")
		return false
	}
	return true
}

func tshark(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("tshark", append([]string{"-n"}, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

var checksumPrefs = []string{"-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"}

// tsharkBadFrames returns the numbers of frames tshark finds malformed or
// with an error-level expert item (bad checksums are errors).
func tsharkBadFrames(t *testing.T, path string) []string {
	args := append([]string{"-r", path}, checksumPrefs...)
	args = append(args, "-Y", "_ws.malformed || _ws.expert.severity >= error", "-T", "fields", "-e", "frame.number")
	return strings.Fields(tshark(t, args...))
}

func TestTshark(t *testing.T) {
	if !haveTshark(t) {
		t.Skip("tshark not installed")
	}
	truth, file := writeBench(t, smallBench, false)
	dir := t.TempDir()
	path := filepath.Join(dir, "bench.pcap")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}

	if bad := tsharkBadFrames(t, path); len(bad) > 0 {
		t.Errorf("tshark finds %d malformed or erroneous frames: %v", len(bad), bad[:min(len(bad), 20)])
	}
	// TCP analysis must find nothing but the SYN retransmissions we put in.
	odd := tshark(t, "-r", path, "-Y", "tcp.analysis.flags && !(tcp.analysis.retransmission && tcp.flags.syn == 1)",
		"-T", "fields", "-e", "frame.number", "-e", "_ws.expert.message")
	if odd != "" {
		t.Errorf("tshark TCP analysis complains:\n%.2000s", odd)
	}

	cfg, _ := smallBench.withDefaults()
	pl := newBenchPlanner(cfg)
	pl.plan()
	checkTsharkFlows(t, path, truth, pl)
	checkTsharkConv(t, path, truth)

	// the same capture as pcapng: same packets, same times
	_, ngFile := writeBench(t, smallBench, true)
	ngPath := filepath.Join(dir, "bench.pcapng")
	if err := os.WriteFile(ngPath, ngFile, 0o644); err != nil {
		t.Fatal(err)
	}
	fields := []string{"-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len"}
	if a, b := tshark(t, append([]string{"-r", path}, fields...)...), tshark(t, append([]string{"-r", ngPath}, fields...)...); a != b {
		t.Error("tshark reads different packets from the pcapng file")
	}
}

// checkTsharkFlows dissects every packet and rebuilds the flows from
// tshark's fields: counts must equal the truth exactly, every checksum must
// be verified good, and where pl is given, DNS names and answers, TLS SNI and
// HTTP Host must be the planned ones.
func checkTsharkFlows(t *testing.T, path string, truth *Truth, pl *benchPlanner) {
	t.Helper()
	fieldNames := []string{"frame.len", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.srcport", "tcp.dstport",
		"udp.srcport", "udp.dstport", "ip.len", "ipv6.plen", "tcp.len", "udp.length",
		"ip.checksum.status", "tcp.checksum.status", "udp.checksum.status",
		"dns.qry.name", "dns.a", "dns.flags.response", "tls.handshake.extensions_server_name", "http.host"}
	args := append([]string{"-r", path}, checksumPrefs...)
	args = append(args, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f")
	for _, f := range fieldNames {
		args = append(args, "-e", f)
	}
	type seen struct {
		FlowTruth
		names, answers, sni, host []string
	}
	flows := map[tupleKey]*seen{}
	var order []*seen
	lines := strings.Split(strings.TrimSuffix(tshark(t, args...), "\n"), "\n")
	if len(lines) != int(truth.Packets) {
		t.Fatalf("tshark reads %d packets, truth has %d", len(lines), truth.Packets)
	}
	snapped := false
	for i, line := range lines {
		v := strings.Split(line, "\t")
		if len(v) != len(fieldNames) {
			t.Fatalf("packet %d: %d fields", i+1, len(v))
		}
		num := func(j int) uint64 {
			n, _ := strconv.ParseUint(v[j], 10, 64)
			return n
		}
		src, dst := v[1], v[2]
		ipLen := num(9)
		if src == "" {
			src, dst, ipLen = v[3], v[4], 40+num(10)
		} else if v[13] != "1" && !snapped {
			t.Fatalf("packet %d: IPv4 checksum status %q", i+1, v[13])
		}
		proto, sport, dport, payload, ck := uint8(ProtoTCP), v[5], v[6], num(11), v[14]
		if sport == "" {
			proto, sport, dport, payload, ck = ProtoUDP, v[7], v[8], num(12)-8, v[15]
		}
		if ck != "1" && pl != nil {
			t.Fatalf("packet %d: transport checksum status %q", i+1, ck)
		}
		if pl == nil {
			snapped = true // truncated frames cannot be verified
		}
		a := netip.AddrPortFrom(netip.MustParseAddr(src), uint16(mustAtoi(t, sport)))
		b := netip.AddrPortFrom(netip.MustParseAddr(dst), uint16(mustAtoi(t, dport)))
		key := makeTupleKey(proto, a, b)
		f := flows[key]
		if f == nil {
			f = &seen{FlowTruth: FlowTruth{Proto: proto, OrigAddr: a.Addr(), OrigPort: a.Port(), RespAddr: b.Addr(), RespPort: b.Port()}}
			flows[key] = f
			order = append(order, f)
		}
		counts := [4]*uint64{&f.OrigPkts, &f.OrigBytes, &f.OrigIPBytes, &f.OrigFrameBytes}
		if a.Addr() != f.OrigAddr || a.Port() != f.OrigPort {
			counts = [4]*uint64{&f.RespPkts, &f.RespBytes, &f.RespIPBytes, &f.RespFrameBytes}
		}
		*counts[0]++
		*counts[1] += payload
		*counts[2] += ipLen
		*counts[3] += num(0)
		if proto == ProtoUDP && pl != nil && v[16] == "" {
			t.Fatalf("packet %d: UDP packet not dissected as DNS", i+1)
		}
		if v[16] != "" && v[18] == "0" {
			f.names = append(f.names, v[16])
		}
		if v[17] != "" {
			f.answers = append(f.answers, v[17])
		}
		if v[19] != "" {
			f.sni = append(f.sni, v[19])
		}
		if v[20] != "" {
			f.host = append(f.host, v[20])
		}
	}
	if len(order) != len(truth.Flows) {
		t.Fatalf("tshark finds %d flows, truth has %d", len(order), len(truth.Flows))
	}
	for i, f := range order {
		want := truth.Flows[i]
		got := f.FlowTruth
		got.Start, got.End, got.ConnState = want.Start, want.End, want.ConnState
		if got != want {
			t.Fatalf("flow %d:\ntshark %+v\n truth %+v", i, got, want)
		}
		if pl == nil {
			continue
		}
		it := pl.items[i]
		if it.dns {
			q := &pl.dnss[it.idx]
			if len(f.names) != 1+q.Retries || f.names[0] != q.Name {
				t.Fatalf("flow %d: DNS queries %q, want %q", i, f.names, q.Name)
			}
			if !q.Unanswered && (len(f.answers) != 1 || f.answers[0] != q.Answer.String()) {
				t.Fatalf("flow %d: DNS answers %q, want %v", i, f.answers, q.Answer)
			}
			continue
		}
		c := &pl.tcps[it.idx]
		switch {
		case c.App == AppTLS && (len(f.sni) != 1 || f.sni[0] != c.ServerName):
			t.Fatalf("flow %d: TLS SNI %q, want %q", i, f.sni, c.ServerName)
		case c.App == AppHTTP && (len(f.host) == 0 || f.host[0] != c.ServerName):
			t.Fatalf("flow %d: HTTP Host %q, want %q", i, f.host, c.ServerName)
		case c.App != AppTLS && len(f.sni) > 0, c.App != AppHTTP && len(f.host) > 0:
			t.Fatalf("flow %d: unexpected SNI %q or Host %q", i, f.sni, f.host)
		}
	}
}

func mustAtoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

// checkTsharkConv compares `tshark -z conv,tcp -z conv,udp` with the truth:
// frames exactly, bytes (frame lengths) as tshark prints them, which above
// 10 000 is a truncated count of kB or MB.
func checkTsharkConv(t *testing.T, path string, truth *Truth) {
	t.Helper()
	out := tshark(t, "-r", path, "-q", "-z", "conv,tcp", "-z", "conv,udp")
	byKey := map[tupleKey]*FlowTruth{}
	for i := range truth.Flows {
		f := &truth.Flows[i]
		byKey[makeTupleKey(f.Proto, netip.AddrPortFrom(f.OrigAddr, f.OrigPort), netip.AddrPortFrom(f.RespAddr, f.RespPort))] = f
	}
	proto, n := uint8(0), 0
	for line := range strings.Lines(out) {
		switch {
		case strings.HasPrefix(line, "TCP Conversations"):
			proto = ProtoTCP
			continue
		case strings.HasPrefix(line, "UDP Conversations"):
			proto = ProtoUDP
			continue
		}
		w := strings.Fields(line)
		if len(w) != 14 || w[1] != "<->" {
			continue
		}
		a, b := parseAddrPort(t, w[0]), parseAddrPort(t, w[2])
		f := byKey[makeTupleKey(proto, a, b)]
		if f == nil {
			t.Fatalf("tshark conversation %s <-> %s (%d) is not in the truth", a, b, proto)
		}
		delete(byKey, makeTupleKey(proto, a, b))
		n++
		// "<-" is B to A, "->" A to B
		ab, ba := [2]uint64{f.OrigPkts, f.OrigFrameBytes}, [2]uint64{f.RespPkts, f.RespFrameBytes}
		if a.Addr() != f.OrigAddr || a.Port() != f.OrigPort {
			ab, ba = ba, ab
		}
		got := strings.Join(w[3:12], " ")
		want := fmt.Sprintf("%d %s %d %s %d %s", ba[0], wiresharkSize(ba[1]), ab[0], wiresharkSize(ab[1]),
			ab[0]+ba[0], wiresharkSize(ab[1]+ba[1]))
		if got != want {
			t.Fatalf("conversation %s <-> %s: tshark %q, truth %q", a, b, got, want)
		}
	}
	if n != len(truth.Flows) {
		t.Fatalf("tshark lists %d conversations, truth has %d", n, len(truth.Flows))
	}
}

func parseAddrPort(t *testing.T, s string) netip.AddrPort {
	i := strings.LastIndexByte(s, ':')
	return netip.AddrPortFrom(netip.MustParseAddr(s[:i]), uint16(mustAtoi(t, s[i+1:])))
}

// wiresharkSize formats a byte count as Wireshark's format_size does with SI
// prefixes: exact below 10 000, else truncated to the largest prefix that
// leaves at least 10.
func wiresharkSize(n uint64) string {
	for _, p := range []struct {
		div  uint64
		unit string
	}{{1e12, "TB"}, {1e9, "GB"}, {1e6, "MB"}, {1e3, "kB"}} {
		if n/p.div >= 10 {
			return fmt.Sprintf("%d %s", n/p.div, p.unit)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// TestTsharkSeesDamage is the control for the checks above: damage a few
// frames on purpose and the same tshark filter must report each of them.
func TestTsharkSeesDamage(t *testing.T) {
	if !haveTshark(t) {
		t.Skip("tshark not installed")
	}
	var buf bytes.Buffer
	pw, err := NewPcapWriter(&buf, LinkTypeEthernet, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	// The TCP conversation is frames 0–9 (handshake, two messages with their
	// ACKs, FIN exchange), the DNS lookup frames 10 and 11.
	dw := &damager{w: pw, damage: map[int]func(f []byte){
		2:  func(f []byte) { f[22]-- },          // IPv4 TTL: bad IP header checksum
		5:  func(f []byte) { f[len(f)-1] ^= 1 }, // TCP payload: bad TCP checksum
		10: func(f []byte) { f[len(f)-1] ^= 1 }, // DNS query payload: bad UDP checksum
		11: func(f []byte) { // response claiming 9 questions, checksum off: malformed only
			f[14+20+8+5] = 9
			f[14+20+6], f[14+20+7] = 0, 0
		},
	}}
	m := NewMixer(dw, 0)
	c := &TCPConv{Orig: client, Resp: server, Start: t0, Messages: msgs(100, 100)}
	q := &DNSQuery{Client: client, Server: Endpoint{Addr: netip.MustParseAddr("10.0.0.53"), Port: 53},
		Start: t0.Add(time.Minute), Name: "www.example.com", Answer: server.Addr}
	if err := m.AddTCP(c); err != nil {
		t.Fatal(err)
	}
	if err := m.Advance(q.Start); err != nil {
		t.Fatal(err)
	}
	if err := m.AddDNS(q); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Finish(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "damaged.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// frame numbers count from 1; damage keys count from 0
	if got, want := tsharkBadFrames(t, path), []string{"3", "6", "11", "12"}; !slices.Equal(got, want) {
		t.Fatalf("tshark reports frames %v, damaged %v", got, want)
	}
}

type damager struct {
	w      PacketWriter
	n      int
	damage map[int]func(f []byte)
	buf    []byte
}

func (d *damager) WritePacket(ts int64, f []byte, wire int) error {
	if fn := d.damage[d.n]; fn != nil {
		d.buf = append(d.buf[:0], f...)
		fn(d.buf)
		f = d.buf
	}
	d.n++
	return d.w.WritePacket(ts, f, wire)
}

func (d *damager) Flush() error { return d.w.Flush() }

// BenchmarkWriteBench measures generating the default 2 M-packet capture
// into a pcap writer that discards its output.
func BenchmarkWriteBench(b *testing.B) {
	b.ReportAllocs()
	var packets, bytes uint64
	for b.Loop() {
		w, err := NewPcapWriter(io.Discard, LinkTypeEthernet, 0, true)
		if err != nil {
			b.Fatal(err)
		}
		truth, err := WriteBench(w, BenchConfig{Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		packets += truth.Packets
		bytes += truth.Bytes
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(packets)/sec, "packets/s")
	b.ReportMetric(float64(bytes)/sec/1e6, "MB/s")
	b.ReportMetric(float64(packets)/float64(b.N), "packets/op")
}
