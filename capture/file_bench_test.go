package capture

import (
	"io"
	"os"
	"testing"

	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/flow"
)

// BenchmarkFile runs the packet path over a real capture named by
// $FLOWHOUND_BENCH_PCAP (scripts/bench.sh writes one to
// .cache/bench-seed1-2m.pcap) one stage more at a time — read, decode, flow
// table, records, JSON — so that the cost of each stage shows as the
// difference to the one before, measured with the file streaming through
// the caches as it does in production. One op is one pass over the file.
func BenchmarkFile(b *testing.B) {
	path := os.Getenv("FLOWHOUND_BENCH_PCAP")
	if path == "" {
		b.Skip("set FLOWHOUND_BENCH_PCAP to a capture file")
	}
	stages := []struct {
		name string
		run  func(src *pcapfile.Source) uint64
	}{
		{"read", func(src *pcapfile.Source) uint64 {
			var p pcapfile.Packet
			var n uint64
			for src.Next(&p) == nil {
				n++
			}
			return n
		}},
		{"readbatch", func(src *pcapfile.Source) uint64 {
			var ps [readAhead]pcapfile.Packet
			var n uint64
			for {
				k, _ := src.NextBatch(ps[:])
				if k == 0 {
					return n
				}
				n += uint64(k)
			}
		}},
		{"decode", func(src *pcapfile.Source) uint64 {
			var ps [readAhead]pcapfile.Packet
			var d Decoded
			var n uint64
			dec := NewDecoder()
			for {
				k, _ := src.NextBatch(ps[:])
				if k == 0 {
					return n
				}
				for i := range ps[:k] {
					dec.decodeInto(&d, ps[i].Data, uint16(ps[i].LinkType), ps[i].WireLen)
				}
				n += uint64(k)
			}
		}},
		{"table", func(src *pcapfile.Source) uint64 {
			s := NewSensor(Config{}, nil)
			s.Run(b.Context(), src)
			return s.Stats().Packets
		}},
		{"records", func(src *pcapfile.Source) uint64 {
			s := NewSensor(Config{}, func(*flow.Record) {})
			s.Run(b.Context(), src)
			return s.Stats().Packets
		}},
		{"json", func(src *pcapfile.Source) uint64 {
			var line []byte
			s := NewSensor(Config{}, func(r *flow.Record) {
				line = r.AppendJSON(line[:0])
				line = append(line, '\n')
				io.Discard.Write(line)
			})
			s.Run(b.Context(), src)
			return s.Stats().Packets
		}},
	}
	for _, st := range stages {
		b.Run(st.name, func(b *testing.B) {
			var pkts uint64
			for b.Loop() {
				src, err := pcapfile.OpenSource([]string{path})
				if err != nil {
					b.Fatal(err)
				}
				pkts += st.run(src)
				src.Close()
			}
			b.ReportMetric(float64(pkts)/b.Elapsed().Seconds()/1e6, "Mpps")
		})
	}
}
