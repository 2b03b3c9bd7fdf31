package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flowhound/flowhound/capture/synth"
	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
)

// DefaultSharedDir is where the shared captures live, relative to the
// repository.
const DefaultSharedDir = "../shared/pcaps"

// RealReport is the result of scoring the shared real captures.
type RealReport struct {
	Schema    int           `json:"schema"`
	Date      time.Time     `json:"date"`
	Build     BuildInfo     `json:"build"`
	Options   OptionsInfo   `json:"options"`
	SharedDir string        `json:"shared_dir"`
	Captures  []RealResult  `json:"captures"`
	Summary   []RealSummary `json:"summary"`
}

// RealResult is one capture.
type RealResult struct {
	File     string             `json:"file"`
	Category string             `json:"category"`
	Missing  bool               `json:"missing,omitempty"`
	Error    string             `json:"error,omitempty"`
	Packets  uint64             `json:"packets"`
	Flows    int                `json:"flows"`
	Systems  []RealSystemResult `json:"systems"`
}

// RealSystemResult is what one system made of a capture. Expectations and
// findings are described in words ("beacon 10.1.6.206 → 5.2.136.90:80").
type RealSystemResult struct {
	System string `json:"system"`
	// Found and Missed are the required expectations this system is
	// responsible for (RITA only for beacons).
	Found  []string `json:"found"`
	Missed []string `json:"missed"`
	// Optional are the optional expectations it flagged.
	Optional []string `json:"optional"`
	// Other are its findings that match no expectation: false positives.
	Other    []string `json:"other"`
	Findings int      `json:"findings"`
}

// RealSummary totals one system over the captures.
type RealSummary struct {
	System        string `json:"system"`
	Captures      int    `json:"captures"`
	Expected      int    `json:"expected"`
	Found         int    `json:"found"`
	Recall        Ratio  `json:"recall"`
	BenignCaps    int    `json:"benign_captures"`
	BenignClean   int    `json:"benign_clean"`
	OtherFindings int    `json:"false_positives"`
}

// RealCaptures replays each capture of RealTruth found in sharedDir and
// reports, per system, the expected findings found and missed and what
// else was flagged. Captures absent from sharedDir are marked missing.
func RealCaptures(ctx context.Context, sharedDir string, opts Options) (*RealReport, error) {
	if _, err := os.Stat(sharedDir); err != nil {
		return nil, err
	}
	rep := &RealReport{Schema: ReportSchema, Date: time.Now().UTC().Truncate(time.Second), Build: opts.build(),
		Options: opts.info(), SharedDir: sharedDir}
	for _, rc := range RealTruth {
		res := RealResult{File: rc.File, Category: rc.Category}
		path := filepath.Join(sharedDir, rc.File)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			res.Missing = true
			rep.Captures = append(rep.Captures, res)
			continue
		}
		var nets *flow.Networks
		if rc.HomeNets != nil {
			nets = flow.NewNetworks(rc.HomeNets)
		}
		rr, err := replay(ctx, []string{path}, Env{HomeNets: nets}, opts.Detectors, opts.tick())
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			res.Error = err.Error()
			rep.Captures = append(rep.Captures, res)
			continue
		}
		res.Packets = rr.stats.Packets
		for _, r := range rr.records {
			if r.Final {
				res.Flows++
			}
		}
		res.Systems = append(res.Systems, judgeReal(SystemFlowhound, rc, rr.ems, nil))
		if !opts.NoRITA {
			var ems []emission
			for _, f := range RITABeacons(rr.records, opts.rita()) {
				ems = append(ems, emission{f: f, seq: -1})
			}
			res.Systems = append(res.Systems, judgeReal(SystemRITA, rc, ems, []detect.Kind{detect.KindBeacon}))
		}
		rep.Captures = append(rep.Captures, res)
	}
	rep.Summary = realSummary(rep.Captures)
	return rep, nil
}

// judgeReal matches a system's findings on one capture against its
// expectations. kinds, when set, are the kinds the system can report:
// required expectations of other kinds are not held against it.
func judgeReal(system string, rc RealCapture, ems []emission, kinds []detect.Kind) RealSystemResult {
	res := RealSystemResult{System: system, Found: []string{}, Missed: []string{}, Optional: []string{}, Other: []string{}}
	groups := group(ems)
	res.Findings = len(groups)
	hit := make([]bool, len(rc.Expect))
	for _, g := range groups {
		matched := false
		for i, e := range rc.Expect {
			if expectMatches(e, &g.f) {
				hit[i], matched = true, true
			}
		}
		if !matched {
			res.Other = append(res.Other, describeFinding(&g.f))
		}
	}
	for i, e := range rc.Expect {
		switch {
		case e.Optional:
			if hit[i] {
				res.Optional = append(res.Optional, describeExpect(e))
			}
		case kinds != nil && !containsKind(kinds, e.Kind):
			// not this system's business
		case hit[i]:
			res.Found = append(res.Found, describeExpect(e))
		default:
			res.Missed = append(res.Missed, describeExpect(e))
		}
	}
	return res
}

// expectMatches reports whether finding f is about expectation e; the
// capture's whole span counts.
func expectMatches(e RealExpect, f *detect.Finding) bool {
	if e.Kind != "" && e.Kind != f.Kind {
		return false
	}
	if len(e.Dsts) == 0 {
		return f.Src == e.Src
	}
	a := synth.Activity{Kind: string(f.Kind), Src: e.Src, Dsts: e.Dsts, FQDN: e.FQDN}
	return matchesPeers(&a, f)
}

func describeExpect(e RealExpect) string {
	kind := string(e.Kind)
	if kind == "" {
		kind = "any"
	}
	var dsts []string
	for _, d := range e.Dsts {
		dsts = append(dsts, d.String())
	}
	s := kind + " " + e.Src.String() + " → " + strings.Join(dsts, ",")
	if e.DstPort != 0 {
		s += ":" + strconv.Itoa(int(e.DstPort))
	}
	if e.FQDN != "" {
		s += " (" + e.FQDN + ")"
	}
	if e.Note != "" {
		s += " [" + e.Note + "]"
	}
	return s
}

func describeFinding(f *detect.Finding) string {
	s := string(f.Kind) + " " + f.Src.String() + " → "
	if f.Dst.IsValid() {
		s += f.Dst.String()
		if f.DstPort != 0 {
			s += ":" + strconv.Itoa(int(f.DstPort))
		}
	} else {
		s += "many"
	}
	if f.FQDN != "" {
		s += " (" + f.FQDN + ")"
	}
	return s + " score " + strconv.FormatFloat(f.Score, 'f', 2, 64)
}

func realSummary(caps []RealResult) []RealSummary {
	var out []RealSummary
	idx := map[string]int{}
	for _, c := range caps {
		benign := false
		for _, rc := range RealTruth {
			if rc.File == c.File {
				benign = len(rc.Expect) == 0
			}
		}
		for _, s := range c.Systems {
			i, ok := idx[s.System]
			if !ok {
				i = len(out)
				idx[s.System] = i
				out = append(out, RealSummary{System: s.System})
			}
			sum := &out[i]
			sum.Captures++
			sum.Expected += len(s.Found) + len(s.Missed)
			sum.Found += len(s.Found)
			sum.OtherFindings += len(s.Other)
			if benign {
				sum.BenignCaps++
				if s.Findings == 0 {
					sum.BenignClean++
				}
			}
		}
	}
	for i := range out {
		out[i].Recall = Ratio{float64(out[i].Found), float64(out[i].Expected)}
	}
	return out
}

func (r *RealReport) table() *table {
	t := &table{head: []string{"capture", "system", "found", "missed", "optional", "else flagged"}, left: 6}
	for _, c := range r.Captures {
		switch {
		case c.Missing:
			t.add(c.File, "–", "(capture missing)", "", "", "")
			continue
		case c.Error != "":
			t.add(c.File, "–", "error: "+c.Error, "", "", "")
			continue
		}
		for _, s := range c.Systems {
			t.add(c.File, s.System, listOrDash(s.Found), listOrDash(s.Missed), listOrDash(s.Optional), listOrDash(s.Other))
		}
	}
	return t
}

func listOrDash(l []string) string {
	if len(l) == 0 {
		return "–"
	}
	const most = 4
	if len(l) > most {
		return strings.Join(l[:most], "; ") + fmt.Sprintf("; … %d more", len(l)-most)
	}
	return strings.Join(l, "; ")
}

func (r *RealReport) summaryTable() *table {
	t := &table{head: []string{"system", "captures", "expected", "found", "recall", "false positives", "benign captures clean"}, left: 1}
	for _, s := range r.Summary {
		t.add(s.System, itoa(s.Captures), itoa(s.Expected), itoa(s.Found), s.Recall.Format(2), itoa(s.OtherFindings),
			fmt.Sprintf("%d/%d", s.BenignClean, s.BenignCaps))
	}
	return t
}

func (r *RealReport) preamble() string {
	return fmt.Sprintf("flowhound eval real, %s, commit %s; captures from %s", r.Date.Format("2006-01-02 15:04:05 MST"), r.Build.ShortCommit(), r.SharedDir)
}

// WriteText writes one block per capture and a summary. Long cells make a
// table unreadable, so each capture is a short paragraph.
func (r *RealReport) WriteText(w io.Writer) {
	fmt.Fprintln(w, r.preamble())
	for _, c := range r.Captures {
		fmt.Fprintf(w, "\n%s (%s)", c.File, c.Category)
		switch {
		case c.Missing:
			fmt.Fprintln(w, ": missing")
			continue
		case c.Error != "":
			fmt.Fprintln(w, ": error:", c.Error)
			continue
		}
		fmt.Fprintf(w, ": %d packets, %d flows\n", c.Packets, c.Flows)
		for _, s := range c.Systems {
			fmt.Fprintf(w, "  %-10s found: %s\n", s.System, listOrDash(s.Found))
			fmt.Fprintf(w, "  %-10s missed: %s\n", "", listOrDash(s.Missed))
			if len(s.Optional) > 0 {
				fmt.Fprintf(w, "  %-10s optional: %s\n", "", listOrDash(s.Optional))
			}
			fmt.Fprintf(w, "  %-10s else flagged: %s\n", "", listOrDash(s.Other))
		}
	}
	fmt.Fprintln(w)
	r.summaryTable().text(w)
}

// WriteMarkdown writes the captures as a Markdown table and the summary.
func (r *RealReport) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "%s.\n\n", r.preamble())
	r.summaryTable().markdown(w)
	fmt.Fprintln(w)
	r.table().markdown(w)
}
