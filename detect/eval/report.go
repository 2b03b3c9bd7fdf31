package eval

import (
	"math"
	"net/netip"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/flowhound/flowhound/detect"
)

// ReportSchema is written into every JSON report as "schema". It changes
// only when a field changes meaning or is removed.
const ReportSchema = 1

// System names in reports.
const (
	// SystemFlowhound is flowhound's detectors, as the Factory made them.
	SystemFlowhound = "flowhound"
	// SystemRITA is RITABeacons, the RITA v5 reference beacon scorer.
	SystemRITA = "rita-ref"
)

// Report is the result of one or more scenarios.
type Report struct {
	Schema    int              `json:"schema"`
	Date      time.Time        `json:"date"`
	Build     BuildInfo        `json:"build"`
	Options   OptionsInfo      `json:"options"`
	Scenarios []ScenarioReport `json:"scenarios"`
	// Totals are micro-averaged over the scenarios: counts are summed, then
	// the ratios are taken; times to detection pool every detected activity.
	Totals []SystemResult `json:"totals"`
}

// OptionsInfo records the options a report was made with.
type OptionsInfo struct {
	SlackSeconds float64  `json:"slack_s"`
	TickSeconds  float64  `json:"tick_s"`
	RITA         bool     `json:"rita"`
	Detectors    []string `json:"detectors"` // kinds of the Factory's detectors
}

// ScenarioReport is the result of one scenario.
type ScenarioReport struct {
	Name        string    `json:"name"`
	Dir         string    `json:"dir"`
	Capture     string    `json:"capture"`
	Profile     string    `json:"profile"`
	Seed        int64     `json:"seed"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Hosts       int       `json:"hosts"`
	BenignPairs int       `json:"benign_pairs"`
	Activities  int       `json:"activities"` // malicious ones
	Traps       int       `json:"traps"`
	Packets     uint64    `json:"packets"`
	Records     int       `json:"records"` // flow records the engine saw (interim included)
	Flows       int       `json:"flows"`   // final records
	// ReplaySeconds is the wall time of the replay (sensor and engine).
	ReplaySeconds float64        `json:"replay_s"`
	Engine        EngineInfo     `json:"engine"`
	Systems       []SystemResult `json:"systems"`
	// Warnings are problems that did not stop the run (a damaged capture
	// file, say).
	Warnings []string `json:"warnings,omitempty"`
}

// EngineInfo is what the engine counted during a replay.
type EngineInfo struct {
	Proposals uint64 `json:"proposals"`
	New       uint64 `json:"new"`
	Updates   uint64 `json:"updates"`
	// State is each detector's state size at the end, by kind.
	State map[detect.Kind]StateInfo `json:"state,omitempty"`
}

// StateInfo is one detector's memory account (detect.DetectorStats).
type StateInfo struct {
	Keys      int    `json:"keys"`
	Bytes     int    `json:"bytes"`
	Evictions uint64 `json:"evictions"`
}

// SystemResult is how one detection system did.
type SystemResult struct {
	System string       `json:"system"`
	Kinds  []KindResult `json:"kinds"`
	// Activities has one entry per activity (malicious and traps) with what
	// the system made of it; Findings one per finding UID. Both are empty in
	// a report's totals.
	Activities []ActivityResult `json:"activities,omitempty"`
	Findings   []FindingResult  `json:"findings,omitempty"`
}

// Kind returns the result for kind k, or nil.
func (s *SystemResult) Kind(k detect.Kind) *KindResult {
	for i := range s.Kinds {
		if s.Kinds[i].Kind == k {
			return &s.Kinds[i]
		}
	}
	return nil
}

// KindResult is one system's score on one kind of finding.
type KindResult struct {
	Kind detect.Kind `json:"kind"`
	// Activities counts the malicious activities of this kind; Detected
	// those matched by at least one finding of this kind.
	Activities int   `json:"activities"`
	Detected   int   `json:"detected"`
	Recall     Ratio `json:"recall"`
	// Findings counts distinct finding UIDs of this kind, split into true
	// positives, related (about a malicious activity of another kind),
	// false positives on traps and unlabelled false positives.
	Findings      int   `json:"findings"`
	TruePositives int   `json:"tp_findings"`
	Related       int   `json:"related_findings"`
	FPTraps       int   `json:"fp_traps"`
	FPUnlabelled  int   `json:"fp_unlabelled"`
	Precision     Ratio `json:"precision"` // TP / (TP + FP)
	// TrapsHit names the traps flagged, as "id (trap kind)"; TrapKinds
	// counts them by trap kind.
	TrapsHit  []string    `json:"traps_hit"`
	TrapKinds []TrapCount `json:"trap_kinds"`
	// FPPer1kPairs is false-positive findings per 1,000 benign pairs.
	BenignPairs  int   `json:"benign_pairs"`
	FPPer1kPairs Ratio `json:"fp_per_1k_pairs"`
	Detection    Delay `json:"time_to_detect"`
}

// FalsePositives is FPTraps + FPUnlabelled.
func (k *KindResult) FalsePositives() int { return k.FPTraps + k.FPUnlabelled }

// TrapCount is how many traps of one kind were flagged, of how many.
type TrapCount struct {
	Kind  string `json:"kind"`
	Hit   int    `json:"hit"`
	Total int    `json:"total"`
}

// Delay summarises the time to first detection over the detected
// activities of a kind. Fields that do not apply are null.
type Delay struct {
	N             int      `json:"n"`
	MedianMinutes *float64 `json:"median_min"`
	P90Minutes    *float64 `json:"p90_min"`
	// MedianBeats (beacons): beats sent up to the first matching finding.
	MedianBeats *float64 `json:"median_beats"`
	// MedianBytes (exfil): bytes the source had sent in the activity's flows
	// up to the first matching finding, counted from the flow records the
	// engine had received by then (interim records included).
	MedianBytes *float64 `json:"median_bytes"`
}

// ActivityResult is what one system made of one activity.
type ActivityResult struct {
	Scenario string     `json:"scenario,omitempty"`
	ID       string     `json:"id"`
	Kind     string     `json:"kind"`
	Variant  string     `json:"variant,omitempty"`
	Benign   bool       `json:"benign"`
	Src      netip.Addr `json:"src"`
	FQDN     string     `json:"fqdn,omitempty"`
	Start    time.Time  `json:"start"`
	// Detected: a finding of the activity's kind matches it (for a trap:
	// a finding was a false positive on it).
	Detected bool `json:"detected"`
	// FirstDetection is the time of the first matching finding, Delay its
	// distance from Start in minutes.
	FirstDetection *time.Time `json:"first_detection"`
	DelayMinutes   *float64   `json:"delay_min"`
	// Beats counts the beats a beacon sent, BeatsToDetect those sent up to
	// the first detection.
	Beats         int     `json:"beats,omitempty"`
	BeatsToDetect *int    `json:"beats_to_detect,omitempty"`
	BytesToDetect *uint64 `json:"bytes_to_detect,omitempty"`
	// Findings are the UIDs of the matching findings.
	Findings []string `json:"findings,omitempty"`
}

// FindingResult is one finding (one UID, all its emissions) and its class.
type FindingResult struct {
	UID       string      `json:"uid"`
	Kind      detect.Kind `json:"kind"`
	Class     string      `json:"class"`
	Score     float64     `json:"score"` // highest emitted
	Src       netip.Addr  `json:"src"`
	Dst       netip.Addr  `json:"dst,omitzero"`
	DstPort   uint16      `json:"dst_port,omitempty"`
	FQDN      string      `json:"fqdn,omitempty"`
	Time      time.Time   `json:"time"` // first emission
	FirstSeen time.Time   `json:"first_seen"`
	LastSeen  time.Time   `json:"last_seen"`
	Emissions int         `json:"emissions"`
	// Matches lists the IDs of the activities it matches.
	Matches []string `json:"matches,omitempty"`
}

// Ratio is Num/Den. It is undefined when Den is 0, and then encoded as JSON
// null and printed as "–", so that a run without findings reports no
// precision instead of a made-up one.
type Ratio struct{ Num, Den float64 }

// Value returns the ratio and whether it is defined.
func (r Ratio) Value() (float64, bool) {
	if r.Den == 0 {
		return 0, false
	}
	return r.Num / r.Den, true
}

// MarshalJSON encodes the value rounded to 4 decimals, or null.
func (r Ratio) MarshalJSON() ([]byte, error) {
	v, ok := r.Value()
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, math.Round(v*1e4)/1e4, 'f', -1, 64), nil
}

// Format prints the value with prec decimals, or "–".
func (r Ratio) Format(prec int) string {
	v, ok := r.Value()
	if !ok {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// BuildInfo identifies the flowhound build that made a report.
type BuildInfo struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Time     string `json:"commit_time,omitempty"`
	Go       string `json:"go"`
}

// ReadBuildInfo returns the running binary's module version and VCS
// revision, as recorded by the go command (absent in test binaries and
// builds outside a checkout).
func ReadBuildInfo() BuildInfo {
	var b BuildInfo
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.Module, b.Version, b.Go = bi.Main.Path, bi.Main.Version, bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		case "vcs.time":
			b.Time = s.Value
		}
	}
	return b
}

// ShortCommit is the first 12 hex digits of the commit, "+dirty" when the
// tree was modified, or "unknown".
func (b BuildInfo) ShortCommit() string {
	c := b.Commit
	if c == "" {
		return "unknown"
	}
	if len(c) > 12 {
		c = c[:12]
	}
	if b.Modified {
		c += "+dirty"
	}
	return c
}
