package detect

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/flowhound/flowhound/flow"
)

// beaconStream is a steady, repeatable stream of records: hosts using
// named and unnamed destinations at random, a few of them beaconing, some
// internal traffic and DNS. The templates are compact so that reading one
// costs what receiving a record from the sensor costs: it is hot.
type beaconStream struct {
	tmpl  []beaconTmpl
	names []string
	addrs []netip.Addr
	apps  []flow.App
	dns   []flow.App
	span  time.Duration
	r     flow.Record
}

type beaconTmpl struct {
	host, dst uint16
	kind      uint8 // 0 plain TCP, 1 TLS with SNI, 2 DNS lookup, 3 internal
	size      uint16
}

func newBeaconStream(hosts, dsts, n int) *beaconStream {
	rng := rand.New(rand.NewPCG(42, 42))
	s := &beaconStream{span: time.Hour}
	for i := range dsts {
		s.names = append(s.names, fmt.Sprintf("svc%d.site%d.example.com", i%7, i))
		s.addrs = append(s.addrs, netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)}))
	}
	for i := range dsts {
		s.apps = append(s.apps, flow.App{TLSSNI: s.names[i], DNSRcode: -1})
		s.dns = append(s.dns, flow.App{DNSQuery: s.names[i], DNSAnswers: []string{s.addrs[i].String()}, DNSQueries: 1})
	}
	for range n {
		t := beaconTmpl{host: uint16(rng.IntN(hosts)), dst: uint16(float64(dsts) * rng.Float64() * rng.Float64()),
			size: uint16(400 + rng.IntN(800))}
		switch k := rng.IntN(20); {
		case k < 10:
			t.kind = 1
		case k < 12:
			t.kind = 2
		case k < 14:
			t.kind = 3
		}
		s.tmpl = append(s.tmpl, t)
	}
	return s
}

var beaconDC = netip.MustParseAddr("10.1.0.10")

// record fills the stream's one record from template k at time t.
func (s *beaconStream) record(k int, t time.Time) *flow.Record {
	tp := &s.tmpl[k]
	r := &s.r
	*r = flow.Record{Start: t, End: t.Add(300 * time.Millisecond), UID: "C1",
		OrigAddr: netip.AddrFrom4([4]byte{10, 10, byte(tp.host >> 8), byte(tp.host)}), OrigPort: uint16(40000 + k%20000),
		RespAddr: s.addrs[tp.dst], RespPort: 443, Proto: flow.ProtoTCP,
		OrigBytes: uint64(tp.size), RespBytes: 5000, OrigPkts: 6, RespPkts: 8,
		ConnState: "SF", History: "ShADadFf", LocalOrig: true, Final: true}
	switch tp.kind {
	case 1:
		r.App = &s.apps[tp.dst]
	case 2:
		r.RespAddr, r.RespPort, r.Proto, r.LocalResp, r.App = beaconDC, 53, flow.ProtoUDP, true, &s.dns[tp.dst]
	case 3:
		r.RespAddr, r.RespPort, r.LocalResp = beaconDC, 445, true
	}
	return r
}

// BenchmarkBeaconObserve measures the steady per-record cost: 4,096
// hosts, 4,096 destinations (popular ones used more), 64 Ki record
// templates drawn at random for each time slot (so each pair's visits
// are Poisson, about one an hour per template), except the first sixteen,
// which keep their slot every hour and so beacon.
//
// "hot" is the same with 64 hosts and 64 destinations: every key's state
// stays in the CPU caches, so it measures the work per record rather than
// the memory latency that dominates "52K" on a small VM.
func BenchmarkBeaconObserve(b *testing.B) {
	for _, c := range []struct {
		name         string
		hosts, dests int
	}{{"52K", 4096, 4096}, {"hot", 64, 64}} {
		b.Run(c.name, func(b *testing.B) { benchBeaconObserve(b, c.hosts, c.dests) })
	}
	// What the stream itself costs (making each record), to subtract.
	b.Run("stream-only", func(b *testing.B) {
		s := newBeaconStream(64, 64, 1<<16)
		n := len(s.tmpl)
		step := s.span / time.Duration(n)
		var sink uint64
		b.ReportAllocs()
		for i := range b.N {
			k := i % n
			if k >= 16 {
				k = int(mix64(uint64(i)) % uint64(n))
			}
			sink += s.record(k, beaconT0.Add(time.Duration(i)*step)).OrigBytes
		}
		_ = sink
	})
}

func benchBeaconObserve(b *testing.B, hosts, dests int) {
	s := newBeaconStream(hosts, dests, 1<<16)
	n := len(s.tmpl)
	d := NewBeacon(DefaultConfig()).(*beacon)
	propose := func(*Finding) {}
	step := s.span / time.Duration(n)
	feed := func(i int) {
		k := i % n
		if k >= 16 { // a template at random: Poisson visits, one an hour on average
			k = int(mix64(uint64(i)) % uint64(n))
		}
		d.Observe(s.record(k, beaconT0.Add(time.Duration(i)*step)), propose)
	}
	// Eight rounds (hours) first: the keys exist and have beats, as in a
	// sensor that has been running for a while.
	warm := 8 * n
	for i := range warm {
		feed(i)
	}
	scored := d.scored
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		feed(warm + i)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(d.scored-scored)/float64(b.N), "scores/record")
	b.ReportMetric(float64(d.Stats().Keys), "keys")
}

// beaconFill creates pairs keys (hosts × pairs/hosts destinations, half
// named, half by address) with one connection each and returns the
// detector.
func beaconFill(pairs, hosts int) *beacon {
	cfg := DefaultConfig()
	cfg.Beacon.MaxPairs = pairs
	d := NewBeacon(cfg).(*beacon)
	per := pairs / hosts
	names := make([]string, per)
	for i := range names {
		names[i] = fmt.Sprintf("svc.site%d.example.com", i)
	}
	app := &flow.App{DNSRcode: -1}
	r := flow.Record{Proto: flow.ProtoTCP, RespPort: 443, OrigBytes: 500, RespBytes: 4000, OrigPkts: 6, RespPkts: 6,
		ConnState: "SF", History: "ShADadFf", LocalOrig: true, Final: true, UID: "C0"}
	propose := func(*Finding) {}
	for h := range hosts {
		r.OrigAddr = netip.AddrFrom4([4]byte{10, byte(h >> 16), byte(h >> 8), byte(h)})
		for k := range per {
			t := beaconT0.Add(time.Duration(h*per+k) * time.Millisecond)
			r.Start, r.End = t, t.Add(time.Second)
			r.RespAddr = netip.AddrFrom4([4]byte{198, 18, byte(k >> 8), byte(k)})
			if k%2 == 0 {
				app.TLSSNI = names[k]
				r.App = app
			} else {
				r.App = nil
			}
			d.Observe(&r, propose)
		}
	}
	return d
}

// TestBeaconMemoryPerPair measures the heap the detector holds per tracked
// pair with 1 Mi pairs (64 Ki with -short) and checks the budget of 256
// bytes, and that Stats accounts for what the heap says.
func TestBeaconMemoryPerPair(t *testing.T) {
	pairs, hosts := 1<<20, 4096
	if testing.Short() {
		pairs, hosts = 1<<16, 256
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := beaconFill(pairs, hosts)
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	st := d.Stats()
	runtime.KeepAlive(d)
	if st.Keys != pairs {
		t.Fatalf("%d keys, want %d", st.Keys, pairs)
	}
	perPair := heap / float64(pairs)
	t.Logf("%d pairs: heap %.1f MiB = %.0f B/pair; Stats %.1f MiB = %.0f B/pair; slot %d B",
		pairs, heap/(1<<20), perPair, float64(st.Bytes)/(1<<20), float64(st.Bytes)/float64(pairs), beaconSlotSize)
	if perPair > 256 {
		t.Errorf("%.0f bytes per pair, want ≤ 256", perPair)
	}
	if r := float64(st.Bytes) / heap; r < 0.7 || r > 1.3 {
		t.Errorf("Stats says %d bytes, the heap %.0f", st.Bytes, heap)
	}
}

// BenchmarkBeaconMemory reports the heap bytes per pair with 1 Mi pairs.
func BenchmarkBeaconMemory(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		d := beaconFill(1<<20, 4096)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/(1<<20), "B/pair")
		runtime.KeepAlive(d)
	}
}

// BenchmarkBeaconGapStats is the interval statistics of a full ring.
func BenchmarkBeaconGapStats(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	gaps := make([]float64, beaconRing-1)
	for i := range gaps {
		gaps[i] = 60 * (1 + 0.5*(2*rng.Float64()-1))
	}
	var sc beatScratch
	var st beatStats
	b.ReportAllocs()
	for range b.N {
		gapStats(gaps, &sc, &st)
	}
}
