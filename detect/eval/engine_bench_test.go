package eval

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/capture/synth"
	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
)

// engineStream is the record stream of a generated scenario as the
// engine sees it in a replay: every record (interim and final) in the
// order the sensor emitted it, and the engine ticks between them.
type engineStream struct {
	env     Env
	strings map[string]string
	// recs holds the stream twice, the second copy with other flow UIDs,
	// so that consecutive passes over it are distinct flows to the
	// detectors (a flow open at the end of one pass is not continued by
	// its namesake at the start of the next).
	recs [2][]flow.Record
	// ticks[i] are the engine ticks (packet time) due before record i,
	// tail those after the last record.
	ticks [][]time.Time
	tail  []time.Time
	span  time.Duration // a pass: from the first record's start to past the last tick
}

var (
	engineStreamOnce sync.Once
	engineStreamVal  *engineStream
	engineStreamErr  error
)

// enterpriseStream generates the enterprise scenario (seed 1) once and
// replays it through a sensor, keeping what the engine was given.
func enterpriseStream(b *testing.B) *engineStream {
	engineStreamOnce.Do(func() {
		dir := filepath.Join(b.TempDir(), "enterprise")
		truth, err := synth.WriteScenarioFiles(dir, synth.ScenarioConfig{Profile: "enterprise", Seed: 1})
		if err != nil {
			engineStreamErr = err
			return
		}
		_, pcap, err := LoadScenario(dir)
		if err != nil {
			engineStreamErr = err
			return
		}
		engineStreamVal, engineStreamErr = captureStream(pcap, truth)
	})
	if engineStreamErr != nil {
		b.Fatal(engineStreamErr)
	}
	return engineStreamVal
}

func captureStream(pcap string, truth *synth.ScenarioTruth) (*engineStream, error) {
	s := &engineStream{env: Env{Allowlist: truth.Allowlist}, strings: map[string]string{}}
	if len(truth.HomeNets) > 0 {
		s.env.HomeNets = flow.NewNetworks(truth.HomeNets)
	}
	src, err := pcapfile.OpenSource([]string{pcap})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	var pending []time.Time
	emit := func(r *flow.Record) {
		s.recs[0] = append(s.recs[0], s.cloneRecord(r))
		s.ticks = append(s.ticks, pending)
		pending = nil
	}
	tcfg := capture.DefaultTableConfig()
	tcfg.HomeNets = s.env.HomeNets
	tcfg.Seed = 1
	sensor := capture.NewSensor(capture.Config{Table: tcfg}, emit)
	ts := &tickingSource{src: src, every: int64(DefaultTick),
		tick: func(now int64) { pending = append(pending, time.Unix(0, now).UTC()) }}
	if err := sensor.Run(context.Background(), ts); err != nil {
		return nil, err
	}
	st := sensor.Stats()
	s.tail = append(pending, st.Last)
	if len(s.recs[0]) == 0 {
		return s, nil
	}
	s.span = st.Last.Sub(s.recs[0][0].Start).Truncate(DefaultTick) + DefaultTick
	s.recs[1] = make([]flow.Record, len(s.recs[0]))
	for i := range s.recs[0] {
		r := &s.recs[0][i]
		s.recs[1][i] = *r
		if r.UID != "" {
			s.recs[1][i].UID = r.UID + "'"
		}
	}
	return s, nil
}

// cloneRecord copies a record the sensor will reuse, DNS answers and
// encapsulation included. Strings are interned: a sensor hands over
// strings it just made, which are in the CPU caches; a stream of
// megabytes of copies would make every string a cache miss.
func (s *engineStream) cloneRecord(r *flow.Record) flow.Record {
	c := *r
	c.UID, c.CommunityID, c.Service = s.intern(c.UID), s.intern(c.CommunityID), s.intern(c.Service)
	c.ConnState, c.History = s.intern(c.ConnState), s.intern(c.History)
	if r.App != nil {
		app := *r.App
		app.DNSQuery, app.TLSSNI, app.HTTPHost = s.intern(app.DNSQuery), s.intern(app.TLSSNI), s.intern(app.HTTPHost)
		app.HTTPProxyTarget, app.HTTPMethod = s.intern(app.HTTPProxyTarget), s.intern(app.HTTPMethod)
		app.DNSAnswers = slices.Clone(r.App.DNSAnswers)
		app.DNSNames = slices.Clone(r.App.DNSNames)
		for i, a := range app.DNSAnswers {
			app.DNSAnswers[i] = s.intern(a)
		}
		for i, n := range app.DNSNames {
			app.DNSNames[i] = s.intern(n)
		}
		c.App = &app
	}
	if r.Encap != nil {
		e := *r.Encap
		e.VLANs, e.MPLSLabels = slices.Clone(e.VLANs), slices.Clone(e.MPLSLabels)
		c.Encap = &e
	}
	return c
}

func (s *engineStream) intern(x string) string {
	if y, ok := s.strings[x]; ok {
		return y
	}
	s.strings[x] = x
	return x
}

// feeder replays the stream endlessly: pass p is the scenario shifted by
// p spans, with the UIDs of copy p%2. Each record and its application
// hints are copied into a record that is reused, as the sensor's flow table
// does, so the engine gets a record that was just written rather than one
// from a cold array of megabytes. The UID and history are copied too: the
// sensor makes both afresh for every record. The other strings stay where
// they are (interned).
type feeder struct {
	s    *engineStream
	e    *detect.Engine
	r    flow.Record
	app  flow.App
	buf  []byte
	i    int
	pass int
}

func (f *feeder) next() {
	s := f.s
	k := f.i
	shift := time.Duration(f.pass) * s.span
	for _, t := range s.ticks[k] {
		f.e.Tick(t.Add(shift))
	}
	f.r = s.recs[f.pass%2][k]
	f.r.Start, f.r.End = f.r.Start.Add(shift), f.r.End.Add(shift)
	f.buf = append(append(f.buf[:0], f.r.UID...), f.r.History...)
	f.r.UID, f.r.History = f.fresh(0, len(f.r.UID)), f.fresh(len(f.r.UID), len(f.r.History))
	if f.r.App != nil {
		f.app = *f.r.App
		f.r.App = &f.app
	}
	f.e.Record(&f.r)
	if f.i++; f.i == len(s.recs[0]) {
		for _, t := range s.tail {
			f.e.Tick(t.Add(shift))
		}
		f.i = 0
		f.pass++
	}
}

// fresh returns the string at buf[i:i+n].
func (f *feeder) fresh(i, n int) string {
	if n == 0 {
		return ""
	}
	return unsafe.String(&f.buf[i], n)
}

// engineKinds are the detector sets BenchmarkEngine measures: all of them,
// each alone, and none (the engine and the replay loop by themselves).
var engineKinds = []struct {
	name string
	kind detect.Kind
}{
	{"all", ""},
	{"beacon", detect.KindBeacon},
	{"long_connection", detect.KindLongConnection},
	{"exfil", detect.KindExfil},
	{"dns_exfil", detect.KindDNSExfil},
	{"lateral", detect.KindLateralMovement},
	{"scan", detect.KindScan},
	{"none", "-"},
}

// benchDetectors makes the detectors of kind for env, as `flowhound eval`
// does: all of them for "", none for "-".
func benchDetectors(env Env, kind detect.Kind) []detect.Detector {
	cfg := detect.DefaultConfig()
	if env.HomeNets != nil {
		cfg.HomeNets = env.HomeNets
	}
	if len(env.Allowlist) > 0 {
		cfg.Allow = &detect.Allowlist{Nets: flow.NewNetworks(env.Allowlist)}
	}
	var out []detect.Detector
	for _, d := range detect.NewDetectors(cfg) {
		if kind == "" || d.Kind() == kind {
			out = append(out, d)
		}
	}
	return out
}

// BenchmarkEngine replays the records of the generated enterprise scenario
// (6 h, 77 hosts, about 32,000 records, interim ones included) through an
// engine, in the order and with the ticks of a replay, over and over with
// time moved on by the scenario's span each pass. One pass warms the
// detectors up before timing, so what is measured is a sensor that has been
// running for a while. Run it with GOMAXPROCS=1: the bar is records/s on
// one core with "all" detectors.
func BenchmarkEngine(b *testing.B) {
	s := enterpriseStream(b)
	for _, c := range engineKinds {
		b.Run(c.name, func(b *testing.B) {
			var findings int
			e := detect.NewEngine("bench", func(*detect.Finding) { findings++ }, benchDetectors(s.env, c.kind)...)
			f := &feeder{s: s, e: e}
			for range len(s.recs[0]) {
				f.next()
			}
			findings = 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				f.next()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(findings)/float64(b.N)*1e6, "findings/Mrecord")
			b.ReportMetric(float64(len(s.recs[0])), "records/pass") // for scripts/instr.sh
		})
	}
}
