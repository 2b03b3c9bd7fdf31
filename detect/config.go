package detect

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/flowhound/flowhound/flow"
)

// Config holds what every detector needs: the home networks, the operator's
// allowlist, and each detector's thresholds. DefaultConfig gives working
// values; the config package fills it from the YAML file.
type Config struct {
	Sensor   string
	HomeNets *flow.Networks
	Allow    *Allowlist

	Beacon   BeaconConfig
	LongConn LongConnConfig
	Exfil    ExfilConfig
	DNSExfil DNSExfilConfig
	Lateral  LateralConfig
	Scan     ScanConfig
}

// BeaconConfig tunes the beacon detector.
type BeaconConfig struct {
	Enabled       bool
	MinBeats      int           // beats before a first finding (default 6)
	MinPeriod     time.Duration // shorter intervals are strobes, not beacons (default 2s)
	MaxPeriod     time.Duration // longest period considered (default 6h)
	Threshold     float64       // score to report (default 0.7)
	MaxPairs      int           // tracked (src, dst) and (src, name) keys (default 1<<20)
	MaxPrevalence int           // destinations used by more internal hosts than this are damped (default 10)
}

// LongConnConfig tunes the long-connection detector.
type LongConnConfig struct {
	Enabled  bool
	MinTotal time.Duration // cumulative duration per pair to report (default 1500s, as Slips)
	MaxPairs int
}

// ExfilConfig tunes the exfiltration detector.
type ExfilConfig struct {
	Enabled bool
	// MinBytes is the outbound volume to one external destination within
	// Window that is always reported (default 100 MB per hour, as Slips).
	MinBytes uint64
	Window   time.Duration
	// SlowBytes and SlowWindow catch low-and-slow uploads (default 20 MB
	// over 24 h with a producer-consumer ratio above MinPCR).
	SlowBytes  uint64
	SlowWindow time.Duration
	MinPCR     float64 // default 0.6
	MaxKeys    int
}

// DNSExfilConfig tunes the DNS tunnel detector.
type DNSExfilConfig struct {
	Enabled bool
	// MinNames is how many distinct long or high-entropy names under one
	// registered domain raise a finding (default 50 within Window).
	MinNames    int
	MinLabelLen int     // label length considered long (default 24)
	MinEntropy  float64 // bits per character considered random (default 3.5)
	Window      time.Duration
	MaxKeys     int
}

// LateralConfig tunes the lateral-movement detector.
type LateralConfig struct {
	Enabled bool
	// AdminPorts are the remote-administration services watched.
	AdminPorts []uint16
	// Learning is how long a source's peers are learned before new ones
	// count as new (default 1h of packet time from the first record).
	Learning time.Duration
	FanOut   int           // new admin peers within Window that make fan-out (default 5)
	Window   time.Duration // default 10m
	ChainGap time.Duration // A→B then B→C within this is a chain (default 30m)
	MaxHosts int
}

// ScanConfig tunes the scan detector.
type ScanConfig struct {
	Enabled    bool
	Vertical   int           // distinct ports on one host (default 50)
	Horizontal int           // distinct hosts on one port (default 30)
	Window     time.Duration // default 10m
	MaxHosts   int
}

// DefaultConfig returns thresholds drawn from the reference tools (see
// DESIGN.md) and tuned on flowhound's scenarios.
func DefaultConfig() Config {
	return Config{
		HomeNets: flow.DefaultHomeNets(),
		Allow:    &Allowlist{},
		Beacon: BeaconConfig{Enabled: true, MinBeats: 6, MinPeriod: 2 * time.Second, MaxPeriod: 6 * time.Hour,
			Threshold: 0.7, MaxPairs: 1 << 20, MaxPrevalence: 10},
		LongConn: LongConnConfig{Enabled: true, MinTotal: 1500 * time.Second, MaxPairs: 1 << 18},
		Exfil: ExfilConfig{Enabled: true, MinBytes: 100 << 20, Window: time.Hour,
			SlowBytes: 20 << 20, SlowWindow: 24 * time.Hour, MinPCR: 0.6, MaxKeys: 1 << 18},
		DNSExfil: DNSExfilConfig{Enabled: true, MinNames: 50, MinLabelLen: 24, MinEntropy: 3.5,
			Window: time.Hour, MaxKeys: 1 << 16},
		Lateral: LateralConfig{Enabled: true, AdminPorts: []uint16{22, 135, 139, 445, 3389, 5985, 5986},
			Learning: time.Hour, FanOut: 5, Window: 10 * time.Minute, ChainGap: 30 * time.Minute, MaxHosts: 1 << 16},
		Scan: ScanConfig{Enabled: true, Vertical: 50, Horizontal: 30, Window: 10 * time.Minute, MaxHosts: 1 << 16},
	}
}

// Allowlist holds what the operator approved: addresses (as sources or
// destinations), domain names (exact, or "*.example.com" for the domain
// and everything under it) and host pairs. The zero value allows nothing.
type Allowlist struct {
	Nets    *flow.Networks
	Domains []string
	Pairs   map[[2]netip.Addr]bool // {src, dst}
}

// ParseDomains validates domain patterns for an Allowlist.
func ParseDomains(list []string) ([]string, error) {
	out := make([]string, 0, len(list))
	for i, d := range list {
		d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
		body := strings.TrimPrefix(d, "*.")
		if body == "" || strings.ContainsAny(body, " */") {
			return nil, fmt.Errorf("domain %d %q: want a name or *.name", i+1, list[i])
		}
		out = append(out, d)
	}
	return out, nil
}

// AllowedAddr reports whether traffic from or to a is approved.
func (a *Allowlist) AllowedAddr(x netip.Addr) bool {
	return a != nil && a.Nets != nil && a.Nets.Contains(x)
}

// AllowedPair reports whether the pair, or either side, is approved.
func (a *Allowlist) AllowedPair(src, dst netip.Addr) bool {
	if a == nil {
		return false
	}
	return a.AllowedAddr(src) || a.AllowedAddr(dst) || len(a.Pairs) > 0 && a.Pairs[[2]netip.Addr{src, dst}]
}

// AllowedName reports whether a DNS name (lower case, no trailing dot) is
// approved.
func (a *Allowlist) AllowedName(name string) bool {
	if a == nil || name == "" {
		return false
	}
	for _, d := range a.Domains {
		if rest, ok := strings.CutPrefix(d, "*."); ok {
			if name == rest || strings.HasSuffix(name, "."+rest) {
				return true
			}
		} else if name == d {
			return true
		}
	}
	return false
}

// normalized fills the settings left zero with the defaults.
func (bc BeaconConfig) normalized() BeaconConfig {
	def := DefaultConfig().Beacon
	if bc.MinBeats < 3 {
		bc.MinBeats = max(def.MinBeats, 3)
	}
	if bc.MinPeriod <= 0 {
		bc.MinPeriod = def.MinPeriod
	}
	if bc.MaxPeriod <= 0 {
		bc.MaxPeriod = def.MaxPeriod
	}
	if bc.Threshold <= 0 {
		bc.Threshold = def.Threshold
	}
	if bc.MaxPairs <= 0 {
		bc.MaxPairs = def.MaxPairs
	}
	if bc.MaxPrevalence <= 0 {
		bc.MaxPrevalence = def.MaxPrevalence
	}
	return bc
}

// normalized fills the settings left zero with the defaults.
func (c ExfilConfig) normalized() ExfilConfig {
	def := DefaultConfig().Exfil
	if c.MinBytes == 0 {
		c.MinBytes = def.MinBytes
	}
	if c.Window <= 0 {
		c.Window = def.Window
	}
	if c.SlowBytes == 0 {
		c.SlowBytes = def.SlowBytes
	}
	if c.SlowWindow <= 0 {
		c.SlowWindow = def.SlowWindow
	}
	if c.SlowWindow < c.Window {
		c.SlowWindow = c.Window
	}
	if c.MinPCR == 0 {
		c.MinPCR = def.MinPCR
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = def.MaxKeys
	}
	return c
}

// normalized fills the settings left zero with the defaults.
func (c DNSExfilConfig) normalized() DNSExfilConfig {
	def := DefaultConfig().DNSExfil
	if c.MinNames <= 0 {
		c.MinNames = def.MinNames
	}
	if c.MinLabelLen <= 0 {
		c.MinLabelLen = def.MinLabelLen
	}
	if c.MinEntropy <= 0 {
		c.MinEntropy = def.MinEntropy
	}
	if c.Window <= 0 {
		c.Window = def.Window
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = def.MaxKeys
	}
	return c
}

// normalized fills the settings left zero with the defaults.
func (lc LateralConfig) normalized() LateralConfig {
	def := DefaultConfig().Lateral
	if len(lc.AdminPorts) == 0 {
		lc.AdminPorts = def.AdminPorts
	}
	if lc.FanOut <= 0 {
		lc.FanOut = def.FanOut
	}
	if lc.Window <= 0 {
		lc.Window = def.Window
	}
	if lc.ChainGap <= 0 {
		lc.ChainGap = def.ChainGap
	}
	if lc.MaxHosts <= 0 {
		lc.MaxHosts = def.MaxHosts
	}
	if lc.Learning < 0 {
		lc.Learning = 0
	}
	return lc
}

// normalized fills the settings left zero with the defaults.
func (c LongConnConfig) normalized() LongConnConfig {
	def := DefaultConfig().LongConn
	if c.MinTotal <= 0 {
		c.MinTotal = def.MinTotal
	}
	if c.MaxPairs <= 0 {
		c.MaxPairs = def.MaxPairs
	}
	return c
}

// normalized fills the settings left zero with the defaults.
func (sc ScanConfig) normalized() ScanConfig {
	def := DefaultConfig().Scan
	if sc.Vertical <= 0 {
		sc.Vertical = def.Vertical
	}
	if sc.Horizontal <= 0 {
		sc.Horizontal = def.Horizontal
	}
	if sc.Window <= 0 {
		sc.Window = def.Window
	}
	if sc.MaxHosts <= 0 {
		sc.MaxHosts = def.MaxHosts
	}
	return sc
}
