package eval

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/flowhound/flowhound/capture/synth"
	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
)

// emission is one finding as a system emitted it. seq is the number of flow
// records the system had received before it (-1 when unknown).
type emission struct {
	f   detect.Finding
	seq int
}

// grouped is every emission of one finding UID.
type grouped struct {
	f     detect.Finding // first emission, seen-window widened to all, best score
	first time.Time      // time of the first emission
	ems   []emission
}

// group folds emissions by UID, in order of first emission.
func group(ems []emission) []*grouped {
	byUID := map[string]*grouped{}
	var out []*grouped
	for _, e := range ems {
		g := byUID[e.f.UID]
		if g == nil {
			g = &grouped{f: e.f, first: e.f.Time}
			byUID[e.f.UID] = g
			out = append(out, g)
		} else {
			if e.f.Score > g.f.Score {
				g.f.Score = e.f.Score
			}
			if !e.f.FirstSeen.IsZero() && (g.f.FirstSeen.IsZero() || e.f.FirstSeen.Before(g.f.FirstSeen)) {
				g.f.FirstSeen = e.f.FirstSeen
			}
			if e.f.LastSeen.After(g.f.LastSeen) {
				g.f.LastSeen = e.f.LastSeen
			}
			if e.f.Time.Before(g.first) {
				g.first = e.f.Time
			}
		}
		g.ems = append(g.ems, e)
	}
	return out
}

// scoreInput is everything needed to score one system on one scenario.
type scoreInput struct {
	system   string
	scenario string // the scenario's name, stored in each ActivityResult
	truth    *synth.ScenarioTruth
	ems      []emission
	records  []flow.Record // in delivery order, for bytes to detection
	kinds    []detect.Kind // kinds to report; nil: every kind
	slack    time.Duration
}

// score matches a system's findings to the truth.
func score(in scoreInput) SystemResult {
	acts := in.truth.Activities
	groups := group(in.ems)
	res := SystemResult{System: in.system}

	// Classify every finding.
	classes := make([]string, len(groups))
	matched := make([][]int, len(groups)) // activities each finding is about, whatever their kind
	for gi, g := range groups {
		classes[gi], _ = classify(acts, &g.f, in.slack)
		for ai := range acts {
			if matchesPeers(&acts[ai], &g.f) && matchesTime(&acts[ai], &g.f, in.slack) {
				matched[gi] = append(matched[gi], ai)
			}
		}
		fr := FindingResult{
			UID: g.f.UID, Kind: g.f.Kind, Class: classes[gi], Score: round4(g.f.Score),
			Src: g.f.Src, Dst: g.f.Dst, DstPort: g.f.DstPort, FQDN: g.f.FQDN,
			Time: g.first, FirstSeen: g.f.FirstSeen, LastSeen: g.f.LastSeen, Emissions: len(g.ems),
		}
		for _, ai := range matched[gi] {
			fr.Matches = append(fr.Matches, acts[ai].ID)
		}
		res.Findings = append(res.Findings, fr)
	}

	// What each activity got.
	for ai := range acts {
		a := &acts[ai]
		ar := ActivityResult{Scenario: in.scenario, ID: a.ID, Kind: a.Kind, Variant: a.Variant, Benign: a.Benign,
			Src: a.Src, FQDN: a.FQDN, Start: a.Start, Beats: len(a.Beats)}
		var best *emission
		for gi, g := range groups {
			counts := false
			if a.Benign {
				counts = classes[gi] == ClassTrap && slices.Contains(matched[gi], ai)
			} else {
				counts = string(g.f.Kind) == a.Kind && slices.Contains(matched[gi], ai)
			}
			if !counts {
				continue
			}
			ar.Findings = append(ar.Findings, g.f.UID)
			// The first emission that matches on its own; else the
			// finding's first emission.
			cand := &g.ems[0]
			for i := range g.ems {
				e := &g.ems[i]
				if matchesPeers(a, &e.f) && matchesTime(a, &e.f, in.slack) {
					cand = e
					break
				}
			}
			if best == nil || cand.f.Time.Before(best.f.Time) {
				best = cand
			}
		}
		if best != nil {
			ar.Detected = true
			t := best.f.Time
			ar.FirstDetection = &t
			d := max(t.Sub(a.Start), 0).Minutes()
			if a.Start.IsZero() {
				d = 0
			}
			d = round4(d)
			ar.DelayMinutes = &d
			if len(a.Beats) > 0 {
				n := 0
				for _, b := range a.Beats {
					if !b.After(t) {
						n++
					}
				}
				ar.BeatsToDetect = &n
			}
			if detect.Kind(a.Kind) == detect.KindExfil && best.seq >= 0 && !a.Benign {
				b := bytesSeen(in.records[:min(best.seq, len(in.records))], a, in.slack)
				ar.BytesToDetect = &b
			}
		}
		res.Activities = append(res.Activities, ar)
	}

	kinds := in.kinds
	if kinds == nil {
		kinds = allKinds(acts, res.Findings)
	}
	for _, k := range kinds {
		res.Kinds = append(res.Kinds, kindResult(k, res.Activities, res.Findings, in.truth.BenignPairs, in.scenario))
	}
	return res
}

// allKinds is detect.Kinds plus any other kind the truth or the findings
// use, in a stable order.
func allKinds(acts []synth.Activity, fs []FindingResult) []detect.Kind {
	kinds := slices.Clone(detect.Kinds)
	var extra []detect.Kind
	add := func(k detect.Kind) {
		if !slices.Contains(kinds, k) && !slices.Contains(extra, k) {
			extra = append(extra, k)
		}
	}
	for _, a := range acts {
		if !a.Benign {
			add(detect.Kind(a.Kind))
		}
	}
	for _, f := range fs {
		add(f.Kind)
	}
	slices.Sort(extra)
	return append(kinds, extra...)
}

// kindResult computes one kind's metrics from per-activity and per-finding
// results, which may pool several scenarios (micro-averaging).
func kindResult(k detect.Kind, acts []ActivityResult, fs []FindingResult, benignPairs int, scenario string) KindResult {
	kr := KindResult{Kind: k, BenignPairs: benignPairs, TrapsHit: []string{}}
	var mins, beats, bytes []float64
	for i := range acts {
		a := &acts[i]
		if a.Benign || a.Kind != string(k) {
			continue
		}
		kr.Activities++
		if !a.Detected {
			continue
		}
		kr.Detected++
		if a.DelayMinutes != nil {
			mins = append(mins, *a.DelayMinutes)
		}
		if a.BeatsToDetect != nil {
			beats = append(beats, float64(*a.BeatsToDetect))
		}
		if a.BytesToDetect != nil {
			bytes = append(bytes, float64(*a.BytesToDetect))
		}
	}
	trapsHit := map[string]bool{}
	for i := range fs {
		f := &fs[i]
		if f.Kind != k {
			continue
		}
		kr.Findings++
		switch f.Class {
		case ClassTP:
			kr.TruePositives++
		case ClassRelated:
			kr.Related++
		case ClassTrap:
			kr.FPTraps++
			for _, id := range f.Matches {
				trapsHit[id] = true
			}
		default:
			kr.FPUnlabelled++
		}
	}
	kr.TrapKinds = []TrapCount{}
	for i := range acts {
		a := &acts[i]
		if !a.Benign {
			continue
		}
		key := a.ID
		if a.Scenario != "" && a.Scenario != scenario {
			key = a.Scenario + "/" + a.ID
		}
		j := slices.IndexFunc(kr.TrapKinds, func(tc TrapCount) bool { return tc.Kind == a.Kind })
		if j < 0 {
			j = len(kr.TrapKinds)
			kr.TrapKinds = append(kr.TrapKinds, TrapCount{Kind: a.Kind})
		}
		kr.TrapKinds[j].Total++
		if trapsHit[key] {
			kr.TrapsHit = append(kr.TrapsHit, fmt.Sprintf("%s (%s)", key, a.Kind))
			kr.TrapKinds[j].Hit++
			delete(trapsHit, key)
		}
	}
	slices.SortStableFunc(kr.TrapKinds, func(a, b TrapCount) int { return cmp.Or(b.Hit-a.Hit, cmp.Compare(a.Kind, b.Kind)) })
	kr.Recall = Ratio{float64(kr.Detected), float64(kr.Activities)}
	kr.Precision = Ratio{float64(kr.TruePositives), float64(kr.TruePositives + kr.FalsePositives())}
	kr.FPPer1kPairs = Ratio{1000 * float64(kr.FalsePositives()), float64(benignPairs)}
	kr.Detection = Delay{N: len(mins), MedianMinutes: quantile(mins, 0.5), P90Minutes: quantile(mins, 0.9),
		MedianBeats: quantile(beats, 0.5), MedianBytes: quantile(bytes, 0.5)}
	return kr
}

// quantile returns the q-quantile of xs (linear interpolation between
// order statistics), or nil for no data.
func quantile(xs []float64, q float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	v := round4(s[lo] + (s[hi]-s[lo])*(pos-float64(lo)))
	return &v
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// bytesSeen sums the bytes a's source sent in a's flows, over the records
// given (the latest record of each flow counts: interim records carry
// cumulative totals).
func bytesSeen(recs []flow.Record, a *synth.Activity, slack time.Duration) uint64 {
	latest := map[string]int{}
	for i := range recs {
		r := &recs[i]
		if recordOfActivity(r, a, slack) {
			latest[r.UID] = i
		}
	}
	var n uint64
	for _, i := range latest {
		r := &recs[i]
		if r.OrigAddr == a.Src {
			n += r.OrigBytes
		} else {
			n += r.RespBytes
		}
	}
	return n
}

// recordOfActivity reports whether flow record r belongs to activity a: it
// joins a's source with one of its destinations, or the source used a name
// under a's FQDN, within a's time span.
func recordOfActivity(r *flow.Record, a *synth.Activity, slack time.Duration) bool {
	if !a.Start.IsZero() && r.End.Before(a.Start.Add(-slack)) || !a.End.IsZero() && r.Start.After(a.End.Add(slack)) {
		return false
	}
	var peer netip.Addr
	switch a.Src {
	case r.OrigAddr:
		peer = r.RespAddr
	case r.RespAddr:
		peer = r.OrigAddr
	default:
		return false
	}
	if addrIn(a.Dsts, peer) {
		return true
	}
	if a.FQDN == "" || r.App == nil || r.OrigAddr != a.Src {
		return false
	}
	for _, n := range recordNames(r) {
		if UnderDomain(n, a.FQDN) {
			return true
		}
	}
	return false
}

// recordNames lists the names a record carries: SNI, HTTP Host, proxy
// target (without port) and DNS query names.
func recordNames(r *flow.Record) []string {
	if r.App == nil {
		return nil
	}
	var ns []string
	for _, n := range []string{r.App.TLSSNI, r.App.HTTPHost, hostOnly(r.App.HTTPProxyTarget), r.App.DNSQuery} {
		if n != "" {
			ns = append(ns, n)
		}
	}
	return append(ns, r.App.DNSNames...)
}

// hostOnly strips a port from host[:port] (and brackets from [v6]:port).
func hostOnly(hp string) string {
	if hp == "" {
		return ""
	}
	if strings.HasPrefix(hp, "[") {
		if i := strings.IndexByte(hp, ']'); i > 0 {
			return hp[1:i]
		}
	}
	if i := strings.LastIndexByte(hp, ':'); i > 0 && strings.Count(hp, ":") == 1 {
		return hp[:i]
	}
	return hp
}

// sortFindings orders finding results by first emission, then UID.
func sortFindings(fs []FindingResult) {
	slices.SortStableFunc(fs, func(a, b FindingResult) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.UID, b.UID))
	})
}
