package detect

// NewDetectors returns the enabled detectors of cfg, one per kind.
func NewDetectors(cfg Config) []Detector {
	var ds []Detector
	if cfg.Beacon.Enabled {
		ds = append(ds, NewBeacon(cfg))
	}
	if cfg.LongConn.Enabled {
		ds = append(ds, NewLongConn(cfg))
	}
	if cfg.Exfil.Enabled {
		ds = append(ds, NewExfil(cfg))
	}
	if cfg.DNSExfil.Enabled {
		ds = append(ds, NewDNSExfil(cfg))
	}
	if cfg.Lateral.Enabled {
		ds = append(ds, NewLateral(cfg))
	}
	if cfg.Scan.Enabled {
		ds = append(ds, NewScan(cfg))
	}
	return ds
}
