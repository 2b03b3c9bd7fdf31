package synth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/flow"
)

// smallScenario is the shape the read-back tests use: short and small, with
// a bulk exfiltration scaled down, so that every check runs in seconds.
func smallScenario(profile string, variants ...string) ScenarioConfig {
	return ScenarioConfig{Profile: profile, Seed: 7, Hosts: 12, Duration: 50 * time.Minute,
		ExfilBytes: 2 << 20, Variants: variants}
}

func writeScenarioPcap(t testing.TB, cfg ScenarioConfig) (*ScenarioTruth, []scFlow, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewPcapWriter(&buf, LinkTypeEthernet, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	truth, flows, err := writeScenario(w, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return truth, flows, buf.Bytes()
}

func TestScenarioDeterministic(t *testing.T) {
	cfg := smallScenario("enterprise", "ipv6", "vlan", "erspan", "dup")
	hash := func(cfg ScenarioConfig) ([32]byte, []byte) {
		truth, _, b := writeScenarioPcap(t, cfg)
		j, err := json.Marshal(truth)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b), j
	}
	a, ja := hash(cfg)
	b, jb := hash(cfg)
	if a != b || !bytes.Equal(ja, jb) {
		t.Fatal("same seed, different bytes")
	}
	other := cfg
	other.Seed++
	if c, jc := hash(other); c == a || bytes.Equal(jc, ja) {
		t.Fatal("different seeds, same bytes")
	}
}

func TestScenarioConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  ScenarioConfig
		want string
	}{
		{ScenarioConfig{Profile: "nope"}, `unknown profile "nope"`},
		{ScenarioConfig{Hosts: 3}, "hosts 3 outside"},
		{ScenarioConfig{Duration: time.Minute}, "duration 1m0s outside"},
		{ScenarioConfig{Jitter: 0.95}, "jitter 0.95 above 0.9"},
		{ScenarioConfig{Missed: 0.6}, "missed 0.6 above 0.5"},
		{ScenarioConfig{Period: 500 * time.Millisecond}, "period 500ms outside"},
		{ScenarioConfig{Variants: []string{"ipv6,gre"}}, `unknown variant "gre"`},
		{ScenarioConfig{Variants: []string{"erspan", "vxlan"}}, "exclude each other"},
		{ScenarioConfig{Snaplen: 60}, "snaplen 60 below 96"},
	} {
		_, err := WriteScenario(discard{}, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestScenarioProfiles: every profile holds the activities it promises,
// every trap, sane truth fields, and a JSON form that reads back.
func TestScenarioProfiles(t *testing.T) {
	traps := []string{"ntp", "update_check", "monitoring", "download", "backup", "browsing", "internal_dns",
		"admin_jump", "vuln_scanner", "file_share", "push_channel"}
	want := map[string][]string{
		"enterprise": {"beacon/https-sni", "beacon/http", "beacon/cdn-shared-ip", "beacon/sleep-burst", "beacon/long-lived",
			"long_connection/long-lived", "exfil/bulk", "exfil/low-and-slow", "dns_exfil/txt", "lateral_movement/psexec",
			"lateral_movement/rdp-chain", "lateral_movement/winrm", "lateral_movement/ssh", "scan/syn"},
		"beacons": {"beacon/https-sni", "beacon/http", "beacon/cdn-shared-ip", "beacon/sleep-burst", "beacon/long-lived"},
		"exfil":   {"exfil/bulk", "exfil/low-and-slow", "dns_exfil/txt", "dns_exfil/a"},
		"lateral": {"lateral_movement/psexec", "lateral_movement/rdp-chain", "lateral_movement/winrm", "lateral_movement/ssh", "scan/syn"},
		"benign":  nil,
		"mirror":  {"beacon/https-sni", "exfil/bulk", "lateral_movement/psexec", "scan/syn"},
		"proxy":   {"beacon/proxy-connect", "beacon/sleep-burst", "beacon/long-lived", "exfil/bulk", "dns_exfil/txt"},
	}
	if len(want) != len(Profiles()) {
		t.Fatalf("profiles %v", Profiles())
	}
	for _, p := range Profiles() {
		t.Run(p, func(t *testing.T) {
			if ProfileDescription(p) == "" {
				t.Error("no description")
			}
			cfg := smallScenario(p)
			cfg.Duration = 2 * time.Hour
			truth, err := WriteScenario(discard{}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]int{}
			ids := map[string]bool{}
			for _, a := range truth.Activities {
				k := a.Kind
				if !a.Benign {
					k += "/" + a.Variant
				}
				have[k]++
				if ids[a.ID] {
					t.Errorf("duplicate id %s", a.ID)
				}
				ids[a.ID] = true
				if a.Flows == 0 || !a.Src.IsValid() || a.Start.Before(truth.Start) || a.End.Before(a.Start) || a.End.After(truth.End) {
					t.Errorf("%s: flows %d src %v %v..%v", a.ID, a.Flows, a.Src, a.Start, a.End)
				}
				if !a.Benign && len(a.MITRE) == 0 {
					t.Errorf("%s: no MITRE ids", a.ID)
				}
			}
			for _, k := range append(slices.Clone(traps), want[p]...) {
				if have[k] == 0 {
					t.Errorf("no %s activity (have %v)", k, have)
				}
			}
			if p == "beacons" && have["beacon/https-sni"]+have["beacon/http"]+have["beacon/cdn-shared-ip"]+have["beacon/sleep-burst"] < 24 {
				t.Errorf("beacon grid too small: %v", have)
			}
			if p == "benign" {
				for _, a := range truth.Activities {
					if !a.Benign {
						t.Errorf("benign profile has %s", a.ID)
					}
				}
			}
			if truth.Hosts != cfg.Hosts+len(newScPlanner(mustResolve(t, cfg)).net.servers) || truth.BenignPairs == 0 ||
				truth.Packets == 0 || truth.Flows == 0 || len(truth.Allowlist) != 1 {
				t.Errorf("truth totals: hosts %d pairs %d packets %d flows %d allowlist %v",
					truth.Hosts, truth.BenignPairs, truth.Packets, truth.Flows, truth.Allowlist)
			}
			b, err := json.Marshal(truth)
			if err != nil {
				t.Fatal(err)
			}
			var back ScenarioTruth
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if b2, _ := json.Marshal(&back); !bytes.Equal(b, b2) {
				t.Error("truth JSON does not round-trip")
			}
		})
	}
}

func mustResolve(t *testing.T, cfg ScenarioConfig) scSetup {
	t.Helper()
	s, err := cfg.resolve()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestScenarioKnobs: sweep knobs override every beacon's parameters, and
// the beats honour them.
func TestScenarioKnobs(t *testing.T) {
	cfg := smallScenario("beacons")
	cfg.Duration = 3 * time.Hour
	cfg.Period, cfg.Jitter, cfg.Missed = 3*time.Minute, -1, -1
	truth, err := WriteScenario(discard{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range truth.Activities {
		if a.Kind != "beacon" || a.Variant == "long-lived" {
			continue
		}
		n++
		if a.Period != cfg.Period || a.Jitter != 0 || a.Missed != 0 {
			t.Errorf("%s: period %v jitter %v missed %v", a.ID, a.Period, a.Jitter, a.Missed)
		}
		// Without jitter the gaps between bursts are the period to within
		// the DNS lookup that may precede a call.
		step := max(a.BurstOf, 1)
		for i := step; i < len(a.Beats); i += step {
			if d := a.Beats[i].Sub(a.Beats[i-step]) - a.Period; d < -500*time.Millisecond || d > 500*time.Millisecond {
				t.Fatalf("%s: beat %d after %v", a.ID, i, a.Beats[i].Sub(a.Beats[i-step]))
			}
		}
		// Beacons start within the first twentieth of the scenario.
		if want := int((cfg.Duration-cfg.Duration/20)/cfg.Period) - 2; len(a.Beats)/step < want {
			t.Errorf("%s: %d beats, want at least %d", a.ID, len(a.Beats)/step, want)
		}
	}
	if n == 0 {
		t.Fatal("no beacons")
	}
}

// sensorRun replays a capture through our own reader and flow table.
type sensorRun struct {
	final []flow.Record
	stats capture.Stats
}

func runSensor(t *testing.T, path string, dedup time.Duration) *sensorRun {
	t.Helper()
	src, err := pcapfile.OpenSource([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out sensorRun
	emit := func(r *flow.Record) {
		if r.Final {
			c := *r
			if r.App != nil {
				a := *r.App
				c.App = &a
			}
			if r.Encap != nil {
				e := *r.Encap
				c.Encap = &e
			}
			out.final = append(out.final, c)
		}
	}
	s := capture.NewSensor(capture.Config{Dedup: dedup}, emit)
	if err := s.Run(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	out.stats = s.Stats()
	return &out
}

type tuple5 struct {
	proto      uint8
	orig, resp netip.AddrPort
}

func recTuple(r *flow.Record) tuple5 {
	return tuple5{uint8(r.Proto), netip.AddrPortFrom(r.OrigAddr, r.OrigPort), netip.AddrPortFrom(r.RespAddr, r.RespPort)}
}

// nameOf is the name a record carries: TLS SNI, proxy target host, HTTP
// Host (without a port) or DNS query.
func nameOf(r *flow.Record) string {
	if r.App == nil {
		return ""
	}
	for _, s := range []string{r.App.TLSSNI, r.App.HTTPProxyTarget, r.App.HTTPHost, r.App.DNSQuery} {
		if s != "" {
			if h, _, ok := strings.Cut(s, ":"); ok {
				return h
			}
			return s
		}
	}
	return ""
}

// matches is how an evaluation would tie a record to an activity from the
// truth alone: source (or a chain hop), destination, port, protocol, name
// and time.
func matches(a *Activity, r *flow.Record) bool {
	if r.Proto.String() != a.Proto || r.Start.Before(a.Start) || r.Start.After(a.End) {
		return false
	}
	if r.OrigAddr != a.Src && !slices.Contains(a.Chain[:max(len(a.Chain)-1, 0)], r.OrigAddr) {
		return false
	}
	if len(a.Dsts) > 0 && !slices.Contains(a.Dsts, r.RespAddr) {
		return false
	}
	if a.DstPort != 0 && r.RespPort != a.DstPort && a.Variant != "psexec" {
		return false
	}
	if a.FQDN != "" {
		n := nameOf(r)
		if n != a.FQDN && !strings.HasSuffix(n, "."+a.FQDN) {
			return false
		}
	}
	return true
}

type readBackCase struct {
	name  string
	cfg   ScenarioConfig
	dedup time.Duration
	// dup: every frame is there twice. With dedup set, the sensor must
	// remove every copy (it compares the innermost IP packet, so ERSPAN
	// copies whose outer headers differ are caught too); without it,
	// every count doubles.
	dup      bool
	encap    string
	vlan     bool
	pcapng   bool
	checkDNS bool
}

var readBackCases = []readBackCase{
	{name: "enterprise-ipv6", cfg: smallScenario("enterprise", "ipv6"), checkDNS: true},
	{name: "proxy", cfg: smallScenario("proxy")},
	{name: "beacons", cfg: smallScenario("beacons"), checkDNS: true},
	{name: "exfil", cfg: smallScenario("exfil"), pcapng: true},
	{name: "lateral-vlan-dup", cfg: smallScenario("lateral", "vlan", "dup"), dedup: 5 * time.Millisecond, dup: true, vlan: true},
	{name: "lateral-dup-nodedup", cfg: smallScenario("lateral", "dup"), dup: true},
	{name: "benign-vxlan", cfg: smallScenario("benign", "vxlan"), encap: "vxlan"},
	{name: "mirror", cfg: smallScenario("mirror"), dedup: 5 * time.Millisecond, dup: true, encap: "erspan", vlan: true},
}

// TestScenarioReadBack replays scenarios through pcapfile and the sensor's
// flow table: every flow of the truth is there with its exact counts, every
// activity's flows are found from the truth's fields alone, exfiltrated
// volumes add up, beacon flows start at the beats, and hosts looked names up
// before connecting to them.
func TestScenarioReadBack(t *testing.T) {
	for _, tc := range readBackCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.cfg.Pcapng = tc.pcapng
			if _, err := WriteScenarioFiles(dir, tc.cfg); err != nil {
				t.Fatal(err)
			}
			name := "scenario.pcap"
			if tc.pcapng {
				name = "scenario.pcapng"
			}
			// Check the files on disk: truth.json as a consumer reads it.
			var truth ScenarioTruth
			if b, err := os.ReadFile(filepath.Join(dir, "truth.json")); err != nil {
				t.Fatal(err)
			} else if err := json.Unmarshal(b, &truth); err != nil {
				t.Fatal(err)
			}
			_, flows, err := writeScenario(discard{}, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			run := runSensor(t, filepath.Join(dir, name), tc.dedup)
			checkReadBack(t, tc, &truth, flows, run)
		})
	}
}

func checkReadBack(t *testing.T, tc readBackCase, truth *ScenarioTruth, flows []scFlow, run *sensorRun) {
	if run.stats.Packets != truth.Packets {
		t.Errorf("sensor read %d packets, truth has %d", run.stats.Packets, truth.Packets)
	}
	if n := run.stats.DecodeErrorTotal(); n > 0 {
		t.Errorf("%d decode errors: %v", n, run.stats.DecodeErrorsByKind())
	}
	if truth.Flows != len(flows) {
		t.Fatalf("truth has %d flows, the generator %d", truth.Flows, len(flows))
	}
	// One record per flow; a duplicate arriving after a flow closed may
	// open a second record of the same 5-tuple, which is summed.
	recs := map[tuple5]*flow.Record{}
	var list []*flow.Record
	splits := 0
	for i := range run.final {
		r := &run.final[i]
		k := recTuple(r)
		m := recs[k]
		if m == nil {
			recs[k] = r
			list = append(list, r)
			continue
		}
		splits++
		m.OrigPkts += r.OrigPkts
		m.RespPkts += r.RespPkts
		m.OrigBytes += r.OrigBytes
		m.RespBytes += r.RespBytes
		m.OrigIPBytes += r.OrigIPBytes
		m.RespIPBytes += r.RespIPBytes
		if r.Start.Before(m.Start) {
			m.Start = r.Start
		}
		if r.End.After(m.End) {
			m.End = r.End
		}
	}
	if splits > 0 && !tc.dup {
		t.Errorf("%d flows split into several records", splits)
	}
	if len(recs) != len(flows) {
		t.Errorf("sensor found %d flows, truth has %d", len(recs), len(flows))
	}
	doubled := tc.dup && run.stats.Duplicates == 0
	if tc.dup {
		t.Logf("%d packets, %d removed as duplicates, %d flows split", run.stats.Packets, run.stats.Duplicates, splits)
	}
	if tc.dup && tc.dedup > 0 {
		// De-duplication compares the innermost IP packet, so it must
		// catch every copy, tunnelled or not, and the counts are exact.
		if 2*run.stats.Duplicates != run.stats.Packets || splits > 0 {
			t.Errorf("dedup removed %d of %d packets (want half) with %d split flows", run.stats.Duplicates, run.stats.Packets, splits)
		}
		tc.dup = false
	}

	// Every flow, exactly; with duplicates the counts the sensor cannot
	// know are bounded instead.
	bad := 0
	var extra uint64
	for _, f := range flows {
		k := tuple5{f.Proto, netip.AddrPortFrom(f.OrigAddr, f.OrigPort), netip.AddrPortFrom(f.RespAddr, f.RespPort)}
		r := recs[k]
		if r == nil {
			t.Errorf("flow %+v missing", k)
			bad++
			continue
		}
		want := f.FlowTruth
		ok := true
		switch {
		case doubled:
			want.OrigPkts, want.RespPkts = 2*f.OrigPkts, 2*f.RespPkts
			want.OrigIPBytes, want.RespIPBytes = 2*f.OrigIPBytes, 2*f.RespIPBytes
			if f.Proto == ProtoUDP {
				want.OrigBytes, want.RespBytes = 2*f.OrigBytes, 2*f.RespBytes
			}
		case tc.dup:
			// Missed duplicates add packets (and UDP bytes), at most
			// doubling them.
			got := r.OrigPkts + r.RespPkts
			if got < f.OrigPkts+f.RespPkts || r.OrigPkts > 2*f.OrigPkts || r.RespPkts > 2*f.RespPkts ||
				f.Proto == ProtoTCP && (r.OrigBytes != f.OrigBytes || r.RespBytes != f.RespBytes) {
				ok = false
			}
			extra += got - (f.OrigPkts + f.RespPkts)
			want.OrigPkts, want.RespPkts = r.OrigPkts, r.RespPkts
			want.OrigIPBytes, want.RespIPBytes = r.OrigIPBytes, r.RespIPBytes
			want.OrigBytes, want.RespBytes = r.OrigBytes, r.RespBytes
		}
		if r.OrigPkts != want.OrigPkts || r.RespPkts != want.RespPkts || r.OrigBytes != want.OrigBytes || r.RespBytes != want.RespBytes ||
			r.OrigIPBytes != want.OrigIPBytes || r.RespIPBytes != want.RespIPBytes || !r.Start.Equal(f.Start) ||
			!tc.dup && (r.ConnState != f.ConnState || !r.End.Equal(f.End)) {
			ok = false
		}
		switch {
		case !ok:
			t.Errorf("flow %+v:\n got  pkts %d/%d bytes %d/%d ip %d/%d %s %v..%v\n want pkts %d/%d bytes %d/%d ip %d/%d %s %v..%v",
				k, r.OrigPkts, r.RespPkts, r.OrigBytes, r.RespBytes, r.OrigIPBytes, r.RespIPBytes, r.ConnState, r.Start, r.End,
				want.OrigPkts, want.RespPkts, want.OrigBytes, want.RespBytes, want.OrigIPBytes, want.RespIPBytes, want.ConnState, want.Start, want.End)
			bad++
		case tc.encap == "" && !tc.vlan && !tc.dup && (r.OrigFrameBytes != f.OrigFrameBytes || r.RespFrameBytes != f.RespFrameBytes):
			t.Errorf("flow %+v: frame bytes %d/%d, want %d/%d", k, r.OrigFrameBytes, r.RespFrameBytes, f.OrigFrameBytes, f.RespFrameBytes)
			bad++
		case tc.encap != "" && (r.Encap == nil || r.Encap.Tunnel != tc.encap):
			t.Errorf("flow %+v: encapsulation %+v, want %s", k, r.Encap, tc.encap)
			bad++
		case tc.vlan && (r.Encap == nil || len(r.Encap.VLANs) != 1 || (r.Encap.VLANs[0] != 10 && r.Encap.VLANs[0] != 20)):
			t.Errorf("flow %+v: encapsulation %+v, want VLAN 10 or 20", k, r.Encap)
			bad++
		}
		if bad > 10 {
			t.Fatal("too many mismatches")
		}
	}
	if tc.dup && !doubled && extra > truth.Packets/200 {
		t.Errorf("%d duplicates survived de-duplication (of %d)", extra, truth.Packets/2)
	}

	// Activities: the truth's fields alone find exactly each attack's
	// flows, volumes and beats; traps find at least theirs.
	byAct := map[string][]*flow.Record{}
	for _, r := range list {
		for j := range truth.Activities {
			a := &truth.Activities[j]
			if matches(a, r) {
				byAct[a.ID] = append(byAct[a.ID], r)
			}
		}
	}
	for i := range truth.Activities {
		a := &truth.Activities[i]
		m := byAct[a.ID]
		if a.Benign {
			if len(m) < a.Flows {
				t.Errorf("%s: %d matching flows, truth says %d", a.ID, len(m), a.Flows)
			}
			continue
		}
		var out, in uint64
		var starts []time.Time
		for _, r := range m {
			o, i := r.OrigBytes, r.RespBytes
			if doubled && r.Proto == flow.ProtoUDP {
				o, i = o/2, i/2
			}
			out += o
			in += i
			starts = append(starts, r.Start)
		}
		if !tc.dup || doubled || a.Proto == "tcp" {
			if len(m) != a.Flows || out != a.BytesOut || in != a.BytesIn {
				t.Errorf("%s (%s %v): matched %d flows %d/%d bytes, truth %d flows %d/%d bytes",
					a.ID, a.Variant, a.Src, len(m), out, in, a.Flows, a.BytesOut, a.BytesIn)
				continue
			}
		}
		slices.SortFunc(starts, time.Time.Compare)
		switch {
		case a.Variant == "long-lived":
			if len(m) != 1 || len(a.Beats) == 0 && a.Kind == "beacon" {
				t.Errorf("%s: %d flows, %d beats", a.ID, len(m), len(a.Beats))
			} else if a.Kind == "beacon" && (m[0].Start.After(a.Beats[0]) || m[0].End.Before(a.Beats[len(a.Beats)-1])) {
				t.Errorf("%s: beats %v..%v outside the flow %v..%v", a.ID, a.Beats[0], a.Beats[len(a.Beats)-1], m[0].Start, m[0].End)
			}
		case a.Kind == "beacon":
			if !slices.EqualFunc(starts, a.Beats, time.Time.Equal) {
				t.Errorf("%s: flow starts differ from the %d beats", a.ID, len(a.Beats))
			}
		}
	}
	// The generator labels every flow, and its labels agree with the
	// truth's endpoints, ports and counts.
	count := make([]int, len(truth.Activities))
	for _, f := range flows {
		if f.act < 0 {
			t.Fatalf("flow %v -> %v:%d has no activity", f.OrigAddr, f.RespAddr, f.RespPort)
		}
		a := &truth.Activities[f.act]
		count[f.act]++
		proto := map[uint8]string{ProtoTCP: "tcp", ProtoUDP: "udp"}[f.Proto]
		if f.OrigAddr != a.Src && !slices.Contains(a.Chain, f.OrigAddr) || !slices.Contains(a.Dsts, f.RespAddr) ||
			a.DstPort != 0 && a.Variant != "psexec" && f.RespPort != a.DstPort || a.Proto != "" && a.Proto != proto {
			t.Fatalf("%s: flow %v -> %v:%d/%s outside src %v dsts %v port %d/%s",
				a.ID, f.OrigAddr, f.RespAddr, f.RespPort, proto, a.Src, a.Dsts, a.DstPort, a.Proto)
		}
	}
	for i, a := range truth.Activities {
		if a.Kind != "long_connection" && count[i] != a.Flows {
			t.Errorf("%s: the generator labelled %d flows, truth says %d", a.ID, count[i], a.Flows)
		}
	}

	if tc.checkDNS {
		checkLookups(t, list)
	}
	if tc.cfg.Profile == "proxy" {
		for _, r := range list {
			if scWorkstationNet4.Contains(r.OrigAddr) && r.Proto == flow.ProtoTCP && !r.RespAddr.IsPrivate() {
				t.Fatalf("a workstation bypasses the proxy: %v -> %v:%d", r.OrigAddr, r.RespAddr, r.RespPort)
			}
		}
	}
}

// checkLookups: every TCP connection from a workstation to an external
// address follows a DNS answer for that address to the same host.
func checkLookups(t *testing.T, recs []*flow.Record) {
	type answer struct {
		host netip.Addr
		addr string
	}
	first := map[answer]time.Time{}
	// A dual-stack host asks over IPv6; map its addresses to one host key.
	hostKey := func(a netip.Addr) netip.Addr {
		if a.Is6() {
			b := a.As16()
			j := int(b[14])<<8 | int(b[15])
			return netip.AddrFrom4([4]byte{10, 10, byte(1 + j/250), byte(1 + j%250)})
		}
		return a
	}
	for _, r := range recs {
		if r.App == nil || r.RespPort != 53 {
			continue
		}
		for _, a := range r.App.DNSAnswers {
			k := answer{hostKey(r.OrigAddr), a}
			if f, ok := first[k]; !ok || r.Start.Before(f) {
				first[k] = r.Start
			}
		}
	}
	n := 0
	for _, r := range recs {
		if r.Proto != flow.ProtoTCP || !(scWorkstationNet4.Contains(r.OrigAddr) || scWorkstationNet6.Contains(r.OrigAddr)) ||
			r.RespAddr.IsPrivate() {
			continue
		}
		n++
		f, ok := first[answer{hostKey(r.OrigAddr), r.RespAddr.String()}]
		if !ok || f.After(r.Start) {
			t.Fatalf("%v connected to %v:%d at %v without looking it up first", r.OrigAddr, r.RespAddr, r.RespPort, r.Start)
		}
	}
	if n == 0 {
		t.Fatal("no external connections")
	}
}

// TestScenarioSnaplen: frames are cut except those carrying names, and the
// truth keeps true sizes.
func TestScenarioSnaplen(t *testing.T) {
	cfg := smallScenario("enterprise")
	_, _, b := writeScenarioPcap(t, cfg)
	cut, whole := 0, 0
	for _, rec := range readPcap(t, b) {
		switch {
		case len(rec.data) == rec.wire:
			whole++
			if len(rec.data) > DefaultScenarioSnaplen && !appHead(rec.data) {
				t.Fatalf("a %d-byte frame without names kept whole", len(rec.data))
			}
		case len(rec.data) == DefaultScenarioSnaplen:
			cut++
		default:
			t.Fatalf("frame cut to %d of %d bytes", len(rec.data), rec.wire)
		}
	}
	if cut == 0 || whole == 0 {
		t.Fatalf("%d cut, %d whole", cut, whole)
	}
	cfg.Snaplen = -1
	_, _, b = writeScenarioPcap(t, cfg)
	for _, rec := range readPcap(t, b) {
		if len(rec.data) != rec.wire {
			t.Fatal("snaplen -1 cut a frame")
		}
	}
}

// tsharkScenario is the smaller shape the tshark checks use, tshark being
// about a hundred times slower than our reader.
func tsharkScenario(profile string, variants ...string) ScenarioConfig {
	cfg := smallScenario(profile, variants...)
	cfg.Hosts, cfg.Duration, cfg.ExfilBytes = 8, 30*time.Minute, 512<<10
	return cfg
}

// shorter shortens a tshark scenario whose frames cost more to dissect.
func shorter(cfg ScenarioConfig) ScenarioConfig {
	cfg.Duration = 20 * time.Minute
	return cfg
}

// TestScenarioTshark: an independent dissector finds no malformed frames or
// bad checksums, DNS answers mapping the truth's names to its addresses,
// the ClientHellos, HTTP requests and proxy CONNECTs of every named attack,
// and sees through VLAN, ERSPAN and VXLAN. One tshark pass per scenario.
func TestScenarioTshark(t *testing.T) {
	if !haveTshark(t) {
		t.Skip("tshark not installed: skipping the tshark cross-checks of scenarios")
	}
	for _, tc := range []struct {
		name  string
		cfg   ScenarioConfig
		outer func(f []string) bool
	}{
		{"enterprise-ipv6", tsharkScenario("enterprise", "ipv6"), nil},
		{"proxy", tsharkScenario("proxy"), nil},
		{"mirror", shorter(tsharkScenario("mirror")), func(f []string) bool { return f[tfERSPAN] != "" && f[tfVLAN] != "" }},
		{"exfil-vxlan", shorter(tsharkScenario("exfil", "vxlan")), func(f []string) bool { return f[tfVXLAN] != "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			truth, _, b := writeScenarioPcap(t, tc.cfg)
			path := filepath.Join(t.TempDir(), "scenario.pcap")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			checkTsharkScenario(t, path, truth, slices.Contains(tc.cfg.Variants, "dup") || tc.cfg.Profile == "mirror", tc.outer)
		})
	}
}

// Fields of the tshark pass.
const (
	tfNumber = iota
	tfMalformed
	tfSeverity
	tfIPSrc
	tfIPv6Src
	tfDNSResponse
	tfDNSName
	tfDNSA
	tfDNSAAAA
	tfSNI
	tfHTTPHost
	tfHTTPMethod
	tfHTTPURI
	tfERSPAN
	tfVLAN
	tfVXLAN
	tfSYN
	tfACK
	tfExpert
	tfCount
)

var tsharkScenarioFields = [tfCount]string{"frame.number", "_ws.malformed", "_ws.expert.severity", "ip.src", "ipv6.src",
	"dns.flags.response", "dns.qry.name", "dns.a", "dns.aaaa", "tls.handshake.extensions_server_name", "http.host",
	"http.request.method", "http.request.uri", "erspan.version", "vlan.id", "vxlan.vni",
	"tcp.flags.syn", "tcp.flags.ack", "_ws.expert.message"}

// tsharkTCPComplaints are the words of TCP analysis messages about
// sequence problems, none of which a capture without duplicates may have
// (bar retransmitted SYNs nobody answered).
var tsharkTCPComplaints = []string{"etransmission", "Out-Of-Order", "Dup ACK", "not captured", "wasn't captured",
	"indow", "Spurious", "Keep-Alive", "Lost"}

// tsharkError is the expert severity of errors (bad checksums, malformed).
const tsharkError = 0x800000

// checkTsharkScenario runs the tshark pass; dup says frames were
// duplicated (TCP analysis then rightly sees retransmissions), outer, when
// set, what every frame must be wrapped in.
func checkTsharkScenario(t *testing.T, path string, truth *ScenarioTruth, dup bool, outer func([]string) bool) {
	t.Helper()
	args := append([]string{"-r", path}, checksumPrefs...)
	args = append(args, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,")
	for _, f := range tsharkScenarioFields {
		args = append(args, "-e", f)
	}
	out := tshark(t, args...)
	answers := map[string][]string{}
	type key struct{ src, name string }
	hellos, hosts, connects := map[key]int{}, map[key]int{}, map[key]int{}
	last := func(s string) string { // inner addresses come last in tunnels
		f := strings.Split(s, ",")
		return f[len(f)-1]
	}
	answered := map[string]bool{}
	frames, outside := 0, 0
	var bad, odd []string
	for line := range strings.SplitSeq(strings.TrimSuffix(out, "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != tfCount {
			t.Fatalf("tshark line with %d fields: %q", len(f), line)
		}
		frames++
		if outer != nil && !outer(f) {
			outside++
		}
		severe := f[tfMalformed] != ""
		for sev := range strings.SplitSeq(f[tfSeverity], ",") {
			if v, err := strconv.Atoi(sev); err == nil && v >= tsharkError {
				severe = true
			}
		}
		if severe && len(bad) < 20 {
			bad = append(bad, f[tfNumber])
		}
		if !dup && f[tfExpert] != "" && !(f[tfSYN] == "1" && f[tfACK] == "0") {
			for _, w := range tsharkTCPComplaints {
				if strings.Contains(f[tfExpert], w) && len(odd) < 10 {
					odd = append(odd, f[tfNumber]+": "+f[tfExpert])
				}
			}
		}
		src := last(f[tfIPSrc])
		if f[tfIPv6Src] != "" {
			src = last(f[tfIPv6Src])
		}
		switch {
		case f[tfDNSResponse] == "1":
			answered[f[tfDNSName]] = true
			for _, a := range strings.Split(f[tfDNSA]+","+f[tfDNSAAAA], ",") {
				if a != "" {
					answers[f[tfDNSName]] = append(answers[f[tfDNSName]], a)
				}
			}
		case f[tfSNI] != "":
			hellos[key{src, f[tfSNI]}]++
		case f[tfHTTPMethod] == "CONNECT":
			host, _, _ := strings.Cut(f[tfHTTPURI], ":")
			connects[key{src, host}]++
		case f[tfHTTPHost] != "" && f[tfHTTPMethod] != "":
			host, _, _ := strings.Cut(f[tfHTTPHost], ":")
			hosts[key{src, host}]++
		}
	}
	if uint64(frames) != truth.Packets {
		t.Errorf("tshark reads %d frames, truth has %d", frames, truth.Packets)
	}
	if len(bad) > 0 {
		t.Errorf("tshark finds malformed or erroneous frames: %v", bad)
	}
	if len(odd) > 0 {
		t.Errorf("tshark TCP analysis complains: %q", odd)
	}
	if outside > 0 {
		t.Errorf("%d frames without the mirror encapsulation", outside)
	}
	// tshark dissects a duplicated TCP segment as a retransmission, without
	// the application layer, so each flow counts once.
	checked := 0
	for _, a := range truth.Activities {
		if a.Kind == "dns_exfil" {
			n := 0
			for name := range answered {
				if strings.HasSuffix(name, "."+a.FQDN) {
					n++
				}
			}
			if n != a.Flows {
				t.Errorf("%s: tshark sees answers to %d names under %s, truth %d queries", a.ID, n, a.FQDN, a.Flows)
			}
			checked++
		}
		if a.Benign || a.FQDN == "" || a.Proto != "tcp" || a.Kind == "long_connection" {
			continue
		}
		k := key{a.Src.String(), a.FQDN}
		switch {
		case a.DstPort == portProxy:
			if connects[k]+hosts[k] != a.Flows {
				t.Errorf("%s: tshark sees %d CONNECT and %d absolute-URI requests for %s, truth %d flows", a.ID, connects[k], hosts[k], a.FQDN, a.Flows)
			}
		case a.DstPort == 80:
			if hosts[k] != a.Flows {
				t.Errorf("%s: tshark sees %d HTTP requests with Host %s, truth %d flows", a.ID, hosts[k], a.FQDN, a.Flows)
			}
		default:
			if hellos[k] != a.Flows {
				t.Errorf("%s: tshark sees %d ClientHellos from %s with SNI %s, truth %d flows", a.ID, hellos[k], a.Src, a.FQDN, a.Flows)
			}
		}
		if a.DstPort != portProxy {
			for _, d := range a.Dsts {
				if !slices.Contains(answers[a.FQDN], d.String()) {
					t.Errorf("%s: no DNS answer maps %s to %v (answers %v)", a.ID, a.FQDN, d, answers[a.FQDN])
				}
			}
		}
		checked++
	}
	if checked == 0 {
		t.Error("no named activities checked")
	}
}
