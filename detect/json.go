package detect

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"
)

// FindingSchemaVersion is written into every JSON finding as "v".
const FindingSchemaVersion = 1

// wireFinding is the JSON shape of a Finding (schema v1). README.md
// documents each field.
type wireFinding struct {
	V         int        `json:"v"`
	UID       string     `json:"uid"`
	Time      time.Time  `json:"time"`
	Kind      Kind       `json:"kind"`
	Status    Status     `json:"status"`
	Score     float64    `json:"score"`
	SubScores []SubScore `json:"sub_scores,omitempty"`
	Severity  Severity   `json:"severity"`
	Src       netip.Addr `json:"src"`
	Dst       netip.Addr `json:"dst,omitzero"`
	DstPort   uint16     `json:"dst_port,omitempty"`
	Proto     string     `json:"proto,omitempty"`
	FQDN      string     `json:"fqdn,omitempty"`
	Evidence  Evidence   `json:"evidence"`
	MITRE     []string   `json:"mitre,omitempty"`
	FirstSeen time.Time  `json:"first_seen"`
	LastSeen  time.Time  `json:"last_seen"`
	Sensor    string     `json:"sensor,omitempty"`
}

// MarshalJSON encodes the finding in schema v1.
func (f *Finding) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireFinding{
		V: FindingSchemaVersion, UID: f.UID, Time: f.Time.UTC(), Kind: f.Kind, Status: f.Status,
		Score: round3(f.Score), SubScores: roundSubs(f.SubScores), Severity: f.Severity,
		Src: f.Src, Dst: f.Dst, DstPort: f.DstPort, Proto: f.Proto, FQDN: f.FQDN,
		Evidence: f.Evidence, MITRE: f.MITRE,
		FirstSeen: f.FirstSeen.UTC(), LastSeen: f.LastSeen.UTC(), Sensor: f.Sensor,
	})
}

// UnmarshalJSON decodes schema v1.
func (f *Finding) UnmarshalJSON(b []byte) error {
	var w wireFinding
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.V != FindingSchemaVersion {
		return fmt.Errorf("finding schema version %d, want %d", w.V, FindingSchemaVersion)
	}
	*f = Finding{UID: w.UID, Time: w.Time, Kind: w.Kind, Status: w.Status, Score: w.Score,
		SubScores: w.SubScores, Severity: w.Severity, Src: w.Src, Dst: w.Dst, DstPort: w.DstPort,
		Proto: w.Proto, FQDN: w.FQDN, Evidence: w.Evidence, MITRE: w.MITRE,
		FirstSeen: w.FirstSeen, LastSeen: w.LastSeen, Sensor: w.Sensor}
	return nil
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

func roundSubs(s []SubScore) []SubScore {
	if len(s) == 0 {
		return nil
	}
	out := make([]SubScore, len(s))
	for i, x := range s {
		out[i] = SubScore{x.Name, round3(x.Value)}
	}
	return out
}
