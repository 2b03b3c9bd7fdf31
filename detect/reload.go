package detect

// Reconfigurer is a detector that can take new settings while it runs,
// keeping what it has learned (baselines, beats, windows in progress).
type Reconfigurer interface {
	// Reconfigure applies cfg's allowlist and this detector's thresholds.
	// Settings that shape the detector's state (its key budget, window
	// lengths its slots are laid out for) keep their running values; the
	// names of those that differ in cfg are returned, so that the caller
	// can say a restart is needed for them.
	Reconfigure(cfg Config) (kept []string)
}

// Reconfigure applies cfg to the running engine without losing state: the
// allowlist and the thresholds of every detector that stays enabled, a
// fresh detector for a kind cfg enables, and the end of a kind cfg
// disables (its state is dropped). It returns the settings that could not
// change while running (see Reconfigurer). Call it between records, from
// the goroutine that feeds the engine.
func (e *Engine) Reconfigure(cfg Config) (kept []string) {
	running := make(map[Kind]Detector, len(e.detectors))
	for _, d := range e.detectors {
		running[d.Kind()] = d
	}
	var next []Detector
	for _, r := range registry {
		if !r.enabled(&cfg) {
			continue
		}
		d, ok := running[r.kind]
		switch {
		case !ok:
			d = r.build(cfg) // newly enabled
		case isReconfigurer(d):
			kept = append(kept, d.(Reconfigurer).Reconfigure(cfg)...)
		default:
			kept = append(kept, "detect."+string(r.kind))
		}
		next = append(next, d)
	}
	e.detectors = next
	return kept
}

func isReconfigurer(d Detector) bool {
	_, ok := d.(Reconfigurer)
	return ok
}
