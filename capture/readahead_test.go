package capture_test

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/flow"
)

// nextOnly hides NextBatch, so the sensor reads one packet at a time.
type nextOnly struct{ src *pcapfile.Source }

func (n nextOnly) Next(p *pcapfile.Packet) error { return n.src.Next(p) }

// Reading ahead in batches (what Run does with a *pcapfile.Source) changes
// nothing a run produces: the same records, byte for byte, the same
// counters and the same errors as packet by packet, over every shared
// capture (broken ones included) read as one folder, with and without
// de-duplication, and with and without prefetching flow state (which Run
// does only for large tables).
func TestReadAheadMatchesPacketByPacket(t *testing.T) {
	dir := pcapDir(t)
	for _, tc := range []struct {
		dedup    time.Duration
		prefetch bool
	}{{0, false}, {0, true}, {5 * time.Millisecond, false}, {5 * time.Millisecond, true}} {
		dedup := tc.dedup
		t.Run(fmt.Sprintf("dedup=%v/prefetch=%v", dedup, tc.prefetch), func(t *testing.T) {
			run := func(batched bool) (out []byte, st capture.Stats, err error) {
				src, err := pcapfile.OpenSource([]string{dir})
				if err != nil {
					t.Fatal(err)
				}
				defer src.Close()
				cfg := capture.Config{Table: capture.TableConfig{Seed: 1, ActiveTimeout: time.Minute}, Dedup: dedup}
				s := capture.NewSensor(cfg, func(r *flow.Record) {
					out = r.AppendJSON(out)
					out = append(out, '\n')
				})
				var ps capture.PacketSource = src
				if !batched {
					ps = nextOnly{src}
				}
				if tc.prefetch {
					capture.SetPrefetchMin(s, 0)
				}
				err = s.Run(context.Background(), ps)
				return out, s.Stats(), err
			}
			wantOut, wantSt, wantErr := run(false)
			gotOut, gotSt, gotErr := run(true)
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Errorf("batched Run: %v; packet by packet: %v", gotErr, wantErr)
			}
			if !bytes.Equal(gotOut, wantOut) {
				t.Errorf("records differ: %d bytes batched, %d packet by packet", len(gotOut), len(wantOut))
			}
			if len(wantOut) == 0 || wantSt.Packets == 0 {
				t.Fatal("no records: the comparison tested nothing")
			}
			gotErrs, wantErrs := fmt.Sprint(gotSt.FileErrors), fmt.Sprint(wantSt.FileErrors)
			gotSt.FileErrors, wantSt.FileErrors = nil, nil
			if !reflect.DeepEqual(gotSt, wantSt) || gotErrs != wantErrs {
				t.Errorf("stats differ:\nbatched %+v %s\npackets %+v %s", gotSt, gotErrs, wantSt, wantErrs)
			}
		})
	}
}
