// Package detect turns flow records into findings: C2 beaconing, long
// connections, exfiltration, DNS tunnels, lateral movement and scans. It
// works in a streaming way on packet (event) time, so a replay gives the same
// findings every time.
package detect

import (
	"net/netip"
	"time"
)

// Kind names what a finding is about.
type Kind string

// Finding kinds.
const (
	KindBeacon          Kind = "beacon"
	KindLongConnection  Kind = "long_connection"
	KindExfil           Kind = "exfil"
	KindDNSExfil        Kind = "dns_exfil"
	KindLateralMovement Kind = "lateral_movement"
	KindScan            Kind = "scan"
)

// Kinds lists every kind in a stable order.
var Kinds = []Kind{KindBeacon, KindLongConnection, KindExfil, KindDNSExfil, KindLateralMovement, KindScan}

// Severity grades a finding for triage.
type Severity string

// Severities, from least to most urgent.
const (
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// SeverityFor maps a score in [0, 1] to a severity.
func SeverityFor(score float64) Severity {
	switch {
	case score >= 0.9:
		return SeverityCritical
	case score >= 0.75:
		return SeverityHigh
	case score >= 0.5:
		return SeverityMedium
	}
	return SeverityLow
}

// Status says whether a finding is new or an update of one emitted before
// (same UID).
type Status string

// Statuses.
const (
	StatusNew    Status = "new"
	StatusUpdate Status = "update"
)

// Finding is one detection, modelled on the OCSF Detection Finding class
// (2004). The same activity always gets the same UID, so consumers can
// de-duplicate at-least-once delivery and fold updates into one case.
type Finding struct {
	UID    string
	Time   time.Time // event time of this emission
	Kind   Kind
	Status Status
	// Score is in [0, 1]; SubScores explain it.
	Score     float64
	SubScores []SubScore
	Severity  Severity

	Src     netip.Addr
	Dst     netip.Addr // zero when the finding is about many peers
	DstPort uint16
	Proto   string
	FQDN    string // the name the source used (SNI, HTTP Host, proxy target, DNS)

	Evidence Evidence
	MITRE    []string // ATT&CK technique ids, e.g. "T1071.001"

	FirstSeen, LastSeen time.Time
	Sensor              string
}

// SubScore is one named component of a score.
type SubScore struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// Evidence is what a detector saw. Fields that do not apply stay zero and
// are left out of the JSON.
type Evidence struct {
	Connections uint64 `json:"connections,omitempty"`
	// Interval statistics of beacons, in seconds.
	IntervalMedian float64 `json:"interval_median_s,omitempty"`
	IntervalMAD    float64 `json:"interval_mad_s,omitempty"`
	Jitter         float64 `json:"jitter,omitempty"` // MAD / median
	Coverage       float64 `json:"coverage,omitempty"`
	BytesOut       uint64  `json:"bytes_out,omitempty"`
	BytesIn        uint64  `json:"bytes_in,omitempty"`
	// PCR is the producer-consumer ratio (out−in)/(out+in).
	PCR      float64        `json:"pcr,omitempty"`
	Duration float64        `json:"duration_s,omitempty"`
	Peers    []netip.Addr   `json:"peers,omitempty"`
	Ports    []uint16       `json:"ports,omitempty"`
	Names    []string       `json:"names,omitempty"`
	Count    uint64         `json:"count,omitempty"`
	Notes    []string       `json:"notes,omitempty"`
	Extra    map[string]any `json:"extra,omitempty"`
}
