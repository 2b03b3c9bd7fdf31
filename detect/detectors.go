package detect

// NewDetectors returns the enabled detectors of cfg, one per kind.
func NewDetectors(cfg Config) []Detector {
	var ds []Detector
	if cfg.Lateral.Enabled {
		ds = append(ds, NewLateral(cfg))
	}
	if cfg.Scan.Enabled {
		ds = append(ds, NewScan(cfg))
	}
	return ds
}
