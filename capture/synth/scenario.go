package synth

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Defaults of ScenarioConfig.
const (
	DefaultScenarioHosts    = 60
	DefaultScenarioDuration = 6 * time.Hour
	DefaultScenarioSnaplen  = 128
	// DefaultExfilBytes is the size of the bulk exfiltration upload. Real
	// incidents move hundreds of megabytes; the default keeps files small.
	DefaultExfilBytes = 24 << 20
)

// DefaultScenarioStart is the default packet time of a scenario's start: a
// Monday at 07:00 UTC, so a six-hour scenario covers the morning ramp-up of a
// working day.
var DefaultScenarioStart = time.Date(2026, 1, 5, 7, 0, 0, 0, time.UTC)

// ScenarioConfig selects and shapes a labelled traffic scenario. Zero fields
// take the profile's defaults.
type ScenarioConfig struct {
	// Profile names the scenario (see Profiles); empty means "enterprise".
	Profile string
	Seed    int64
	// Hosts is the number of internal workstations (10.10.0.0/16); a fixed
	// set of servers (10.1.0.0/24) comes on top. Default 60, at least 8.
	Hosts int
	// Duration is the span of packet time; default 6h, at least 10 minutes,
	// at most 31 days.
	Duration time.Duration
	// Start is the packet time of the beginning; default
	// DefaultScenarioStart.
	Start time.Time
	// Snaplen cuts frames to this many bytes (default 128; negative keeps
	// whole frames). Frames that start an application message a sensor
	// parses (DNS, TLS handshake, HTTP request) are always kept whole, and
	// the cut applies to the mirrored frame, tunnel headers coming on top.
	// The truth keeps true sizes.
	Snaplen int

	// Knobs for sweeps; they override every beacon's parameters. Zero means
	// the profile's default; a negative Jitter or Missed means exactly zero.
	Period time.Duration
	Jitter float64 // 0 .. 0.9, uniform ± fraction of the period
	Missed float64 // 0 .. 0.5, fraction of beats skipped
	// Variants add capture variants to the profile's: "ipv6" (a third of
	// the workstations dual-stack), "vlan" (802.1Q tags), "erspan" (ERSPAN
	// type II over GRE), "vxlan", "dup" (every frame twice) and "proxy"
	// (all web traffic through an explicit proxy).
	Variants []string
	// ExfilBytes is the size of the bulk exfiltration; zero means
	// DefaultExfilBytes. The low-and-slow exfiltration sends a 24th of
	// it every half hour.
	ExfilBytes int64
	// Pcapng makes WriteScenarioFiles write scenario.pcapng instead of
	// scenario.pcap.
	Pcapng bool
}

// scProfile is what a named profile puts into a scenario.
type scProfile struct {
	name, desc string
	// attacks
	beacons, beaconGrid, exfil, lateral, scan bool
	variants                                  []string
}

var scProfiles = []scProfile{
	{name: "enterprise", desc: "benign traps plus beacons of every variant, exfiltration (bulk, low-and-slow, DNS tunnel), lateral movement and an internal port scan",
		beacons: true, exfil: true, lateral: true, scan: true},
	{name: "beacons", desc: "benign traps plus a grid of beacons over period x jitter x missed beats (the sweep profile)",
		beaconGrid: true},
	{name: "exfil", desc: "benign traps plus bulk, low-and-slow and DNS-tunnel exfiltration",
		exfil: true},
	{name: "lateral", desc: "benign traps plus PsExec-like, RDP-chain, WinRM and SSH lateral movement and an internal port scan",
		lateral: true, scan: true},
	{name: "benign", desc: "benign traps only: NTP, update checks, monitoring, downloads, backups, browsing, DNS, admin jump sessions, vulnerability scanner (false-positive rate)"},
	{name: "mirror", desc: "enterprise seen through a mirror: 802.1Q tags inside ERSPAN type II, every frame duplicated",
		beacons: true, exfil: true, lateral: true, scan: true, variants: []string{"vlan", "erspan", "dup"}},
	{name: "proxy", desc: "enterprise with all web traffic through the explicit proxy 10.1.0.8:3128 (CONNECT and absolute-URI requests)",
		beacons: true, exfil: true, lateral: true, scan: true, variants: []string{"proxy"}},
}

var scVariants = []string{"ipv6", "vlan", "erspan", "vxlan", "dup", "proxy"}

// Profiles returns the scenario profile names, the default first.
func Profiles() []string {
	names := make([]string, len(scProfiles))
	for i, p := range scProfiles {
		names[i] = p.name
	}
	return names
}

// ProfileDescription returns the one-line description of a profile, or ""
// for an unknown name.
func ProfileDescription(name string) string {
	for _, p := range scProfiles {
		if p.name == name {
			return p.desc
		}
	}
	return ""
}

// Variants returns the capture variant names ScenarioConfig.Variants takes.
func Variants() []string { return slices.Clone(scVariants) }

// scSetup is a resolved configuration.
type scSetup struct {
	ScenarioConfig
	prof     scProfile
	variants map[string]bool
	jitter   float64 // -1: profile default
	missed   float64
}

func (c ScenarioConfig) resolve() (scSetup, error) {
	bad := func(format string, args ...any) (scSetup, error) {
		return scSetup{}, fmt.Errorf("synth: scenario: "+format, args...)
	}
	if c.Profile == "" {
		c.Profile = scProfiles[0].name
	}
	i := slices.IndexFunc(scProfiles, func(p scProfile) bool { return p.name == c.Profile })
	if i < 0 {
		return bad("unknown profile %q (have %s)", c.Profile, strings.Join(Profiles(), ", "))
	}
	s := scSetup{prof: scProfiles[i], variants: map[string]bool{}, jitter: -1, missed: -1}
	if c.Hosts == 0 {
		c.Hosts = DefaultScenarioHosts
	}
	if c.Duration == 0 {
		c.Duration = DefaultScenarioDuration
	}
	if c.Start.IsZero() {
		c.Start = DefaultScenarioStart
	}
	c.Start = c.Start.UTC()
	switch {
	case c.Snaplen == 0:
		c.Snaplen = DefaultScenarioSnaplen
	case c.Snaplen < 0:
		c.Snaplen = 0
	case c.Snaplen < 96:
		return bad("snaplen %d below 96 would cut transport headers", c.Snaplen)
	}
	if c.ExfilBytes == 0 {
		c.ExfilBytes = DefaultExfilBytes
	}
	switch {
	case c.Hosts < 8 || c.Hosts > 4000:
		return bad("hosts %d outside [8, 4000]", c.Hosts)
	case c.Duration < 10*time.Minute || c.Duration > 31*24*time.Hour:
		return bad("duration %v outside [10m, 744h]", c.Duration)
	case c.Start.Unix() < 0 || c.Start.Add(c.Duration+time.Hour).Unix() > math.MaxUint32:
		return bad("start %v outside the pcap time range", c.Start)
	case c.Period < 0 || c.Period > 0 && (c.Period < time.Second || c.Period > c.Duration):
		return bad("period %v outside [1s, duration]", c.Period)
	case c.Jitter > 0.9 || math.IsNaN(c.Jitter):
		return bad("jitter %v above 0.9", c.Jitter)
	case c.Missed > 0.5 || math.IsNaN(c.Missed):
		return bad("missed %v above 0.5", c.Missed)
	case c.ExfilBytes < 64<<10 || c.ExfilBytes > 8<<30:
		return bad("exfil bytes %d outside [64 KiB, 8 GiB]", c.ExfilBytes)
	}
	if c.Jitter > 0 {
		s.jitter = c.Jitter
	} else if c.Jitter < 0 {
		s.jitter = 0
	}
	if c.Missed > 0 {
		s.missed = c.Missed
	} else if c.Missed < 0 {
		s.missed = 0
	}
	for _, v := range append(slices.Clone(s.prof.variants), c.Variants...) {
		for v := range strings.SplitSeq(v, ",") {
			v = strings.TrimSpace(strings.ToLower(v))
			if v == "" {
				continue
			}
			if !slices.Contains(scVariants, v) {
				return bad("unknown variant %q (have %s)", v, strings.Join(scVariants, ", "))
			}
			s.variants[v] = true
		}
	}
	if s.variants["erspan"] && s.variants["vxlan"] {
		return bad("variants erspan and vxlan exclude each other")
	}
	c.Variants = slices.Sorted(func(yield func(string) bool) {
		for v := range s.variants {
			if !yield(v) {
				return
			}
		}
	})
	s.ScenarioConfig = c
	return s, nil
}

// WriteScenario writes a labelled traffic scenario to w and returns its
// ground truth: every malicious activity and every benign trap, with the
// exact times, endpoints, names and volumes that went on the wire. The same
// cfg always gives the same bytes on a given architecture.
//
// Every scenario has an enterprise network of cfg.Hosts workstations and a
// few servers whose hosts resolve names through the domain controller before
// connecting, and the benign traps a detector must not flag: NTP, hourly
// update checks, a monitoring agent on every host, big downloads, nightly
// backups, irregular browsing, group-policy refreshes and file shares, chat
// push channels, admins' daily jump-host sessions and an allowlisted
// vulnerability scanner. The profile adds the attacks.
//
// How the truth reads:
//   - Every flow belongs to exactly one activity (a long-lived beacon's flow
//     also to its long_connection twin). Traps are per kind and source
//     address; a host's DNS lookups, including those of attack names, are
//     its internal_dns trap, and only tunnel queries are dns_exfil.
//   - Src is the address used: a dual-stack host's IPv6 traffic is
//     labelled with its IPv6 address. Through the proxy, Dsts is the proxy
//     and FQDN the requested host.
//   - Beats are the start times of a beacon's flows (for sleep-burst every
//     connection of each burst of BurstOf); for long-lived, the times of
//     the heartbeat requests inside its one connection. Each interval is
//     the period times 1 ± Jitter (uniform); a missed beat is skipped and
//     its time passes. A call's DNS lookup, when its cache entry expired,
//     delays it by the lookup.
//   - BytesOut and BytesIn are the transport payload bytes of the flows in
//     each direction, originator first, at their true size.
//   - Packets counts the frames in the capture, duplicates included; Flows
//     counts conversations (distinct 5-tuples).
func WriteScenario(w PacketWriter, cfg ScenarioConfig) (*ScenarioTruth, error) {
	st, _, err := writeScenario(w, cfg)
	return st, err
}

// WriteScenarioFiles writes dir/scenario.pcap (dir/scenario.pcapng when
// cfg.Pcapng) with nanosecond timestamps and dir/truth.json, creating dir if
// needed.
func WriteScenarioFiles(dir string, cfg ScenarioConfig) (*ScenarioTruth, error) {
	if _, err := cfg.resolve(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	name := "scenario.pcap"
	if cfg.Pcapng {
		name = "scenario.pcapng"
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	var w interface {
		PacketWriter
		Close() error
	}
	// The writer does not cut: WriteScenario applies the snaplen itself.
	if cfg.Pcapng {
		w, err = NewPcapngWriter(f, LinkTypeEthernet, 0)
	} else {
		w, err = NewPcapWriter(f, LinkTypeEthernet, 0, true)
	}
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	truth, err := WriteScenario(w, cfg)
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	if err := errors.Join(w.Close(), f.Close()); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(truth, "", " ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "truth.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	return truth, nil
}

// scFlow is one flow of a scenario with the activity it belongs to (an
// index into ScenarioTruth.Activities once the truth is assembled).
type scFlow struct {
	FlowTruth
	act int32
}

// writeScenario is WriteScenario that also returns every flow, for tests.
func writeScenario(w PacketWriter, cfg ScenarioConfig) (*ScenarioTruth, []scFlow, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, nil, err
	}
	pl := newScPlanner(s)
	if err := pl.plan(); err != nil {
		return nil, nil, err
	}
	out := newScOut(w, s)
	m := NewMixer(out, 0)
	var mixActs []int32
	for i := range pl.items {
		it := &pl.items[i]
		start := time.Unix(0, it.start).UTC()
		if err := m.Advance(start); err != nil {
			return nil, nil, err
		}
		if err := out.drain(it.start - 1); err != nil {
			return nil, nil, err
		}
		switch it.kind {
		case itemTCP:
			c := &pl.tcps[it.idx]
			c.Start = start
			err = m.AddTCP(c)
			mixActs = append(mixActs, it.act)
		case itemDNS:
			q := &pl.dnss[it.idx]
			q.Start = start
			err = m.AddDNS(q)
			mixActs = append(mixActs, it.act)
		case itemX:
			out.add(pl.xs[it.idx], it.start, it.act)
			pl.xs[it.idx] = nil // the output owns it now
		}
		if err != nil {
			return nil, nil, err
		}
	}
	mt, err := m.Finish()
	if err != nil {
		return nil, nil, err
	}
	if err := out.finish(); err != nil {
		return nil, nil, err
	}
	flows := make([]scFlow, 0, len(mt.Flows)+len(out.flows))
	for i, f := range mt.Flows {
		flows = append(flows, scFlow{f, mixActs[i]})
	}
	for i, f := range out.flows {
		flows = append(flows, scFlow{f, out.acts[i]})
	}
	return pl.truth(flows, out.packets, out.last), flows, nil
}

// truth assembles the scenario truth from the flows as written.
func (pl *scPlanner) truth(flows []scFlow, packets uint64, last int64) *ScenarioTruth {
	type agg struct {
		first, last int64
		dsts        map[netip.Addr]bool
		starts      []int64
		protos      map[uint8]bool
		ports       map[uint16]bool
	}
	aggs := make([]agg, len(pl.acts))
	add := func(a int32, f *scFlow) {
		act := &pl.acts[a].Activity
		g := &aggs[a]
		s, e := f.Start.UnixNano(), f.End.UnixNano()
		if act.Flows == 0 || s < g.first {
			g.first = s
		}
		g.last = max(g.last, e)
		act.Flows++
		act.BytesOut += f.OrigBytes
		act.BytesIn += f.RespBytes
		if g.dsts == nil {
			g.dsts = map[netip.Addr]bool{}
		}
		if f.RespAddr != act.Src {
			g.dsts[f.RespAddr] = true
		}
		g.starts = append(g.starts, s)
		if g.protos == nil {
			g.protos, g.ports = map[uint8]bool{}, map[uint16]bool{}
		}
		g.protos[f.Proto] = true
		g.ports[f.RespPort] = true
	}
	home := scHomeNets()
	pairs := map[[2]netip.Addr]bool{}
	for i := range flows {
		f := &flows[i]
		if f.act >= 0 {
			add(f.act, f)
			for _, tw := range pl.acts[f.act].twins {
				add(tw, f)
			}
		}
		if f.act < 0 || pl.acts[f.act].Benign {
			if inNets(home, f.OrigAddr) {
				pairs[[2]netip.Addr{f.OrigAddr, f.RespAddr}] = true
			}
		}
	}
	st := &ScenarioTruth{
		Profile:     pl.cfg.Profile,
		Seed:        pl.cfg.Seed,
		Start:       pl.cfg.Start,
		End:         pl.cfg.Start.Add(pl.cfg.Duration),
		HomeNets:    home,
		Allowlist:   []netip.Prefix{netip.PrefixFrom(pl.net.scanner.v4, 32)},
		Hosts:       len(pl.net.ws) + len(pl.net.servers),
		BenignPairs: len(pairs),
		Packets:     packets,
		Flows:       len(flows),
	}
	counters := map[string]int{}
	var bad, good []int
	for i := range pl.acts {
		a := &pl.acts[i]
		g := &aggs[i]
		if a.Flows == 0 {
			continue
		}
		a.Start, a.End = time.Unix(0, g.first).UTC(), time.Unix(0, g.last).UTC()
		// Traps say what they use when it is one protocol and port.
		if a.Proto == "" && len(g.protos) == 1 {
			for p := range g.protos {
				a.Proto = map[uint8]string{ProtoTCP: "tcp", ProtoUDP: "udp"}[p]
			}
		}
		if a.DstPort == 0 && a.Kind != "scan" && a.Kind != "vuln_scanner" && len(g.ports) == 1 {
			for p := range g.ports {
				a.DstPort = p
			}
		}
		if len(a.Dsts) == 0 {
			a.Dsts = slices.SortedFunc(func(yield func(netip.Addr) bool) {
				for d := range g.dsts {
					if !yield(d) {
						return
					}
				}
			}, netip.Addr.Compare)
		}
		switch {
		case a.beatsFromFlows:
			slices.Sort(g.starts)
			a.Beats = make([]time.Time, len(g.starts))
			for k, s := range g.starts {
				a.Beats[k] = time.Unix(0, s).UTC()
			}
		case a.beats != nil:
			a.Beats = make([]time.Time, len(*a.beats))
			for k, s := range *a.beats {
				a.Beats[k] = time.Unix(0, s).UTC()
			}
		}
		if a.Benign {
			good = append(good, i)
		} else {
			bad = append(bad, i)
		}
	}
	// Attacks first, then traps; flows now name their activity by its
	// place in the truth.
	remap := make([]int32, len(pl.acts))
	for i := range remap {
		remap[i] = -1
	}
	for _, list := range [][]int{bad, good} {
		for _, i := range list {
			a := pl.acts[i].Activity
			counters[a.Kind]++
			a.ID = fmt.Sprintf("%s-%d", a.Kind, counters[a.Kind])
			remap[i] = int32(len(st.Activities))
			st.Activities = append(st.Activities, a)
		}
	}
	for i := range flows {
		if flows[i].act >= 0 {
			flows[i].act = remap[flows[i].act]
		}
	}
	if l := time.Unix(0, last).UTC(); packets > 0 && st.End.Before(l) {
		st.End = l
	}
	return st
}

func scHomeNets() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("fd00:10::/32"),
	}
}

func inNets(nets []netip.Prefix, a netip.Addr) bool {
	return slices.ContainsFunc(nets, func(p netip.Prefix) bool { return p.Contains(a) })
}

// sortItems orders the planned conversations by start; ties keep the order
// in which they were planned, so the result is deterministic.
func sortItems(items []scItem) {
	slices.SortStableFunc(items, func(a, b scItem) int { return cmp.Compare(a.start, b.start) })
}
