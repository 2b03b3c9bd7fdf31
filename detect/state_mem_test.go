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

// Memory per tracked key of the volume- and duration-based detectors,
// measured like BenchmarkBeaconMemory: the heap a detector holds once it
// tracks 1 Mi keys (hosts × destinations), divided by the keys, and what
// its Stats say against it.

var memT0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// memFill feeds a detector hosts × per records, one per key, made by
// fill, and returns it.
func memFill(d Detector, keys, hosts int, fill func(r *flow.Record, k int)) Detector {
	per := keys / hosts
	r := flow.Record{Proto: flow.ProtoTCP, RespPort: 443, OrigPkts: 60, RespPkts: 40, ConnState: "SF",
		History: "ShADadFf", LocalOrig: true, Final: true}
	propose := func(*Finding) {}
	for h := range hosts {
		r.OrigAddr = netip.AddrFrom4([4]byte{10, byte(h >> 16), byte(h >> 8), byte(h)})
		for k := range per {
			t := memT0.Add(time.Duration(h*per+k) * time.Millisecond)
			r.Start, r.End = t, t.Add(time.Second)
			fill(&r, k)
			d.Observe(&r, propose)
		}
	}
	return d
}

// memNames are the destinations' names: keys with the same destination
// share a name, as hosts share the sites they use.
func memNames(n int, format string) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf(format, i)
	}
	return names
}

// exfilMemFill: 1 Mi upload pairs, half of them to a named service.
func exfilMemFill(keys, hosts int) Detector {
	cfg := DefaultConfig()
	cfg.Exfil.MaxKeys = keys
	names := memNames(keys/hosts, "upload.site%d.example.com")
	app := &flow.App{DNSRcode: -1}
	return memFill(NewExfil(cfg), keys, hosts, func(r *flow.Record, k int) {
		r.RespAddr = netip.AddrFrom4([4]byte{198, 18, byte(k >> 8), byte(k)})
		r.OrigBytes, r.RespBytes = 2<<20, 20<<10
		r.UID = ""
		r.App = nil
		if k%2 == 0 {
			app.TLSSNI = names[k]
			r.App = app
		}
	})
}

// dnsExfilMemFill: 1 Mi (source, domain) keys, each made by one name with a
// long random label, as tunnels and random-looking CDN names make them.
func dnsExfilMemFill(keys, hosts int) Detector {
	cfg := DefaultConfig()
	cfg.DNSExfil.MaxKeys = keys
	domains := memNames(keys/hosts, "tunnel%d.net")
	resolver := netip.MustParseAddr("10.1.0.10")
	var app flow.App
	var names [1]string
	return memFill(NewDNSExfil(cfg), keys, hosts, func(r *flow.Record, k int) {
		r.RespAddr, r.RespPort, r.Proto, r.LocalResp = resolver, 53, flow.ProtoUDP, true
		r.OrigBytes, r.RespBytes = 90, 200
		names[0] = fmt.Sprintf("%016x%016xq7.%s", uint64(k)*0x9e3779b97f4a7c15, r.Start.UnixNano(), domains[k])
		app = flow.App{DNSQuery: names[0], DNSQType: 16, DNSQueries: 1, DNSNames: names[:], DNSRcode: 0}
		r.App = &app
	})
}

// longConnMemFill: 1 Mi pairs of connections long enough to count, half
// of them to a named service.
func longConnMemFill(keys, hosts int) Detector {
	cfg := DefaultConfig()
	cfg.LongConn.MaxPairs = keys
	names := memNames(keys/hosts, "push.site%d.example.com")
	app := &flow.App{DNSRcode: -1}
	return memFill(NewLongConn(cfg), keys, hosts, func(r *flow.Record, k int) {
		r.Start = r.End.Add(-10 * time.Minute)
		r.RespAddr = netip.AddrFrom4([4]byte{198, 18, byte(k >> 8), byte(k)})
		r.OrigBytes, r.RespBytes = 40<<10, 80<<10
		r.App = nil
		if k%2 == 0 {
			app.TLSSNI = names[k]
			r.App = app
		}
	})
}

var memDetectors = []struct {
	name string
	fill func(keys, hosts int) Detector
}{
	{"exfil", exfilMemFill},
	{"dns_exfil", dnsExfilMemFill},
	{"long_connection", longConnMemFill},
}

// heapPerKey fills a detector and returns the heap it holds per key and
// its Stats.
func heapPerKey(fill func(keys, hosts int) Detector, keys, hosts int) (float64, DetectorStats) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := fill(keys, hosts)
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := d.Stats()
	runtime.KeepAlive(d)
	return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(keys), st
}

// TestStateMemoryPerKey checks the budget of 256 bytes per key with 1 Mi
// keys (64 Ki with -short), and that Stats accounts for what the heap
// says.
func TestStateMemoryPerKey(t *testing.T) {
	keys, hosts := 1<<20, 4096
	if testing.Short() {
		keys, hosts = 1<<16, 256
	}
	for _, c := range memDetectors {
		t.Run(c.name, func(t *testing.T) {
			perKey, st := heapPerKey(c.fill, keys, hosts)
			t.Logf("%d keys: heap %.0f B/key; Stats %d keys, %.0f B/key", keys, perKey, st.Keys, float64(st.Bytes)/float64(keys))
			if st.Evictions != 0 {
				t.Errorf("%d evictions", st.Evictions)
			}
			if perKey > 256 {
				t.Errorf("%.0f bytes per key, want ≤ 256", perKey)
			}
			if r := float64(st.Bytes) / (perKey * float64(keys)); r < 0.7 || r > 1.3 {
				t.Errorf("Stats says %d bytes, the heap %.0f", st.Bytes, perKey*float64(keys))
			}
		})
	}
}

// BenchmarkStateMemory reports the heap bytes per key with 1 Mi keys.
func BenchmarkStateMemory(b *testing.B) {
	for _, c := range memDetectors {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				perKey, st := heapPerKey(c.fill, 1<<20, 4096)
				b.ReportMetric(perKey, "B/key")
				b.ReportMetric(float64(st.Bytes)/(1<<20), "stats-B/key")
			}
		})
	}
}

func TestPackKiB(t *testing.T) {
	for _, b := range []uint64{0, 1, 1023, 1024, 1025, 4<<20 - 1, 4 << 20, 4<<20 + 1, 100 << 20, 123456789, 1 << 40, 200 << 30, 1<<64 - 1} {
		k := (b + 1023) / 1024
		got := unpackKiB(packKiB(b))
		switch {
		case k < 1<<12 && got != k:
			t.Errorf("%d B: %d KiB, want exactly %d", b, got, k)
		case k > 4095<<15 && got != 4095<<15:
			t.Errorf("%d B: %d KiB, want saturation", b, got)
		case k <= 4095<<15 && (got < k || float64(got-k) > 0.0005*float64(k)):
			t.Errorf("%d B: %d KiB, want at most 0.05 %% above %d", b, got, k)
		}
	}
	last := uint64(0)
	for b := uint64(0); b < 1<<42; b += 1 + b/997 { // monotone
		got := unpackKiB(packKiB(b))
		if got < last {
			t.Fatalf("%d B: %d KiB, less than for fewer bytes (%d)", b, got, last)
		}
		last = got
	}
}

func TestHashFold(t *testing.T) {
	for _, s := range []string{"", "a", "Example.COM", "www.EXAMPLE.com.", "@[`{AZaz\x80\xc1\xdaÄ", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"} {
		lower := []byte(s)
		for i, c := range lower {
			if 'A' <= c && c <= 'Z' {
				lower[i] = c + 'a' - 'A'
			}
		}
		if hashFold(s) != hashString(string(lower)) {
			t.Errorf("hashFold(%q) differs from the hash of %q", s, lower)
		}
		if s != string(lower) && hashString(s) == hashString(string(lower)) {
			t.Errorf("hashString(%q) folds case", s)
		}
	}
	for c := range 256 {
		w := lowerWord(uint64(c) * 0x0101010101010101)
		want := byte(c)
		if 'A' <= c && c <= 'Z' {
			want += 'a' - 'A'
		}
		if w != uint64(want)*0x0101010101010101 {
			t.Errorf("lowerWord(%#x...) = %#x", c, w)
		}
	}
}

// TestHashWords holds hashWords to its definition: little-endian words,
// the last one short and zero-padded, checked against a byte-by-byte
// reference at every length and alignment.
func TestHashWords(t *testing.T) {
	ref := func(s string, fold bool) uint64 {
		h := uint64(len(s)) * 0x9e3779b97f4a7c15
		for i := 0; i < len(s); i += 8 {
			var w uint64
			for j := min(i+8, len(s)) - 1; j >= i; j-- {
				w = w<<8 | uint64(s[j])
			}
			if fold {
				w = lowerWord(w)
			}
			h = (h ^ w) * 0xbf58476d1ce4e5b9
			h ^= h >> 29
		}
		return splitmixFinal(h)
	}
	rng := rand.New(rand.NewPCG(9, 10))
	buf := make([]byte, 80)
	for range 2000 {
		for i := range buf {
			buf[i] = byte(rng.IntN(256))
		}
		off, n := rng.IntN(16), rng.IntN(64)
		s := string(buf[off : off+n])
		for _, fold := range []bool{false, true} {
			if got, want := hashWords(s, fold), ref(s, fold); got != want {
				t.Fatalf("hashWords(%q, %v) = %#x, want %#x", s, fold, got, want)
			}
		}
	}
}
