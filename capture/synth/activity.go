package synth

import (
	"net/netip"
	"time"
)

// Activity is one labelled thing a scenario put on the wire: an attack the
// detectors must find, or a benign trap they must not flag. It is the ground
// truth the evaluation harness scores findings against, written to
// truth.json beside the capture.
type Activity struct {
	// ID is unique within a scenario, e.g. "beacon-3".
	ID string `json:"id"`
	// Kind is the finding kind a detector should raise: "beacon",
	// "long_connection", "exfil", "dns_exfil", "lateral_movement" or
	// "scan". For benign traps it names the trap: "ntp", "update_check",
	// "monitoring", "download", "backup", "browsing", "internal_dns",
	// "admin_jump", "vuln_scanner".
	Kind string `json:"kind"`
	// Benign marks a trap: any finding that matches it is a false positive.
	Benign bool `json:"benign"`
	// Variant says how it was made, e.g. "https-sni", "cdn-shared-ip",
	// "sleep-burst", "long-lived", "proxy-connect", "psexec", "rdp-chain".
	Variant string   `json:"variant,omitempty"`
	MITRE   []string `json:"mitre,omitempty"`

	// Src is the acting internal host. Dsts are the peers it talked to (one
	// for a beacon or an exfil, many for fan-out and scans). For activities
	// seen only through a name (CDN IPs shared with benign sites, explicit
	// proxies), FQDN is what tells them apart.
	Src     netip.Addr   `json:"src"`
	Dsts    []netip.Addr `json:"dsts,omitempty"`
	DstPort uint16       `json:"dst_port,omitempty"`
	Proto   string       `json:"proto,omitempty"` // "tcp" or "udp"
	FQDN    string       `json:"fqdn,omitempty"`
	// Chain lists the hops of a lateral-movement chain in order (A, B, C).
	Chain []netip.Addr `json:"chain,omitempty"`

	// Start and End bound the activity on the wire (packet time).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`

	// Beacon parameters (zero otherwise).
	Period  time.Duration `json:"period,omitempty"`  // nominal interval
	Jitter  float64       `json:"jitter,omitempty"`  // ± fraction of the period, uniform
	Missed  float64       `json:"missed,omitempty"`  // fraction of beats skipped
	Beats   []time.Time   `json:"beats,omitempty"`   // start time of every beat actually sent
	SizeCV  float64       `json:"size_cv,omitempty"` // coefficient of variation of request sizes
	BurstOf int           `json:"burst_of,omitempty"`

	// Volume: payload bytes sent by Src (out) and received (in) over the
	// activity, true sizes before any snaplen cut.
	BytesOut uint64 `json:"bytes_out,omitempty"`
	BytesIn  uint64 `json:"bytes_in,omitempty"`
	// Flows is how many flows (5-tuples) the activity produced.
	Flows int `json:"flows,omitempty"`
}

// ScenarioTruth is everything a scenario knows about itself.
type ScenarioTruth struct {
	Profile string    `json:"profile"`
	Seed    int64     `json:"seed"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	// HomeNets are the scenario's internal networks; Allowlist holds what
	// the operator approved (the vulnerability scanner's address, say).
	HomeNets  []netip.Prefix `json:"home_nets"`
	Allowlist []netip.Prefix `json:"allowlist,omitempty"`
	// Hosts counts internal hosts; BenignPairs counts the distinct
	// (internal src, dst) pairs of benign traffic, the denominator of the
	// false-positive rate.
	Hosts       int        `json:"hosts"`
	BenignPairs int        `json:"benign_pairs"`
	Activities  []Activity `json:"activities"`
	// Packets and Flows describe the capture as a whole.
	Packets uint64 `json:"packets"`
	Flows   int    `json:"flows"`
}
