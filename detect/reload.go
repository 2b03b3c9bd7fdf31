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

// keptIf names a setting that keeps its running value when cfg asks for
// another.
func keptIf(kept []string, name string, running, asked any) []string {
	if running != asked {
		kept = append(kept, name)
	}
	return kept
}

// Reconfigure implements Reconfigurer. The key budget (max_pairs) sizes
// the slot tables and stays.
func (b *beacon) Reconfigure(cfg Config) (kept []string) {
	c := cfg.Beacon.normalized()
	kept = keptIf(kept, "detect.beacon.max_pairs", b.cfg.MaxPairs, c.MaxPairs)
	c.MaxPairs = b.cfg.MaxPairs
	b.cfg, b.allow = c, cfg.Allow
	// Names are checked against the allowlist once each, when a key is
	// made: check them again, and drop the keys of names now allowed
	// (addresses are checked on every record).
	for i := range b.dsts.entries {
		b.dsts.entries[i].flags &^= dstChecked | dstAllowed
	}
	for i := range b.slots {
		s := &b.slots[i]
		if s.flags&slotLive != 0 && s.flags&slotName != 0 && b.nameAllowed(s.dst) {
			b.drop(uint32(i))
		}
	}
	return kept
}

// Reconfigure implements Reconfigurer. The slow window lays out the
// hourly slots, and the key budget sizes the tables: both stay; the
// window may change within the slow window.
func (d *Exfil) Reconfigure(cfg Config) (kept []string) {
	c := cfg.Exfil.normalized()
	kept = keptIf(kept, "detect.exfil.slow_window", d.cfg.SlowWindow, c.SlowWindow)
	kept = keptIf(kept, "detect.exfil.max_keys", d.cfg.MaxKeys, c.MaxKeys)
	c.SlowWindow, c.MaxKeys = d.cfg.SlowWindow, d.cfg.MaxKeys
	if c.Window > c.SlowWindow {
		kept = append(kept, "detect.exfil.window")
		c.Window = d.cfg.Window
	}
	d.cfg, d.allow = c, cfg.Allow
	d.win = int64(c.Window)
	d.anomalyBytes = c.MinBytes / 8
	d.activeBytes = max(c.SlowBytes/100, 1)
	return kept
}

// Reconfigure implements Reconfigurer. The window sets how long keys
// live and the key budget sizes the table: both stay.
func (d *DNSExfil) Reconfigure(cfg Config) (kept []string) {
	c := cfg.DNSExfil.normalized()
	kept = keptIf(kept, "detect.dns_exfil.window", d.cfg.Window, c.Window)
	kept = keptIf(kept, "detect.dns_exfil.max_keys", d.cfg.MaxKeys, c.MaxKeys)
	c.Window, c.MaxKeys = d.cfg.Window, d.cfg.MaxKeys
	d.cfg, d.allow = c, cfg.Allow
	d.sampleAfter = uint32(max(c.MinNames/4, 1))
	return kept
}

// Reconfigure implements Reconfigurer. The host budget stays.
func (d *Lateral) Reconfigure(cfg Config) (kept []string) {
	c := cfg.Lateral.normalized()
	kept = keptIf(kept, "detect.lateral_movement.max_hosts", d.maxHosts, c.MaxHosts)
	d.fanOut, d.learning, d.window, d.chainGap = c.FanOut, int64(c.Learning), int64(c.Window), int64(c.ChainGap)
	d.horizonSpan = max(d.window, d.chainGap, d.execWin)
	d.ports = latPorts(c.AdminPorts)
	d.allow = cfg.Allow
	return kept
}

// Reconfigure implements Reconfigurer. The pair budget stays.
func (d *LongConn) Reconfigure(cfg Config) (kept []string) {
	c := cfg.LongConn.normalized()
	kept = keptIf(kept, "detect.long_connection.max_pairs", d.pairs.max, c.MaxPairs)
	d.minTotal, d.minPart = int64(c.MinTotal), int64(c.MinTotal)/5
	d.allow = cfg.Allow
	return kept
}

// Reconfigure implements Reconfigurer. The host budget stays.
func (d *Scan) Reconfigure(cfg Config) (kept []string) {
	c := cfg.Scan.normalized()
	kept = keptIf(kept, "detect.scan.max_hosts", d.maxHosts, c.MaxHosts)
	d.vertical, d.horizontal, d.window = c.Vertical, c.Horizontal, int64(c.Window)
	d.allow = cfg.Allow
	return kept
}
