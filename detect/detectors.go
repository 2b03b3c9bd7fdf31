package detect

// registry lists every detector: its kind, whether a configuration enables
// it, and its constructor, in the order the engine runs them.
var registry = []struct {
	kind    Kind
	enabled func(*Config) bool
	build   func(Config) Detector
}{
	{KindBeacon, func(c *Config) bool { return c.Beacon.Enabled }, NewBeacon},
	{KindLongConnection, func(c *Config) bool { return c.LongConn.Enabled }, NewLongConn},
	{KindExfil, func(c *Config) bool { return c.Exfil.Enabled }, NewExfil},
	{KindDNSExfil, func(c *Config) bool { return c.DNSExfil.Enabled }, NewDNSExfil},
	{KindLateralMovement, func(c *Config) bool { return c.Lateral.Enabled }, NewLateral},
	{KindScan, func(c *Config) bool { return c.Scan.Enabled }, NewScan},
}

// NewDetectors returns the enabled detectors of cfg, one per kind.
func NewDetectors(cfg Config) []Detector {
	var ds []Detector
	for _, r := range registry {
		if r.enabled(&cfg) {
			ds = append(ds, r.build(cfg))
		}
	}
	return ds
}
