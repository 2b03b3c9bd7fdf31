package detect

import (
	"math"
	"time"

	"github.com/flowhound/flowhound/flow"
)

// Detector scores one kind of activity from flow records. Detectors are
// fed in event time by an Engine and are not safe for concurrent use.
type Detector interface {
	// Kind is the kind of finding the detector proposes.
	Kind() Kind
	// Observe consumes one flow record (final or interim) and may propose
	// findings. The record is only valid during the call.
	Observe(r *flow.Record, propose func(*Finding))
	// Tick advances the detector's clock to now (packet time) so that
	// windows close even when no record arrives.
	Tick(now time.Time, propose func(*Finding))
	// Stats reports the detector's state size.
	Stats() DetectorStats
}

// DetectorStats is a detector's memory account.
type DetectorStats struct {
	Keys      int // tracked keys (pairs, hosts, domains)
	Bytes     int // bytes of state, as the detector accounts it
	Evictions uint64
}

// Engine feeds records to detectors and decides which proposals become
// findings: a finding is emitted when its UID is first proposed (status
// new) and again only when it changes materially (status update): its score
// moves by MinScoreChange or its severity changes.
type Engine struct {
	detectors []Detector
	out       func(*Finding)
	// proposeFn is e.propose, bound once: a method value made at each
	// call would be allocated for every record and detector.
	proposeFn func(*Finding)
	sensor    string
	emitted   map[string]emittedState
	order     []string // uids in order of first emission, a ring bounding emitted
	next      int
	now       time.Time
	stats     EngineStats
}

// MaxTrackedFindings bounds the uids the engine remembers to tell updates
// from new findings. Beyond it the oldest is forgotten: if its activity goes
// on, it is emitted again as new with the same uid, which consumers that
// de-duplicate by uid absorb.
const MaxTrackedFindings = 1 << 18

type emittedState struct {
	score    float64
	severity Severity
}

// MinScoreChange is the score movement that makes an update worth sending.
const MinScoreChange = 0.05

// EngineStats counts what the engine did.
type EngineStats struct {
	Records   uint64
	Proposals uint64
	New       uint64
	Updates   uint64
	Forgotten uint64 // uids dropped from the engine's memory (see MaxTrackedFindings)
	ByKind    map[Kind]uint64
}

// NewEngine returns an engine that sends findings to out. sensor is
// stamped on every finding.
func NewEngine(sensor string, out func(*Finding), detectors ...Detector) *Engine {
	e := &Engine{detectors: detectors, out: out, sensor: sensor, emitted: map[string]emittedState{},
		stats: EngineStats{ByKind: map[Kind]uint64{}}}
	e.proposeFn = e.propose
	return e
}

// Record feeds one flow record to every detector.
func (e *Engine) Record(r *flow.Record) {
	e.stats.Records++
	if r.End.After(e.now) {
		e.now = r.End
	}
	for _, d := range e.detectors {
		d.Observe(r, e.proposeFn)
	}
}

// Tick advances every detector to now.
func (e *Engine) Tick(now time.Time) {
	if now.After(e.now) {
		e.now = now
	}
	for _, d := range e.detectors {
		d.Tick(e.now, e.proposeFn)
	}
}

// Stats returns the engine's counters.
func (e *Engine) Stats() EngineStats { return e.stats }

// DetectorStats returns each detector's state size by kind.
func (e *Engine) DetectorStats() map[Kind]DetectorStats {
	m := make(map[Kind]DetectorStats, len(e.detectors))
	for _, d := range e.detectors {
		m[d.Kind()] = d.Stats()
	}
	return m
}

func (e *Engine) propose(f *Finding) {
	e.stats.Proposals++
	if f.Severity == "" {
		f.Severity = SeverityFor(f.Score)
	}
	prev, seen := e.emitted[f.UID]
	switch {
	case !seen:
		f.Status = StatusNew
		e.stats.New++
	case math.Abs(f.Score-prev.score) >= MinScoreChange || f.Severity != prev.severity:
		f.Status = StatusUpdate
		e.stats.Updates++
	default:
		return
	}
	if !seen {
		if len(e.order) < MaxTrackedFindings {
			e.order = append(e.order, f.UID)
		} else {
			delete(e.emitted, e.order[e.next])
			e.order[e.next] = f.UID
			e.next = (e.next + 1) % MaxTrackedFindings
			e.stats.Forgotten++
		}
	}
	e.emitted[f.UID] = emittedState{score: f.Score, severity: f.Severity}
	if f.Sensor == "" {
		f.Sensor = e.sensor
	}
	if f.Time.IsZero() {
		f.Time = e.now
	}
	e.stats.ByKind[f.Kind]++
	e.out(f)
}
