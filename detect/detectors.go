package detect

// NewDetectors returns the enabled detectors of cfg, one per kind.
func NewDetectors(cfg Config) []Detector {
	var ds []Detector
	return ds
}
