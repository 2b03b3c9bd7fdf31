package eval

// This file is a reference implementation of RITA v5's published beacon
// score, written from its source for comparison only: flowhound does not use
// it to detect anything.
//
// The score of one series (a (src, dst) pair or a (src, SNI/Host) pair, over
// the last 24 h of data, with at least 4 distinct connection seconds and
// fewer than 86,400 connections) is the weighted mean, 0.25 each, of:
//
//   - timestamp: over the sorted non-zero gaps between connection starts
//     (whole seconds), the mean of the Bowley-skew score 1−|skew|, with skew
//     = (Q1+Q3−2·Q2)/(Q3−Q1) taken as 0 unless Q3−Q1 ≥ 10 and Q2 differs
//     from Q1 and Q3, and the MAD score (median−MAD)/median, clamped at 0
//     (1 when the median is below 1);
//   - data size: the same over the originator's IP bytes per connection
//     (the MAD score is 0 when the median is below 1);
//   - histogram: 24 equal bins over the dataset's span, the better of
//     1−CV of the bin counts (0 when CV > 1) and a bimodal fit, the share of
//     non-empty bins in the two commonest height steps (steps of 5% of the
//     tallest bin, one outlier bin dropped; needs at least 11 non-empty bins);
//   - duration: with at least 6 non-empty bins, the better of coverage (the
//     series' first-to-last span over the dataset's span) and consistency
//     (the longest run of consecutive non-empty bins, wrapping around, over
//     12).
//
// Sub-scores are rounded to 3 decimals as RITA does, and a series with a
// score of at least 0.5 (score_thresholds.base) is a beacon. It was checked
// against
//
//   - github.com/activecm/rita analysis/beacons.go, as stored at commit
//     0b6db7afdaf32203a0bb492545c7d4bf05ede24d (getTimestampScore,
//     getDataSizeScore, calculateStatisticalScore, calculateBowleySkewness,
//     calculateMedianAbsoluteDeviation, getHistogramScore, createHistogram,
//     getFrequencyCounts, calculateCoefficientOfVariationScore,
//     calculateBimodalFitScore, getDurationScore, getBeaconScore);
//   - analysis/analysis.go (a pair is scored when it has at least
//     unique_connection_threshold distinct timestamps and fewer than 86,400
//     connections; the beacon threat score is 0 below score_thresholds.base);
//   - analysis/spagooper.go and analysis/uconns.sql (series per (src, dst)
//     and per (src, SNI or HTTP Host); an IP pair is left out when its
//     connections of the current import belong to an SNI series that is
//     analysed; data sizes are the originator's IP bytes; the last 24 h of
//     the dataset);
//   - default_config.hjson (the defaults in DefaultRITAConfig), and
//     github.com/montanaflynn/stats quartile.go for the quartile method
//     (medians of the lower and upper halves, the median itself excluded
//     when the count is odd).
//
// Where our flow records differ from Zeek's conn.log the choice is noted
// in RITABeacons.

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
)

// RITAConfig holds the parameters of the RITA reference scorer.
// DefaultRITAConfig returns RITA v5's defaults.
type RITAConfig struct {
	// MinUniqueConns is unique_connection_threshold: the fewest distinct
	// connection timestamps (whole seconds) a series needs to be scored.
	MinUniqueConns int
	// StrobeConns is the connection count from which a series is a strobe
	// and not scored as a beacon.
	StrobeConns int
	// Window is how far back from the newest connection the analysis looks.
	Window time.Duration
	// Every is the analysis cadence, in packet time: RITA is usually run on
	// each hourly import of Zeek logs, so by default a series is scored at
	// every hour boundary (if it got new connections since the previous
	// one) and once more at the end of the data. 0 scores once, at the end.
	Every time.Duration
	// HistBins is the number of histogram bins over the dataset span (24:
	// hours of a day-long dataset).
	HistBins int
	// HistModeSensitivity, HistBimodalOutlierRemoval, HistBimodalMinHours,
	// DurMinHours and DurIdealHours are histogram_mode_sensitivity,
	// histogram_bimodal_outlier_removal, histogram_bimodal_min_hours_seen,
	// duration_min_hours_seen and duration_consistency_ideal_hours_seen.
	HistModeSensitivity       float64
	HistBimodalOutlierRemoval int
	HistBimodalMinHours       int
	DurMinHours               int
	DurIdealHours             int
	// Weights of the timestamp, data size, duration and histogram scores;
	// they sum to 1.
	TSWeight, DSWeight, DurWeight, HistWeight float64
	// Threshold is the score from which RITA reports a beacon:
	// score_thresholds.base (50) / 100. Below it the beacon threat score
	// is 0.
	Threshold float64
	// IncludeInternal keeps internal-to-internal flows. RITA's default
	// import filter drops them (and external-to-internal and
	// external-to-external flows), keeping only outbound ones.
	IncludeInternal bool
	// NeverInclude is never_included_subnets: flows to or from these
	// networks are dropped at import (the operator's allowlist).
	NeverInclude []netip.Prefix
}

// DefaultRITAConfig returns RITA v5's defaults (default_config.hjson).
func DefaultRITAConfig() RITAConfig {
	return RITAConfig{
		MinUniqueConns: 4, StrobeConns: 86400, Window: 24 * time.Hour, Every: time.Hour,
		HistBins: 24, HistModeSensitivity: 0.05, HistBimodalOutlierRemoval: 1, HistBimodalMinHours: 11,
		DurMinHours: 6, DurIdealHours: 12,
		TSWeight: 0.25, DSWeight: 0.25, DurWeight: 0.25, HistWeight: 0.25,
		Threshold: 0.5,
	}
}

// RITAScore is RITA's beacon score of one series and its parts.
type RITAScore struct {
	Score     float64 // weighted mean of the four below, rounded to 3 decimals
	Timestamp float64 // mean of the Bowley-skew and MAD scores of the intervals
	DataSize  float64 // the same over originator IP bytes
	Histogram float64 // max of the CV and bimodal-fit scores of the histogram
	Duration  float64 // max of coverage and consistency (0 with too few bars)

	TSSkew, TSMAD, DSSkew, DSMAD float64
	IntervalMedian               float64 // seconds
	Connections                  int
	HistBars, LongestRun         int
	Coverage, Consistency        float64
}

// Errors that keep RITA from scoring a series.
var (
	ErrRITATooFew = errors.New("rita: too few connections")
	ErrRITAStrobe = errors.New("rita: strobe (too many connections)")
	ErrRITARange  = errors.New("rita: empty time range")
)

// RITAScoreSeries scores one series: the start time of every connection in
// whole Unix seconds (in any order), the originator's IP bytes of each, and
// the dataset's first and last timestamp, which set the histogram's span
// and the coverage. It fails as RITA does on series it would not score.
func RITAScoreSeries(ts []int64, bytes []float64, dsMin, dsMax int64, cfg RITAConfig) (RITAScore, error) {
	var s RITAScore
	s.Connections = len(ts)
	if len(ts) >= cfg.StrobeConns {
		return s, ErrRITAStrobe
	}
	sorted := slices.Clone(ts)
	slices.Sort(sorted)
	if len(slices.Compact(slices.Clone(sorted))) < cfg.MinUniqueConns || len(sorted) < 4 {
		return s, ErrRITATooFew
	}
	if dsMax <= dsMin || sorted[len(sorted)-1] <= sorted[0] {
		return s, ErrRITARange
	}

	// Timestamp score, over the non-zero intervals between connections.
	deltas := make([]float64, 0, len(sorted)-1)
	for i := 1; i < len(sorted); i++ {
		if d := sorted[i] - sorted[i-1]; d > 0 {
			deltas = append(deltas, float64(d))
		}
	}
	if len(deltas) < 3 {
		return s, fmt.Errorf("%w: fewer than 3 non-zero intervals", ErrRITATooFew)
	}
	slices.Sort(deltas)
	s.Timestamp, s.TSSkew, s.TSMAD = ritaStatScore(deltas, 1)
	s.IntervalMedian = median(deltas)

	// Data size score.
	if len(bytes) < 3 {
		return s, fmt.Errorf("%w: fewer than 3 sizes", ErrRITATooFew)
	}
	sizes := slices.Clone(bytes)
	slices.Sort(sizes)
	s.DataSize, s.DSSkew, s.DSMAD = ritaStatScore(sizes, 0)

	// Histogram and duration scores.
	hist := ritaHistogram(sorted, dsMin, dsMax, max(cfg.HistBins, 1))
	freq, bars, run := ritaFrequencies(hist, cfg.HistModeSensitivity)
	s.HistBars, s.LongestRun = bars, run
	s.Histogram = math.Max(ritaCVScore(hist), ritaBimodalScore(freq, bars, cfg.HistBimodalOutlierRemoval, cfg.HistBimodalMinHours))
	if bars >= cfg.DurMinHours {
		s.Coverage = math.Min(math.Ceil(float64(sorted[len(sorted)-1]-sorted[0])/float64(dsMax-dsMin)*1000)/1000, 1)
		s.Consistency = math.Min(math.Ceil(float64(run)/float64(max(cfg.DurIdealHours, 1))*1000)/1000, 1)
		s.Duration = math.Max(s.Coverage, s.Consistency)
	}

	s.Score = math.Round((s.Timestamp*cfg.TSWeight+s.DataSize*cfg.DSWeight+s.Duration*cfg.DurWeight+s.Histogram*cfg.HistWeight)*1000) / 1000
	return s, nil
}

// ritaStatScore is the mean of the Bowley-skew score and the MAD score of
// sorted values, rounded to 3 decimals. defaultMAD is the MAD score when the
// median is below 1 (1 for intervals, 0 for sizes).
func ritaStatScore(sorted []float64, defaultMAD float64) (score, skew, mad float64) {
	q1, q2, q3 := quartiles(sorted)
	// Bowley skewness (Q1+Q3−2·Q2)/(Q3−Q1), taken as 0 unless the IQR is
	// at least 10 and the median differs from both quartiles.
	if den := q3 - q1; den >= 10 && q2 != q1 && q2 != q3 {
		skew = (q1 + q3 - 2*q2) / den
	}
	skewScore := 1 - math.Abs(skew)

	med := median(sorted)
	dev := make([]float64, len(sorted))
	for i, v := range sorted {
		dev[i] = math.Abs(v - med)
	}
	slices.Sort(dev)
	mad = median(dev)
	madScore := defaultMAD
	if med >= 1 {
		madScore = (med - mad) / med
	}
	if madScore < 0 || math.IsNaN(madScore) {
		madScore = 0
	}
	return math.Round((skewScore+madScore)/2*1000) / 1000, skew, mad
}

// quartiles returns Q1, Q2, Q3 of sorted values (at least 2): Q2 is the
// median, Q1 and Q3 the medians of the lower and upper halves, which leave
// out the middle value when the count is odd.
func quartiles(sorted []float64) (q1, q2, q3 float64) {
	n := len(sorted)
	lo, hi := n/2, n/2
	if n%2 == 1 {
		lo, hi = (n-1)/2, (n-1)/2+1
	}
	return median(sorted[:lo]), median(sorted), median(sorted[hi:])
}

// median of sorted values; 0 for none.
func median(sorted []float64) float64 {
	n := len(sorted)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// ritaHistogram counts sorted timestamps into bins evenly spaced over
// [dsMin, dsMax]; earlier ones fall into the first bin, later ones into the
// last.
func ritaHistogram(sorted []int64, dsMin, dsMax int64, bins int) []int {
	edges := make([]float64, bins+1)
	step := float64(dsMax-dsMin) / float64(bins)
	for i := range edges {
		edges[i] = float64(dsMin) + float64(i)*step
	}
	edges[bins] = float64(dsMax)
	hist := make([]int, bins)
	b := 0
	for _, t := range sorted {
		for b < bins-1 && float64(t) >= edges[b+1] {
			b++
		}
		hist[b]++
	}
	return hist
}

// ritaFrequencies groups the non-empty bars of a histogram by height, in
// steps of sensitivity × the tallest bar (rounded up), and returns how many
// bars fall in each step, the number of non-empty bars and the longest run
// of consecutive non-empty bars, wrapping around the end.
func ritaFrequencies(hist []int, sensitivity float64) (freq map[int]int, bars, longestRun int) {
	tallest := 0
	for _, h := range hist {
		if h > 0 {
			bars++
		}
		tallest = max(tallest, h)
	}
	step := math.Ceil(float64(tallest) * sensitivity)
	freq = map[int]int{}
	run := 0
	for i := range 2 * len(hist) {
		h := hist[i%len(hist)]
		if h > 0 {
			run++
		} else {
			longestRun = max(longestRun, run)
			run = 0
		}
		if i < len(hist) && h > 0 {
			freq[int(math.Floor(float64(h)/step)*step)]++
		}
	}
	longestRun = min(max(longestRun, run), len(hist))
	return freq, bars, longestRun
}

// ritaCVScore is 1 − the coefficient of variation of the histogram's bars
// (empty ones included), 0 when the CV exceeds 1, rounded to 3 decimals.
func ritaCVScore(hist []int) float64 {
	total := 0
	for _, h := range hist {
		total += h
	}
	if total <= 0 {
		return 0
	}
	mean := float64(total) / float64(len(hist))
	var ss float64
	for _, h := range hist {
		ss += (float64(h) - mean) * (float64(h) - mean)
	}
	cv := math.Sqrt(ss/float64(len(hist))) / mean
	if cv > 1 {
		return 0
	}
	return math.Min(math.Round((1-cv)*1000)/1000, 1)
}

// ritaBimodalScore is the share of non-empty bars in the two most common
// height steps, after dropping outlierRemoval bars; 0 unless at least
// minHours bars are non-empty (a minHours below 6 means 11, as in RITA).
func ritaBimodalScore(freq map[int]int, bars, outlierRemoval, minHours int) float64 {
	if minHours < 6 {
		minHours = 11
	}
	if bars < minHours || bars == 0 {
		return 0
	}
	counts := make([]int, 0, len(freq))
	for _, c := range freq {
		counts = append(counts, c)
	}
	slices.SortFunc(counts, func(a, b int) int { return b - a })
	top := counts[0]
	if len(counts) > 1 {
		top += counts[1]
	}
	fit := float64(top) / math.Max(float64(bars-outlierRemoval), 1)
	return math.Min(math.Round(fit*1000)/1000, 1)
}

// ritaRec is one flow as the reference scorer sees it.
type ritaRec struct {
	ts      int64 // start, whole Unix seconds
	start   time.Time
	end     int64 // nanoseconds: when Zeek would have logged it
	bytes   float64
	src     netip.Addr
	dst     netip.Addr
	port    uint16
	proto   flow.Proto
	ipKey   int
	sniKey  int // -1 without a name
	visible bool
}

type ritaKey struct {
	sni      bool
	src, dst netip.Addr
	name     string
}

// RITABeacons runs the reference scorer over flow records and returns a
// beacon finding for every series that scores at least cfg.Threshold at an
// analysis time. Findings carry a stable UID per series, the analysis time
// as Time and, like the engine's, are emitted again only when the score
// moves by detect.MinScoreChange.
//
// Mapping from Zeek's logs to flow records: only final records are used
// (conn.log has one line per finished connection); a connection's
// timestamp is its Start in whole seconds and it becomes visible to an
// analysis once its End has passed; the data size is OrigIPBytes; the SNI
// series name is the TLS SNI, else the HTTP Host, else the host of an HTTP
// proxy request, lower-cased.
func RITABeacons(records []flow.Record, cfg RITAConfig) []detect.Finding {
	var recs []ritaRec
	keys := map[ritaKey]int{}
	var keyList []ritaKey
	keyOf := func(k ritaKey) int {
		i, ok := keys[k]
		if !ok {
			i = len(keyList)
			keys[k] = i
			keyList = append(keyList, k)
		}
		return i
	}
	for i := range records {
		r := &records[i]
		if !r.Final || !r.LocalOrig || r.LocalResp && !cfg.IncludeInternal || inPrefixes(cfg.NeverInclude, r.OrigAddr) || inPrefixes(cfg.NeverInclude, r.RespAddr) {
			continue
		}
		rr := ritaRec{ts: r.Start.Unix(), start: r.Start, end: r.End.UnixNano(), bytes: float64(r.OrigIPBytes),
			src: r.OrigAddr, dst: r.RespAddr, port: r.RespPort, proto: r.Proto, sniKey: -1}
		rr.ipKey = keyOf(ritaKey{src: r.OrigAddr, dst: r.RespAddr})
		if r.App != nil {
			name := cmp.Or(r.App.TLSSNI, r.App.HTTPHost, hostOnly(r.App.HTTPProxyTarget))
			if name != "" {
				rr.sniKey = keyOf(ritaKey{sni: true, src: r.OrigAddr, name: strings.ToLower(strings.TrimSuffix(name, "."))})
			}
		}
		recs = append(recs, rr)
	}
	if len(recs) == 0 {
		return nil
	}
	slices.SortStableFunc(recs, func(a, b ritaRec) int { return cmp.Compare(a.end, b.end) })

	// Analysis times: each cadence boundary after the first record, then
	// the end of the data.
	last := recs[len(recs)-1].end
	var times []int64
	if every := int64(cfg.Every); every > 0 {
		for t := (recs[0].end/every + 1) * every; t < last; t += every {
			times = append(times, t)
		}
	}
	times = append(times, last)

	members := make([][]int, len(keyList)) // visible records of each key
	emitted := map[string]float64{}
	var out []detect.Finding
	minTS, maxTS := int64(math.MaxInt64), int64(math.MinInt64)
	pos := 0
	for _, now := range times {
		updated := map[int][]int{} // key → records that became visible now
		for ; pos < len(recs) && recs[pos].end <= now; pos++ {
			r := &recs[pos]
			minTS, maxTS = min(minTS, r.ts), max(maxTS, r.ts)
			members[r.ipKey] = append(members[r.ipKey], pos)
			updated[r.ipKey] = append(updated[r.ipKey], pos)
			if r.sniKey >= 0 {
				members[r.sniKey] = append(members[r.sniKey], pos)
				updated[r.sniKey] = append(updated[r.sniKey], pos)
			}
		}
		if len(updated) == 0 {
			continue
		}
		dsMax := maxTS
		dsMin := max(minTS, dsMax-int64(cfg.Window/time.Second))
		upd := make([]int, 0, len(updated))
		for k := range updated {
			upd = append(upd, k)
		}
		// SNI series first: their candidates hide their IP pairs.
		slices.SortFunc(upd, func(a, b int) int {
			ka, kb := keyList[a], keyList[b]
			if ka.sni != kb.sni {
				if ka.sni {
					return -1
				}
				return 1
			}
			return cmp.Or(ka.src.Compare(kb.src), ka.dst.Compare(kb.dst), cmp.Compare(ka.name, kb.name))
		})
		candidate := map[int]bool{}
		for _, k := range upd {
			key := keyList[k]
			if !key.sni {
				hidden := false
				for _, ri := range updated[k] {
					if sk := recs[ri].sniKey; sk >= 0 && candidate[sk] {
						hidden = true
						break
					}
				}
				if hidden {
					continue
				}
			}
			var sel []int
			for _, ri := range members[k] {
				if recs[ri].ts >= dsMin && recs[ri].ts <= dsMax {
					sel = append(sel, ri)
				}
			}
			ts := make([]int64, len(sel))
			bytes := make([]float64, len(sel))
			for i, ri := range sel {
				ts[i], bytes[i] = recs[ri].ts, recs[ri].bytes
			}
			sc, err := RITAScoreSeries(ts, bytes, dsMin, dsMax, cfg)
			if key.sni && !errors.Is(err, ErrRITATooFew) && !errors.Is(err, ErrRITAStrobe) {
				candidate[k] = true
			}
			if err != nil || sc.Score < cfg.Threshold {
				continue
			}
			f := ritaFinding(key, recs, sel, sc, now)
			if prev, ok := emitted[f.UID]; ok {
				if math.Abs(sc.Score-prev) < detect.MinScoreChange {
					continue
				}
				f.Status = detect.StatusUpdate
			}
			emitted[f.UID] = sc.Score
			out = append(out, f)
		}
	}
	return out
}

func ritaFinding(key ritaKey, recs []ritaRec, sel []int, sc RITAScore, now int64) detect.Finding {
	first, last := recs[sel[0]].start, recs[sel[0]].start
	dsts := map[netip.Addr]int{}
	ports := map[uint16]int{}
	protos := map[flow.Proto]int{}
	for _, ri := range sel {
		r := &recs[ri]
		if r.start.Before(first) {
			first = r.start
		}
		if r.start.After(last) {
			last = r.start
		}
		dsts[r.dst]++
		ports[r.port]++
		protos[r.proto]++
	}
	f := detect.Finding{
		Kind: detect.KindBeacon, Status: detect.StatusNew, Time: time.Unix(0, now).UTC(),
		Score: sc.Score, Severity: detect.SeverityFor(sc.Score),
		SubScores: []detect.SubScore{{Name: "timestamp", Value: sc.Timestamp}, {Name: "data_size", Value: sc.DataSize},
			{Name: "histogram", Value: sc.Histogram}, {Name: "duration", Value: sc.Duration}},
		Src: key.src, Dst: mostCommon(dsts, netip.Addr.Compare), DstPort: mostCommon(ports, cmp.Compare[uint16]),
		Proto: mostCommon(protos, cmp.Compare[flow.Proto]).String(), FQDN: key.name,
		Evidence: detect.Evidence{Connections: uint64(len(sel)), IntervalMedian: sc.IntervalMedian, IntervalMAD: sc.TSMAD,
			Coverage: sc.Coverage, Notes: []string{"RITA v5 reference score, for comparison only"}},
		MITRE:     []string{"T1071"},
		FirstSeen: first, LastSeen: last, Sensor: SystemRITA,
	}
	if key.sni {
		f.UID = "rita-ref:sni:" + key.src.String() + ">" + key.name
	} else {
		f.UID = "rita-ref:ip:" + key.src.String() + ">" + key.dst.String()
	}
	return f
}

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// mostCommon returns the most frequent key, the least by cmpKey on ties.
func mostCommon[K comparable](m map[K]int, cmpKey func(a, b K) int) K {
	var best K
	n := -1
	for k, c := range m {
		if c > n || c == n && cmpKey(k, best) < 0 {
			best, n = k, c
		}
	}
	return best
}
