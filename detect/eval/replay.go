package eval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
)

// replayResult is what a replay produced.
type replayResult struct {
	ems      []emission
	records  []flow.Record // every record the engine got, interim included, in order
	stats    capture.Stats
	engine   detect.EngineStats
	state    map[detect.Kind]detect.DetectorStats
	elapsed  time.Duration
	warnings []string
}

// replay runs the capture files through a sensor and an engine fed by the
// detectors of factory, ticking the engine every tick of packet time.
func replay(ctx context.Context, paths []string, env Env, factory Factory, tick time.Duration) (*replayResult, error) {
	src, err := pcapfile.OpenSource(paths)
	if err != nil {
		return nil, err
	}
	defer src.Close()

	res := &replayResult{}
	var dets []detect.Detector
	if factory != nil {
		dets = factory(env)
	}
	out := func(f *detect.Finding) {
		c := *f
		// Keep what matching needs; the detector may reuse its slices.
		c.SubScores, c.MITRE, c.Evidence = slices.Clone(f.SubScores), slices.Clone(f.MITRE), detect.Evidence{}
		res.ems = append(res.ems, emission{f: c, seq: len(res.records)})
	}
	engine := detect.NewEngine("eval", out, dets...)
	emit := func(r *flow.Record) {
		// Stored first, so a finding counts the record that raised it.
		res.records = append(res.records, copyRecord(r))
		engine.Record(r)
	}
	tcfg := capture.DefaultTableConfig()
	tcfg.HomeNets = env.HomeNets
	tcfg.Seed = 1 // the same replay gives the same records in the same order
	sensor := capture.NewSensor(capture.Config{Table: tcfg}, emit)

	ts := &tickingSource{src: src, every: int64(tick), tick: func(now int64) { engine.Tick(time.Unix(0, now).UTC()) }}
	start := time.Now()
	runErr := sensor.Run(ctx, ts)
	res.stats = sensor.Stats()
	if !res.stats.Last.IsZero() {
		engine.Tick(res.stats.Last)
	}
	res.elapsed = time.Since(start)
	res.engine = engine.Stats()
	res.state = engine.DetectorStats()
	if runErr != nil {
		var inc *capture.IncompleteError
		if !errors.As(runErr, &inc) {
			return nil, runErr
		}
		for _, e := range inc.Errs {
			res.warnings = append(res.warnings, e.Error())
		}
	}
	if res.stats.Packets == 0 && len(res.warnings) > 0 {
		return nil, fmt.Errorf("no packets read: %s", res.warnings[0])
	}
	return res, nil
}

// copyRecord copies a record the sensor will reuse, with its application
// hints (the flow table may reuse those too) and without encapsulation.
func copyRecord(r *flow.Record) flow.Record {
	c := *r
	c.Encap = nil
	if r.App != nil {
		app := *r.App
		app.DNSAnswers = nil
		app.DNSNames = slices.Clone(r.App.DNSNames)
		c.App = &app
	}
	return c
}

// tickingSource passes packets through and ticks the engine each time
// packet time crosses a multiple of every, before the packet is processed.
type tickingSource struct {
	src   capture.PacketSource
	every int64
	next  int64
	tick  func(now int64)
}

func (t *tickingSource) Next(p *pcapfile.Packet) error {
	err := t.src.Next(p)
	if err == nil && t.every > 0 && p.Timestamp >= t.next {
		if t.next != 0 {
			t.tick(p.Timestamp)
		}
		t.next = (p.Timestamp/t.every + 1) * t.every
	}
	return err
}
