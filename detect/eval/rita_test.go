package eval

import (
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
)

const day = int64(24 * 3600)

// series returns connection times (whole seconds) from 0 over a day with
// the given period and ± jitter fraction, and constant sizes.
func series(period float64, jitter float64, seed uint64) ([]int64, []float64) {
	r := rand.New(rand.NewPCG(seed, 99))
	var ts []int64
	var sizes []float64
	for t := 0.0; t < float64(day); t += period * (1 + jitter*(2*r.Float64()-1)) {
		ts = append(ts, int64(t))
		sizes = append(sizes, 800)
	}
	return ts, sizes
}

func TestRITAPerfectBeacon(t *testing.T) {
	ts, sizes := series(60, 0, 1)
	s, err := RITAScoreSeries(ts, sizes, 0, day, DefaultRITAConfig())
	if err != nil {
		t.Fatal(err)
	}
	if s.Score < 0.99 || s.Timestamp != 1 || s.DataSize != 1 || s.Histogram < 0.99 || s.Duration < 0.99 {
		t.Errorf("perfect 60 s beacon scores %+v, want ≈1 everywhere", s)
	}
	if s.IntervalMedian != 60 || s.TSMAD != 0 || s.TSSkew != 0 {
		t.Errorf("interval statistics %+v", s)
	}
}

func TestRITARandomArrivals(t *testing.T) {
	cfg := DefaultRITAConfig()
	perfectTS, perfectSizes := series(60, 0, 1)
	perfect, _ := RITAScoreSeries(perfectTS, perfectSizes, 0, day, cfg)
	for seed := range uint64(5) {
		r := rand.New(rand.NewPCG(seed, 7))
		// Uniformly random arrivals over the day (exponential gaps) with
		// log-normal sizes (σ = 1.5).
		ts := make([]int64, 1440)
		sizes := make([]float64, len(ts))
		for i := range ts {
			ts[i] = r.Int64N(day)
			sizes[i] = math.Round(2000 * math.Exp(1.5*r.NormFloat64()))
		}
		s, err := RITAScoreSeries(ts, sizes, 0, day, cfg)
		if err != nil {
			t.Fatal(err)
		}
		// An exponential's Bowley skew is ln(4/3)/ln 3 ≈ 0.26 and its
		// MAD/median ≈ 0.69, so the timestamp score is ≈ (0.74+0.31)/2.
		if s.Timestamp > 0.6 || s.DataSize > 0.5 {
			t.Errorf("seed %d: random arrivals and sizes: timestamp %v, data size %v", seed, s.Timestamp, s.DataSize)
		}
		if s.Score > perfect.Score-0.25 {
			t.Errorf("seed %d: random arrivals score %v, perfect beacon %v", seed, s.Score, perfect.Score)
		}
		// Spread over the whole day they still fill the histogram and the
		// duration, which is why RITA flags chatty all-day pairs.
		t.Logf("seed %d: random all-day arrivals: %+v", seed, s)
		// A short random burst in a day-long dataset scores low.
		burst := make([]int64, 40)
		for i := range burst {
			burst[i] = 3600 + r.Int64N(2*3600)
		}
		s, err = RITAScoreSeries(burst, sizes[:len(burst)], 0, day, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if s.Score >= cfg.Threshold {
			t.Errorf("seed %d: a random 2 h burst scores %+v, above the threshold", seed, s)
		}
	}
}

func TestRITAJitterLowersScore(t *testing.T) {
	cfg := DefaultRITAConfig()
	prev := 2.0
	for _, j := range []float64{0, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9} {
		var sum float64
		const seeds = 5
		for seed := range uint64(seeds) {
			ts, sizes := series(300, j, seed)
			s, err := RITAScoreSeries(ts, sizes, 0, day, cfg)
			if err != nil {
				t.Fatal(err)
			}
			sum += s.Timestamp*cfg.TSWeight + s.Histogram*cfg.HistWeight + s.DataSize*cfg.DSWeight + s.Duration*cfg.DurWeight
		}
		mean := sum / seeds
		t.Logf("jitter %.2f: mean score %.3f", j, mean)
		if mean >= prev {
			t.Errorf("jitter %v: mean score %.4f not below %.4f", j, mean, prev)
		}
		prev = mean
	}
}

func TestRITAStatistics(t *testing.T) {
	for _, tc := range []struct {
		in         []float64
		q1, q2, q3 float64
	}{
		{[]float64{1, 2, 3, 4, 5, 6, 7}, 2, 4, 6},
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8}, 2.5, 4.5, 6.5},
		{[]float64{1, 2, 3}, 1, 2, 3},
	} {
		q1, q2, q3 := quartiles(tc.in)
		if q1 != tc.q1 || q2 != tc.q2 || q3 != tc.q3 {
			t.Errorf("quartiles(%v) = %v %v %v", tc.in, q1, q2, q3)
		}
	}
	// Right-skewed with an IQR ≥ 10: Q1 10, Q2 20, Q3 60 → skew 0.6.
	score, skew, mad := ritaStatScore([]float64{5, 10, 15, 20, 30, 60, 100}, 1)
	if math.Abs(skew-0.6) > 1e-9 || mad != 10 || score != math.Round((0.4+0.5)/2*1000)/1000 {
		t.Errorf("stat score = %v skew %v mad %v", score, skew, mad)
	}
	// The same shape with an IQR under 10 has its skew zeroed.
	_, skew, _ = ritaStatScore([]float64{0.5, 1, 1.5, 2, 3, 6, 10}, 1)
	if skew != 0 {
		t.Errorf("skew with IQR < 10 = %v, want 0", skew)
	}
	// Median below 1: the default MAD score (1 for intervals, 0 sizes).
	if s, _, _ := ritaStatScore([]float64{0, 0, 0.5}, 1); s != 1 {
		t.Errorf("tiny intervals score %v, want 1", s)
	}
	if s, _, _ := ritaStatScore([]float64{0, 0, 0.5}, 0); s != 0.5 {
		t.Errorf("tiny sizes score %v, want 0.5", s)
	}
}

func TestRITAHistogram(t *testing.T) {
	// Alternating 10 and 20 connections an hour: CV 1/3, but two modes
	// cover every bar, so the bimodal fit wins.
	hist := make([]int, 24)
	for i := range hist {
		hist[i] = 10 + 10*(i%2)
	}
	if cv := ritaCVScore(hist); cv != 0.667 {
		t.Errorf("cv score %v, want 0.667", cv)
	}
	freq, bars, run := ritaFrequencies(hist, 0.05)
	if bars != 24 || run != 24 || freq[10] != 12 || freq[20] != 12 {
		t.Errorf("frequencies %v bars %d run %d", freq, bars, run)
	}
	if b := ritaBimodalScore(freq, bars, 1, 11); b != 1 {
		t.Errorf("bimodal %v, want 1", b)
	}
	// A run that wraps around the end of the day.
	hist = []int{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1}
	if _, bars, run := ritaFrequencies(hist, 0.05); bars != 5 || run != 5 {
		t.Errorf("wrapped run: bars %d run %d, want 5 5", bars, run)
	}
	// Timestamps on bin edges: [0, 1h) is bin 0, the last edge is in the
	// last bin.
	h := ritaHistogram([]int64{0, 3599, 3600, day}, 0, day, 24)
	if h[0] != 2 || h[1] != 1 || h[23] != 1 {
		t.Errorf("histogram %v", h)
	}
}

func TestRITAScoreSeriesRejects(t *testing.T) {
	cfg := DefaultRITAConfig()
	if _, err := RITAScoreSeries([]int64{0, 0, 60, 120, 120}, []float64{1, 1, 1, 1, 1}, 0, day, cfg); !errors.Is(err, ErrRITATooFew) {
		t.Errorf("3 unique timestamps: %v", err)
	}
	cfg.StrobeConns = 10
	ts, sizes := series(60, 0, 1)
	if _, err := RITAScoreSeries(ts[:20], sizes[:20], 0, day, cfg); !errors.Is(err, ErrRITAStrobe) {
		t.Errorf("strobe: %v", err)
	}
	if _, err := RITAScoreSeries(ts[:20], sizes[:20], day, day, DefaultRITAConfig()); !errors.Is(err, ErrRITARange) {
		t.Errorf("empty range: %v", err)
	}
}

func TestRITABeacons(t *testing.T) {
	src := netip.MustParseAddr("10.0.0.5")
	c2 := netip.MustParseAddr("203.0.113.9")
	cdn := netip.MustParseAddr("198.51.100.1")
	peer := netip.MustParseAddr("10.0.0.77")
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	var recs []flow.Record
	add := func(dst netip.Addr, at time.Time, local bool, name string) {
		r := flow.Record{Start: at, End: at.Add(time.Second), OrigAddr: src, RespAddr: dst, RespPort: 443, Proto: flow.ProtoTCP,
			OrigIPBytes: 900, LocalOrig: true, LocalResp: local, Final: true}
		if name != "" {
			r.App = &flow.App{TLSSNI: name}
		}
		recs = append(recs, r)
	}
	for i := range 6 * 60 { // a 60 s beacon by IP for 6 h
		add(c2, start.Add(time.Duration(i)*time.Minute), false, "")
	}
	for i := range 6 * 12 { // a 5 min beacon by name through a CDN
		add(cdn, start.Add(time.Duration(i)*5*time.Minute+7*time.Second), false, "Beacon.Example")
	}
	for i := range 6 * 60 { // internal to internal: RITA's import drops it
		add(peer, start.Add(time.Duration(i)*time.Minute+3*time.Second), true, "")
	}
	slices.SortFunc(recs, func(a, b flow.Record) int { return a.End.Compare(b.End) })

	fs := RITABeacons(recs, DefaultRITAConfig())
	uids := map[string]detect.Finding{}
	for _, f := range fs {
		if _, ok := uids[f.UID]; !ok {
			uids[f.UID] = f
		}
	}
	ipf, ok := uids["rita-ref:ip:10.0.0.5>203.0.113.9"]
	if !ok {
		t.Fatalf("no IP beacon among %v", keys(uids))
	}
	snif, ok := uids["rita-ref:sni:10.0.0.5>beacon.example"]
	if !ok {
		t.Fatalf("no SNI beacon among %v", keys(uids))
	}
	if len(uids) != 2 {
		t.Errorf("findings %v: the CDN pair hides behind its SNI series, the internal pair is filtered", keys(uids))
	}
	if ipf.Kind != detect.KindBeacon || ipf.Dst != c2 || ipf.Score < 0.5 || len(ipf.SubScores) != 4 || ipf.FirstSeen != start {
		t.Errorf("IP finding %+v", ipf)
	}
	if snif.Dst != cdn || snif.FQDN != "beacon.example" || snif.DstPort != 443 {
		t.Errorf("SNI finding %+v", snif)
	}
	// Hourly analyses: the first detection comes at the first hour mark.
	if want := start.Add(time.Hour); !ipf.Time.Equal(want) {
		t.Errorf("first detection at %v, want %v", ipf.Time, want)
	}
	cfg := DefaultRITAConfig()
	cfg.IncludeInternal = true
	found := false
	for _, f := range RITABeacons(recs, cfg) {
		found = found || f.Dst == peer
	}
	if !found {
		t.Error("IncludeInternal did not score the internal pair")
	}
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
