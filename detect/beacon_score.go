package detect

import (
	"math"
	"math/bits"
)

// Beacon statistics. A C2 implant sleeps for a period, plus or minus a
// random jitter, between check-ins, and sometimes skips one. Its gaps are
// therefore i.i.d. around the period P, or sums of k of them when k−1
// beats were missed. Random (Poisson-like) traffic has no such structure:
// many very short gaps, a long tail, and no common unit.
//
// The timing statistic X combines three robust measures of how far the
// gaps are from that model:
//
//   - J, the median of |g − kP| / (P√k) after folding: a gap of 1.5 P or
//     more is taken as k = round(g/P) periods (missed beats), P being the
//     median folded gap. A sum of k jittered sleeps spreads like √k, hence
//     the scaling. For a uniform ±j jitter J ≈ j/2.
//   - short, the fraction of gaps under 0.4 P: a sleep with up to ±60 %
//     jitter never produces them; random arrivals produce about a third.
//   - the folding itself: 1 − coverage, coverage being the number of gaps
//     over the number of periods they span (1 for a beacon that misses
//     nothing, 0.75 when it misses a quarter). Folding makes random data
//     look regular, so every folded period that holds no beat is charged.
//
// X = J + short + (1 − coverage)/2. Simulated over 4,000 draws of nine gaps
// (ten beats): a perfect beacon gives 0, ±15 % jitter 0.06, ±50 % jitter
// with a fifth of the beats missed 0.27 (95th percentile 0.40), ±80 %
// jitter 0.39; Poisson arrivals 0.61 (5th percentile 0.36), log-normal
// gaps of σ = 1 0.54. The test against X0(n) below therefore separates
// beacons of up to ±50 % jitter from random traffic in about ten beats,
// and higher jitter needs more beats and regular sizes.

// beatScratch is the working memory of one scoring pass.
type beatScratch struct {
	g, f, r [beaconRing]float64
}

// beatStats summarises a key's recent beats.
type beatStats struct {
	gaps     int     // gaps in the window
	median   float64 // median raw gap (s)
	period   float64 // median folded gap (s)
	mad      float64 // median |g − kP| (s), folded; see gapMAD
	jitter   float64 // J
	short    float64
	coverage float64
	x        float64 // the timing statistic
	sizeDisp float64 // median absolute deviation of ln(size): relative size spread
	sizeMed  float64 // median size (bytes)
	screened bool    // failed the screen: only median is set
}

// beaconMinCore is the share of gaps within ±50 % of the median gap below
// which a key scores nothing without further work. Simulated over 4,000
// draws of ten beats, a beacon with ±50 % jitter that misses a quarter of
// its beats fails it one time in 200 (±80 % jitter: one in 20; both are
// scored again at a later beat), Poisson arrivals 41 % of the time (62 %
// over 24 beats).
const beaconMinCore = 0.4

// medianOf returns the median of a, reordering a.
func medianOf(a []float64) float64 {
	n := len(a)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return selectK(a, n/2)
	}
	hi := selectK(a, n/2)
	lo := a[0] // after selectK, a[:n/2] holds the n/2 smallest
	for _, v := range a[1 : n/2] {
		lo = math.Max(lo, v)
	}
	return (lo + hi) / 2
}

// selectK reorders a so that a[k] is the k-th smallest, smaller ones
// before it and larger ones after it: quickselect with a median-of-three
// pivot and branch-free partitions. Gaps and sizes are in random order, so
// a partition that branches on each comparison mispredicts half of them;
// this one moves every element unconditionally instead, which is about
// twice as fast on a ring's worth of values. Values equal to the pivot are
// gathered too, so that runs of equal gaps (an exact schedule) end the
// search at once.
func selectK(a []float64, k int) float64 {
	lo, hi := 0, len(a) // a[lo:hi] holds the k-th smallest
	for hi-lo > 1 {
		m := lo + (hi-lo)/2
		x, y, z := a[lo], a[m], a[hi-1]
		p := max(min(x, y), min(max(x, y), z))
		switch p { // the pivot to the end
		case x:
			a[lo], a[hi-1] = a[hi-1], a[lo]
		case y:
			a[m], a[hi-1] = a[hi-1], a[m]
		}
		s := lo // a[lo:s] < p
		for i := lo; i < hi-1; i++ {
			v := a[i]
			a[i] = a[s]
			a[s] = v
			s += b2i(v < p)
		}
		a[hi-1] = a[s]
		a[s] = p
		if k < s {
			hi = s
			continue
		}
		if k == s {
			return p
		}
		t := s + 1 // a[s:t] == p
		for i := s + 1; i < hi; i++ {
			v := a[i]
			a[i] = a[t]
			a[t] = v
			t += b2i(v == p)
		}
		if k < t {
			return p
		}
		lo = t
	}
	return a[k]
}

// b2i is 1 for true; the compiler makes it a flag move, not a branch.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// foldK is how many periods a gap spans: 1 below 1.5 P, so that a jittered
// gap is not mistaken for a missed beat.
func foldK(g, p float64) float64 {
	q := g / p
	if q < 1.5 {
		return 1
	}
	return math.Round(q)
}

// gapStats computes the timing statistics of gaps (seconds, in time
// order); it leaves gaps untouched.
func gapStats(gaps []float64, sc *beatScratch, st *beatStats) {
	n := len(gaps)
	st.gaps = n
	if n == 0 {
		return
	}
	g := sc.g[:n]
	copy(g, gaps)
	st.median = medianOf(g)
	p := st.median
	// A cheap screen first: a schedule puts most gaps within ±50 % of
	// the median gap (all of them up to ±50 % jitter, but for missed
	// beats); random arrivals put a third there. Keys that fail it are not
	// worth the folding.
	core, longest := 0, 0.0
	for _, x := range gaps {
		if x >= 0.5*p && x <= 1.5*p {
			core++
		}
		longest = max(longest, x)
	}
	if float64(core) < beaconMinCore*float64(n) {
		st.period, st.x, st.screened = p, math.Inf(1), true
		return
	}
	f := sc.f[:n]
	for range 2 {
		if p <= 0 {
			break
		}
		if longest/p < 1.5 {
			// No gap spans two periods, so folding leaves every gap as
			// it is and their median is the median gap (no missed beats,
			// the common case, costs no selection).
			p = st.median
			continue
		}
		for i, x := range gaps {
			f[i] = x / foldK(x, p)
		}
		q := medianOf(f)
		if q == p {
			break // a second round would fold alike
		}
		p = q
	}
	if p <= 0 {
		st.period, st.x = 0, math.Inf(1)
		return
	}
	st.period = p
	r := sc.r[:n]
	periods, short := 0.0, 0
	if longest/p < 1.5 {
		// Every gap is one period (k = 1): the same values without the
		// fold, the square root and a division per gap.
		for i, x := range gaps {
			r[i] = math.Abs(x-p) / p
			short += b2i(x < 0.4*p)
		}
		periods = float64(n)
	} else {
		for i, x := range gaps {
			k := foldK(x, p)
			periods += k
			r[i] = math.Abs(x-k*p) / (p * math.Sqrt(k))
			if x < 0.4*p {
				short++
			}
		}
	}
	st.jitter = medianOf(r)
	st.short = float64(short) / float64(n)
	st.coverage = float64(n) / periods
	st.x = st.jitter + st.short + (1-st.coverage)/2
}

// gapMAD computes st.mad, which only a finding's evidence needs.
func gapMAD(gaps []float64, sc *beatScratch, st *beatStats) {
	if st.period <= 0 || len(gaps) == 0 {
		return
	}
	f := sc.f[:len(gaps)]
	for i, x := range gaps {
		f[i] = math.Abs(x - foldK(x, st.period)*st.period)
	}
	st.mad = medianOf(f)
}

// sizeStats computes the spread of sizes given as log2(1+bytes) in
// eighths (see logSize); it sorts sizes. The deviations from the median
// come out in order by merging the two sides.
// The median and the deviations are counted in sixteenths, where they are
// exact: the results are those of the same computation on the sizes as
// float64s, bit for bit.
func sizeStats(sizes []uint8, st *beatStats) {
	n := len(sizes)
	if n == 0 {
		return
	}
	// Sorted by counting: a bitmap of the values present walks them in
	// order (an insertion sort mispredicts a branch per size).
	var count [256]uint8
	var present [4]uint64
	for _, v := range sizes {
		count[v]++
		present[v>>6] |= 1 << (v & 63)
	}
	a := sizes
	k := 0
	for w, x := range present {
		for ; x != 0; x &= x - 1 {
			v := uint8(w<<6 | bits.TrailingZeros64(x))
			for c := count[v]; c > 0; c-- {
				a[k] = v
				k++
			}
		}
	}
	// m2 is the median in sixteenths: twice it in eighths.
	m2 := 2 * int(a[n/2])
	if n%2 == 0 {
		m2 = int(a[n/2-1]) + int(a[n/2])
	}
	// Deviations ascending, in sixteenths: a[j:] upwards and a[:j]
	// downwards from the median.
	var dev [beaconRing]int
	d := dev[:n]
	j := 0
	for j < n && 2*int(a[j]) < m2 {
		j++
	}
	lo, hi := j-1, j
	for k := range d {
		if hi >= n || lo >= 0 && m2-2*int(a[lo]) <= 2*int(a[hi])-m2 {
			d[k] = m2 - 2*int(a[lo])
			lo--
		} else {
			d[k] = 2*int(a[hi]) - m2
			hi++
		}
	}
	disp := float64(d[n/2]) / 16
	if n%2 == 0 {
		disp = float64(d[n/2-1]+d[n/2]) / 32
	}
	st.sizeDisp = disp * math.Ln2
	st.sizeMed = math.Exp2(float64(m2)/16) - 1
}

// sortedMedian is the median of sorted values, as medianOf computes it.
func sortedMedian(a []float64) float64 {
	n := len(a)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return a[n/2]
	}
	return (a[n/2-1] + a[n/2]) / 2
}

// Score calibration (see the simulation figures above and the tests).
const (
	// beaconX0 is the timing statistic at which the intervals say nothing
	// either way; below it they count for a beacon. It is stricter with few
	// gaps, where random traffic looks regular more often.
	beaconX0 = 0.5
	// beaconM0 is the relative size spread at which sizes say nothing
	// either way: C2 check-ins repeat one request (spread ≈ 0–0.2), web
	// browsing spreads 0.3 and more.
	beaconM0 = 0.35
	// beaconSizeWeight weighs size regularity against timing regularity.
	beaconSizeWeight = 0.5
	// beaconEvidenceScale turns accumulated evidence into a score:
	// score = 1 − exp(−E/scale). A perfect beacon scores 0.96 after six
	// beats; one with ±50 % jitter and regular sizes typically crosses
	// 0.7 between its seventh and tenth (see TestBeaconJitterMissed).
	beaconEvidenceScale = 4.7
	// beaconTight is the timing statistic below which intervals count
	// logarithmically (see beaconEvidence).
	beaconTight = 0.1
	// beaconMaxGaps caps the gaps counted as evidence, so that a key with
	// thousands of slightly regular connections does not score on volume.
	beaconMaxGaps = 48
)

func timingX0(gaps int) float64 { return beaconX0 - beaconX0/float64(max(gaps, 1)) }

// beaconEvidence turns the statistics and the number of gaps seen in total
// into per-component scores in [-1, 1] and the accumulated evidence.
func beaconEvidence(st *beatStats, totalGaps int) (t, s, e float64) {
	x0 := timingX0(st.gaps)
	t = math.Max(-1, math.Min(1, (x0-st.x)/x0))
	if st.x < beaconTight {
		// Very tight intervals are much stronger evidence than the linear
		// scale says: the chance that random arrivals keep within ±δ of a
		// period falls like δ per gap, so tightness counts
		// logarithmically. ±3 % jitter (X ≈ 0.015) counts 1.9 per gap.
		t += 0.5 * math.Log(beaconTight/math.Max(st.x, beaconTight/20))
	}
	s = math.Max(-1, math.Min(1, (beaconM0-st.sizeDisp)/beaconM0))
	if t <= 0 {
		return t, s, 0 // regular sizes alone never make a beacon
	}
	n := float64(min(totalGaps, beaconMaxGaps))
	e = n * (t + beaconSizeWeight*math.Max(s, -0.5))
	return t, s, math.Max(e, 0)
}

func evidenceScore(e float64) float64 { return 1 - math.Exp(-e/beaconEvidenceScale) }

// prevalenceDamping is the factor a destination's prevalence (distinct
// internal sources with state about it) applies to a score, given how many
// sources have state at all. One or two sources: none. Up to max: down to
// 0.6 linearly, beyond it inversely (0.3 at twice max). A destination that
// half or more of a population of four or more uses is damped to at most
// 0.5 whatever max says: every host's update check is not C2.
func prevalenceDamping(p, population, maxPrev int) float64 {
	if p <= 2 {
		return 1
	}
	maxPrev = max(maxPrev, 3)
	d := 1.0
	if p <= maxPrev {
		d = 1 - 0.4*float64(p-2)/float64(maxPrev-2)
	} else {
		d = 0.6 * float64(maxPrev) / float64(p)
	}
	if population >= 4 && 2*p >= population {
		d = math.Min(d, 0.5)
	}
	return d
}

// dutyDamping discounts keys whose connections fill most of the time
// between them: a session that is re-established (a push channel
// reconnecting every hour, a VPN) rather than a check-in that lasts
// seconds and sleeps for minutes. Up to a duty cycle of 0.3: none; at 0.8
// and above: zero.
func dutyDamping(duty float64) float64 {
	return math.Max(0, math.Min(1, (0.8-duty)/0.5))
}
