package detect

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowhound/flowhound/flow"
)

// lmBenchRecords is a steady office mix for nhosts workstations: web and
// DNS, SMB to the file server and the DC, an admin's RDP session to the
// jump host (interim records) and SSH from the jump host.
func lmBenchRecords(nhosts int) []*flow.Record {
	var recs []*flow.Record
	for i := range nhosts {
		ws := netip.AddrFrom4([4]byte{10, 10, byte(1 + i/250), byte(1 + i%250)}).String()
		ext := netip.AddrFrom4([4]byte{93, 184, byte(i % 200), byte(1 + i%97)}).String()
		dns := lmRec(0, 2*time.Millisecond, ws, "10.1.0.10", 53, 40, 120)
		dns.Proto = flow.ProtoUDP
		recs = append(recs,
			lmRec(time.Second, 3*time.Second, ws, ext, 443, 2_000, 60_000),
			dns,
			lmRec(2*time.Second, 20*time.Second, ws, "10.1.0.20", 445, 3_000, 250_000),
			lmRec(3*time.Second, 5*time.Second, ws, "10.1.0.10", 445, 1_500, 8_000),
			lmRec(4*time.Second, 3*time.Second, ws, ext, 443, 1_800, 30_000),
			lmRec(5*time.Second, 3*time.Second, ws, "10.1.0.50", 10051, 400, 60),
		)
		if i < 4 {
			recs = append(recs, lmInterim(lmRec(6*time.Second, 5*time.Minute, ws, "10.1.0.40", 3389, 20_000, 900_000)))
		}
		if i < 8 {
			recs = append(recs, lmRec(7*time.Second, 2*time.Minute, "10.1.0.40", netip.AddrFrom4([4]byte{10, 1, 0, byte(70 + i)}).String(), 22, 9_000, 60_000))
		}
	}
	return recs
}

// BenchmarkLateralObserve measures the steady path: every edge known, time
// moving on by ten minutes per pass over the mix.
func BenchmarkLateralObserve(b *testing.B) {
	const nhosts = 1000
	recs := lmBenchRecords(nhosts)
	d := NewLateral(DefaultConfig())
	propose := func(*Finding) {}
	for _, r := range recs {
		d.Observe(r, propose)
	}
	base := make([][2]time.Time, len(recs))
	for i, r := range recs {
		base[i] = [2]time.Time{r.Start, r.End}
	}
	b.ReportAllocs()
	b.ResetTimer()
	pass := time.Duration(0)
	for i := 0; i < b.N; i++ {
		k := i % len(recs)
		if k == 0 {
			pass += 10 * time.Minute
		}
		r := recs[k]
		r.Start, r.End = base[k][0].Add(pass), base[k][1].Add(pass)
		d.Observe(r, propose)
	}
	b.StopTimer()
	st := d.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(st.Bytes), "state-bytes")
	b.ReportMetric(float64(st.Bytes)/nhosts, "bytes/host")
}

// BenchmarkScanObserve: mostly completed sessions, a tenth failed attempts
// spread over targets and ports below the thresholds.
func BenchmarkScanObserve(b *testing.B) {
	const nhosts = 1000
	var recs []*flow.Record
	for i := range nhosts {
		ws := netip.AddrFrom4([4]byte{10, 10, byte(1 + i/250), byte(1 + i%250)}).String()
		for k := range 9 {
			recs = append(recs, lmRec(time.Duration(k)*time.Second, time.Second, ws, "10.1.0.20", 445, 3_000, 250_000))
		}
		dead := netip.AddrFrom4([4]byte{10, 1, 9, byte(i % 5)}).String()
		recs = append(recs, lmRec(9*time.Second, 3*time.Second, ws, dead, uint16(8000+i%7), 0, 0))
	}
	d := NewScan(DefaultConfig())
	propose := func(*Finding) {}
	for _, r := range recs {
		d.Observe(r, propose)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.Observe(recs[i%len(recs)], propose)
	}
	b.StopTimer()
	st := d.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(st.Bytes), "state-bytes")
}

// BenchmarkScanProbe is the cost of one failed attempt into a live slot.
func BenchmarkScanProbe(b *testing.B) {
	d := NewScan(DefaultConfig())
	propose := func(*Finding) {}
	recs := make([]*flow.Record, 4096)
	for i := range recs {
		recs[i] = lmState(lmRec(time.Duration(i)*time.Millisecond, 0, "10.10.1.16", "10.10.1.17", uint16(1+i%40), 0, 0), "REJ")
	}
	for _, r := range recs {
		d.Observe(r, propose)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.Observe(recs[i%len(recs)], propose)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
