package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowhound/flowhound/detect"
)

// WriteJSON writes v (a report) as indented JSON to path ("-" for w).
func WriteJSON(w io.Writer, path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = w.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// table is a row-oriented table rendered either as aligned text or as
// Markdown.
type table struct {
	head []string
	rows [][]string
	// left is the number of leading text columns, aligned left; the others
	// are numbers, aligned right. 0 means 2.
	left int
}

func (t *table) leftCols() int {
	if t.left == 0 {
		return 2
	}
	return t.left
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) text(w io.Writer) {
	all := append([][]string{t.head}, t.rows...)
	ncol := 0
	for _, r := range all {
		ncol = max(ncol, len(r))
	}
	width := make([]int, ncol)
	for _, r := range all {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range all {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < t.leftCols() {
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func (t *table) markdown(w io.Writer) {
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	line := func(cells []string) {
		parts := make([]string, len(cells))
		for i, c := range cells {
			parts[i] = esc(c)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(parts, " | "))
	}
	line(t.head)
	sep := make([]string, len(t.head))
	for i := range sep {
		sep[i] = "---"
		if i >= t.leftCols() {
			sep[i] = "---:"
		}
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(sep, "|"))
	for _, r := range t.rows {
		line(r)
	}
}

// kindTable lays out the kinds of several systems side by side: one row per
// kind and system, for the kinds that have activities or findings (every
// kind of the first system when none has).
func kindTable(systems []SystemResult) *table {
	t := &table{head: []string{"kind", "system", "acts", "det", "recall", "findings", "tp", "rel", "fp-trap", "fp-other", "precision", "fp/1k pairs", "time to detect (median)"}}
	var kinds []detect.Kind
	for _, s := range systems {
		for _, k := range s.Kinds {
			if (k.Activities > 0 || k.Findings > 0) && !containsKind(kinds, k.Kind) {
				kinds = append(kinds, k.Kind)
			}
		}
	}
	if len(kinds) == 0 && len(systems) > 0 {
		for _, k := range systems[0].Kinds {
			kinds = append(kinds, k.Kind)
		}
	}
	for _, k := range kinds {
		for i := range systems {
			kr := systems[i].Kind(k)
			if kr == nil {
				continue
			}
			t.add(string(k), systems[i].System, itoa(kr.Activities), itoa(kr.Detected), kr.Recall.Format(2),
				itoa(kr.Findings), itoa(kr.TruePositives), itoa(kr.Related), itoa(kr.FPTraps), itoa(kr.FPUnlabelled),
				kr.Precision.Format(2), kr.FPPer1kPairs.Format(2), delayText(k, kr.Detection))
		}
	}
	return t
}

func containsKind(ks []detect.Kind, k detect.Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func itoa(n int) string { return strconv.Itoa(n) }

// delayText prints the median time to detection: beats for beacons, bytes
// for exfiltration, and minutes.
func delayText(k detect.Kind, d Delay) string {
	if d.N == 0 || d.MedianMinutes == nil {
		return "–"
	}
	mins := strconv.FormatFloat(*d.MedianMinutes, 'f', 1, 64) + " min"
	switch {
	case k == detect.KindBeacon && d.MedianBeats != nil:
		return strconv.FormatFloat(*d.MedianBeats, 'f', -1, 64) + " beats / " + mins
	case k == detect.KindExfil && d.MedianBytes != nil:
		return humanBytes(*d.MedianBytes) + " / " + mins
	}
	return mins
}

func humanBytes(b float64) string {
	switch {
	case b >= 1e9:
		return strconv.FormatFloat(b/1e9, 'f', 1, 64) + " GB"
	case b >= 1e6:
		return strconv.FormatFloat(b/1e6, 'f', 1, 64) + " MB"
	case b >= 1e3:
		return strconv.FormatFloat(b/1e3, 'f', 1, 64) + " kB"
	}
	return strconv.FormatFloat(b, 'f', 0, 64) + " B"
}

// trapLines summarises the traps each system flagged, by trap kind ("60/60
// ntp"); the JSON report lists them one by one.
func trapLines(systems []SystemResult) []string {
	var out []string
	for _, s := range systems {
		for _, k := range s.Kinds {
			var parts []string
			for _, tc := range k.TrapKinds {
				if tc.Hit > 0 {
					parts = append(parts, fmt.Sprintf("%d/%d %s", tc.Hit, tc.Total, tc.Kind))
				}
			}
			if len(parts) > 0 {
				out = append(out, fmt.Sprintf("%s %s findings flagged traps: %s", s.System, k.Kind, strings.Join(parts, ", ")))
			}
		}
	}
	return out
}

func (sc *ScenarioReport) header() string {
	return fmt.Sprintf("scenario %s: profile %s, seed %d, %s … %s (%s), %d hosts, %d benign pairs, %d activities, %d traps, %d packets, %d flows, replay %.1fs",
		sc.Name, orDash(sc.Profile), sc.Seed, sc.Start.Format(time.RFC3339), sc.End.Format(time.RFC3339), sc.End.Sub(sc.Start).Round(time.Second),
		sc.Hosts, sc.BenignPairs, sc.Activities, sc.Traps, sc.Packets, sc.Flows, sc.ReplaySeconds)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func (r *Report) preamble() string {
	dets := "none"
	if len(r.Options.Detectors) > 0 {
		dets = strings.Join(r.Options.Detectors, ", ")
	}
	return fmt.Sprintf("flowhound eval, %s, commit %s (%s); detectors: %s; slack %gs; RITA reference: %v",
		r.Date.Format("2006-01-02 15:04:05 MST"), r.Build.ShortCommit(), orDash(r.Build.Go), dets, r.Options.SlackSeconds, r.Options.RITA)
}

// WriteText writes the report as human-readable tables.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintln(w, r.preamble())
	for i := range r.Scenarios {
		sc := &r.Scenarios[i]
		fmt.Fprintln(w)
		fmt.Fprintln(w, sc.header())
		for _, warn := range sc.Warnings {
			fmt.Fprintln(w, "  warning:", warn)
		}
		kindTable(sc.Systems).text(w)
		for _, l := range trapLines(sc.Systems) {
			fmt.Fprintln(w, "  "+l)
		}
	}
	if len(r.Scenarios) > 1 {
		fmt.Fprintf(w, "\ntotals over %d scenarios (micro-averaged)\n", len(r.Scenarios))
		kindTable(r.Totals).text(w)
		for _, l := range trapLines(r.Totals) {
			fmt.Fprintln(w, "  "+l)
		}
	}
}

// WriteMarkdown writes the report as Markdown sections under a heading of
// the given level.
func (r *Report) WriteMarkdown(w io.Writer, level int) {
	h := strings.Repeat("#", level)
	if len(r.Scenarios) > 1 {
		fmt.Fprintf(w, "%s Totals over %d scenarios (micro-averaged)\n\n", h, len(r.Scenarios))
		kindTable(r.Totals).markdown(w)
		for _, l := range trapLines(r.Totals) {
			fmt.Fprintf(w, "\n- %s", l)
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w)
	}
	for i := range r.Scenarios {
		sc := &r.Scenarios[i]
		fmt.Fprintf(w, "%s Scenario %s\n\n%s\n\n", h, sc.Name, sc.header())
		kindTable(sc.Systems).markdown(w)
		for _, l := range trapLines(sc.Systems) {
			fmt.Fprintf(w, "\n- %s", l)
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w)
	}
}
