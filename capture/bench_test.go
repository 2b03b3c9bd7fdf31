package capture

import (
	"fmt"
	"testing"
	"time"

	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/flow"
)

// steadyFrames returns data packets of n established TCP flows (one frame
// per flow and direction), the traffic a sensor sees most of the time.
func steadyFrames(n int) [][]byte {
	frames := make([][]byte, 0, 2*n)
	for i := 0; i < n; i++ {
		c := fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff)
		sport := uint16(10000 + i%50000)
		frames = append(frames,
			ether(0x0800, ipv4(c, "192.0.2.10", 6, tcp(sport, 443, 1000, 1, PA, fill(200)))),
			ether(0x0800, ipv4("192.0.2.10", c, 6, tcp(443, sport, 5000, 1, PA, fill(1200)))))
	}
	return frames
}

// feed plays frames as packets 1 µs apart, starting at *ts.
func feed(s *Sensor, frames [][]byte, ts *int64) {
	var p pcapfile.Packet
	p.LinkType = pcapfile.LinkTypeEthernet
	for _, f := range frames {
		*ts += 1000
		p.Data, p.WireLen, p.Timestamp = f, len(f), *ts
		s.Packet(&p)
	}
}

func TestPacketPathDoesNotAllocate(t *testing.T) {
	frames := steadyFrames(5000)
	s := NewSensor(Config{Table: TableConfig{Seed: 1}}, func(*flow.Record) {})
	ts := t0.UnixNano()
	feed(s, frames, &ts) // create the flows
	allocs := testing.AllocsPerRun(5, func() { feed(s, frames, &ts) })
	if allocs != 0 {
		t.Fatalf("%v allocations per pass over %d packets of known flows, want 0", allocs, len(frames))
	}
	// In batches, as Run reads (the fused path), with and without
	// prefetching flow state.
	b := new(readBatch)
	batched := func() {
		for i := 0; i < len(frames); i += readAhead {
			n := min(readAhead, len(frames)-i)
			for j, f := range frames[i : i+n] {
				ts += 1000
				b.pkts[j] = pcapfile.Packet{Data: f, WireLen: len(f), Timestamp: ts, LinkType: pcapfile.LinkTypeEthernet}
			}
			s.packets(b, n)
		}
	}
	for _, from := range []int{prefetchFlows, 0} {
		s.prefetchMin = from
		if allocs := testing.AllocsPerRun(5, batched); allocs != 0 {
			t.Fatalf("%v allocations per batched pass over %d packets of known flows (prefetch from %d flows), want 0", allocs, len(frames), from)
		}
	}
}

// BenchmarkSensorPacket measures the per-packet path (decode + flow
// update) on established flows; ns/op is per packet.
func BenchmarkSensorPacket(b *testing.B) {
	for _, n := range []int{1000, 50000} {
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			frames := steadyFrames(n)
			s := NewSensor(Config{}, func(*flow.Record) {})
			ts := t0.UnixNano()
			feed(s, frames, &ts)
			var p pcapfile.Packet
			p.LinkType = pcapfile.LinkTypeEthernet
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f := frames[i%len(frames)]
				ts += 1000
				p.Data, p.WireLen, p.Timestamp = f, len(f), ts
				s.Packet(&p)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpps")
		})
	}
}

// BenchmarkDecode measures the decoder alone on a plain TCP frame and a
// VXLAN-encapsulated one.
func BenchmarkDecode(b *testing.B) {
	plain := ether(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, 3, 4, PA, fill(100))))
	vx := ether(0x0800, ipv4("1.1.1.1", "2.2.2.2", 17, udp(40000, 4789, vxlanHdr(7, plain))))
	for name, f := range map[string][]byte{"plain": plain, "vxlan": vx} {
		b.Run(name, func(b *testing.B) {
			dec := NewDecoder()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				dec.Decode(f, linkEthernet, len(f))
			}
		})
	}
}

// BenchmarkNewFlows measures flow creation and expiry: every packet is a
// new UDP flow, as in a DNS-heavy or scanning network.
func BenchmarkNewFlows(b *testing.B) {
	frames := make([][]byte, 1<<16)
	for i := range frames {
		frames[i] = ether(0x0800, ipv4("10.0.0.1", fmt.Sprintf("10.1.%d.%d", i>>8, i&0xff), 17, udp(uint16(i), 53, fill(40))))
	}
	s := NewSensor(Config{Table: TableConfig{UDPTimeout: 10 * time.Millisecond}}, func(*flow.Record) {})
	var p pcapfile.Packet
	p.LinkType = pcapfile.LinkTypeEthernet
	ts := t0.UnixNano()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		f := frames[i%len(frames)]
		ts += 1000
		p.Data, p.WireLen, p.Timestamp = f, len(f), ts
		s.Packet(&p)
	}
}
