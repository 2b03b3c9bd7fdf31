package capture_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/capture/synth"
	"github.com/flowhound/flowhound/flow"
)

type fiveTuple struct {
	proto  uint8
	orig   string
	resp   string
	op, rp uint16
}

// TestFlowsMatchGeneratorTruth replays synthetic captures, whose generator
// recorded every flow it wrote, and requires every record to match its
// flow exactly: originator, packets, payload, IP and frame bytes per
// direction, and conn_state. A snaplen-cut copy must give the same numbers.
func TestFlowsMatchGeneratorTruth(t *testing.T) {
	for _, tc := range []struct {
		seed    int64
		snaplen int
		workers int
	}{{1, 0, 1}, {2, 0, 1}, {3, 96, 1}, {4, 0, 2}} {
		t.Run(fmt.Sprintf("seed=%d,snaplen=%d,workers=%d", tc.seed, tc.snaplen, tc.workers), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bench.pcap")
			truth, err := synth.WriteBenchFile(path, synth.BenchConfig{Seed: tc.seed, Packets: 60000, Hosts: 50, Snaplen: tc.snaplen})
			if err != nil {
				t.Fatal(err)
			}
			got := map[fiveTuple]flow.Record{}
			dup := 0
			emit := func(r *flow.Record) {
				k := fiveTuple{uint8(r.Proto), r.OrigAddr.String(), r.RespAddr.String(), r.OrigPort, r.RespPort}
				if _, ok := got[k]; ok {
					dup++
				}
				got[k] = *r
			}
			src, err := pcapfile.OpenSource([]string{path})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			cfg := capture.Config{Table: capture.DefaultTableConfig()}
			if tc.workers > 1 {
				err = capture.NewParallel(cfg, tc.workers, emit).Run(context.Background(), src)
			} else {
				err = capture.NewSensor(cfg, emit).Run(context.Background(), src)
			}
			if err != nil {
				t.Fatal(err)
			}
			if dup > 0 {
				t.Errorf("%d flows were split into several records", dup)
			}
			if len(got) != len(truth.Flows) {
				t.Errorf("%d flows, truth has %d", len(got), len(truth.Flows))
			}
			bad := 0
			for _, w := range truth.Flows {
				k := fiveTuple{w.Proto, w.OrigAddr.String(), w.RespAddr.String(), w.OrigPort, w.RespPort}
				r, ok := got[k]
				if !ok {
					t.Errorf("missing flow %+v", k)
					bad++
				} else if r.OrigPkts != w.OrigPkts || r.RespPkts != w.RespPkts ||
					r.OrigBytes != w.OrigBytes || r.RespBytes != w.RespBytes ||
					r.OrigIPBytes != w.OrigIPBytes || r.RespIPBytes != w.RespIPBytes ||
					r.OrigFrameBytes != w.OrigFrameBytes || r.RespFrameBytes != w.RespFrameBytes ||
					r.ConnState != w.ConnState || !r.Start.Equal(w.Start) || !r.End.Equal(w.End) {
					t.Errorf("flow %+v:\n got  pkts %d/%d bytes %d/%d ip %d/%d frame %d/%d %s %v..%v\n want pkts %d/%d bytes %d/%d ip %d/%d frame %d/%d %s %v..%v",
						k, r.OrigPkts, r.RespPkts, r.OrigBytes, r.RespBytes, r.OrigIPBytes, r.RespIPBytes, r.OrigFrameBytes, r.RespFrameBytes, r.ConnState, r.Start, r.End,
						w.OrigPkts, w.RespPkts, w.OrigBytes, w.RespBytes, w.OrigIPBytes, w.RespIPBytes, w.OrigFrameBytes, w.RespFrameBytes, w.ConnState, w.Start, w.End)
					bad++
				}
				if bad > 10 {
					t.Fatal("too many mismatches")
				}
			}
		})
	}
}
