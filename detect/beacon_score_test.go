package detect

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// refMedian is the median by definition: sort, take the middle (the mean
// of the two middle values for an even count).
func refMedian(a []float64) float64 {
	s := slices.Clone(a)
	slices.Sort(s)
	return sortedMedian(s)
}

// refGapStats is gapStats as the package comment defines it, without the
// shortcuts: the shortcuts must not change a single bit.
func refGapStats(gaps []float64, st *beatStats) {
	n := len(gaps)
	*st = beatStats{gaps: n}
	if n == 0 {
		return
	}
	st.median = refMedian(gaps)
	p := st.median
	core := 0
	for _, x := range gaps {
		if x >= 0.5*p && x <= 1.5*p {
			core++
		}
	}
	if float64(core) < beaconMinCore*float64(n) {
		st.period, st.x, st.screened = p, math.Inf(1), true
		return
	}
	f := make([]float64, n)
	for range 2 {
		if p <= 0 {
			break
		}
		for i, x := range gaps {
			f[i] = x / foldK(x, p)
		}
		p = refMedian(f)
	}
	if p <= 0 {
		st.period, st.x = 0, math.Inf(1)
		return
	}
	st.period = p
	r := make([]float64, n)
	periods, short := 0.0, 0
	for i, x := range gaps {
		k := foldK(x, p)
		periods += k
		r[i] = math.Abs(x-k*p) / (p * math.Sqrt(k))
		if x < 0.4*p {
			short++
		}
	}
	st.jitter = refMedian(r)
	st.short = float64(short) / float64(n)
	st.coverage = float64(n) / periods
	st.x = st.jitter + st.short + (1-st.coverage)/2
}

func refSizeStats(logs []float64, st *beatStats) {
	m := refMedian(logs)
	d := make([]float64, len(logs))
	for i, v := range logs {
		d[i] = math.Abs(v - m)
	}
	st.sizeDisp = refMedian(d) * math.Ln2
	st.sizeMed = math.Exp2(m) - 1
}

// TestBeaconStatsExact compares gapStats and sizeStats with their
// definitions on schedules with jitter, missed beats, bursts and random
// arrivals, and on sizes that repeat or spread.
func TestBeaconStatsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	var sc beatScratch
	for trial := range 20000 {
		n := 1 + rng.IntN(beaconRing-1)
		gaps := make([]float64, n)
		period := float64(20 + rng.IntN(3600))
		jitter := []float64{0, 0.1, 0.5, 0.8}[trial%4]
		for i := range gaps {
			var ds int
			switch k := rng.IntN(10); {
			case trial%5 == 4: // random arrivals
				ds = int(rng.ExpFloat64() * period * 10)
			case k == 0: // a missed beat or two
				ds = int(float64(2+rng.IntN(2)) * period * 10 * (1 + jitter*(2*rng.Float64()-1)))
			case k == 1 && trial%3 == 0: // a burst
				ds = rng.IntN(30)
			default:
				ds = int(period * 10 * (1 + jitter*(2*rng.Float64()-1)))
			}
			gaps[i] = float64(max(ds, 0)) / 10
		}
		var got, want beatStats
		gapStats(gaps, &sc, &got)
		refGapStats(gaps, &want)
		if got != want {
			t.Fatalf("gaps %v:\n got %+v\nwant %+v", gaps, got, want)
		}

		sizes := make([]float64, n)
		logs := make([]uint8, n)
		base := rng.IntN(200)
		for i := range sizes {
			v := base
			if rng.IntN(4) < trial%4 {
				v = rng.IntN(256)
			}
			sizes[i], logs[i] = float64(v)/sizeSteps, uint8(v)
		}
		got, want = beatStats{}, beatStats{}
		sizeStats(logs, &got)
		refSizeStats(sizes, &want)
		if got != want {
			t.Fatalf("sizes %v:\n got %+v\nwant %+v", sizes, got, want)
		}
	}
}

func TestParseAnswerAddr(t *testing.T) {
	for _, s := range []string{"1.2.3.4", "0.0.0.0", "255.255.255.255", "10.0.0.1", "256.1.1.1", "01.2.3.4", "1.2.3",
		"1.2.3.4.", "1..2.3", "1.2.3.4a", "", "a.b.c.d", "1.2.3.0004", "::ffff:1.2.3.4", "2001:db8::1", "fe80::1%eth0",
		"example.com", "1.2.3.-4", " 1.2.3.4", "1.2.3.255", "99.999.9.9", "::", "abcd:1::", "abcde::1", "1:2:3:4:5:6:7:8",
		"v=spf1 include:_spf.example.com ~all", "0123456789abcdef0123:4567"} {
		want, err := netip.ParseAddr(s)
		got, ok := parseAnswerAddr(s)
		if ok != (err == nil) || ok && got != want.Unmap() {
			t.Errorf("parseAnswerAddr(%q) = %v, %v; netip says %v, %v", s, got, ok, want, err)
		}
	}
	rng := rand.New(rand.NewPCG(5, 5))
	const alphabet = "0123456789....::%afx"
	for range 200000 {
		var b []byte
		if rng.IntN(2) == 0 { // dotted fields of up to four digits
			for f := range 3 + rng.IntN(3) {
				if f > 0 {
					b = append(b, '.')
				}
				for range rng.IntN(5) {
					b = append(b, byte('0'+rng.IntN(10)))
				}
			}
		} else {
			b = make([]byte, rng.IntN(18))
			for i := range b {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		s := string(b)
		want, err := netip.ParseAddr(s)
		got, ok := parseAnswerAddr(s)
		if ok != (err == nil) || ok && got != want.Unmap() {
			t.Fatalf("parseAnswerAddr(%q) = %v, %v; netip says %v, %v", s, got, ok, want, err)
		}
	}
}

// TestGapStatsMatchesRef: schedules with and without jitter and missed
// beats, and random arrivals, give the statistics of refGapStats bit for
// bit, the one-period path (no gap spans two periods) included.
func TestGapStatsMatchesRef(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	var sc beatScratch
	fastPaths := 0
	for trial := range 20000 {
		n := 2 + rng.IntN(beaconRing-2)
		gaps := make([]float64, n)
		period := float64(1 + rng.IntN(36000))
		jitter := []float64{0, 0.1, 0.3, 0.5, 0.9}[rng.IntN(5)]
		missed := []float64{0, 0, 0.2}[rng.IntN(3)]
		random := rng.IntN(4) == 0
		for i := range gaps {
			var g float64
			if random {
				g = rng.ExpFloat64() * period
			} else {
				g = period * (1 + jitter*(2*rng.Float64()-1))
				for rng.Float64() < missed {
					g += period * (1 + jitter*(2*rng.Float64()-1))
				}
			}
			gaps[i] = math.Round(g*10) / 10 // deciseconds, as the ring keeps them
		}
		var got, want beatStats
		orig := slices.Clone(gaps)
		gapStats(gaps, &sc, &got)
		refGapStats(gaps, &want)
		if !slices.Equal(gaps, orig) {
			t.Fatalf("trial %d: gapStats changed its input", trial)
		}
		if got != want {
			t.Fatalf("trial %d, gaps %v:\n got %+v\nwant %+v", trial, gaps, got, want)
		}
		if !got.screened && got.period > 0 && slices.Max(gaps)/got.period < 1.5 {
			fastPaths++
		}
	}
	if fastPaths < 1000 {
		t.Fatalf("only %d trials took the one-period path", fastPaths)
	}
}
