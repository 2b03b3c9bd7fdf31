package capture

import (
	"runtime"
	"testing"

	"github.com/flowhound/flowhound/flow"
)

// TestMemoryPerFlow measures the table's heap per tracked flow with 200 k
// open UDP flows (no application hints, which add a small allocation per
// flow that has them) and holds it to the documented figure.
func TestMemoryPerFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~100 MB")
	}
	const n = 200_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tbl := NewTable(TableConfig{MaxFlows: n}, func(*flow.Record) {})
	dec := NewDecoder()
	for i := 0; i < n; i++ {
		frame := ether(0x0800, ipv4("10.0.0.1", "10.9.0.1", 17, udp(uint16(i), uint16(i>>16)+1000, nil)))
		d, _ := dec.Decode(frame, linkEthernet, len(frame))
		tbl.Add(d, t0.UnixNano()+int64(i), len(frame))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if a := tbl.Stats().Active; a != n {
		t.Fatalf("%d flows active, want %d", a, n)
	}
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("table heap: %.0f bytes per tracked flow (state %d B + index)", per, FlowStateSize)
	// State is 256 B and the index at most 16 B; slices grow by doubling,
	// so up to twice that may be reserved.
	if per > 2*float64(FlowStateSize) {
		t.Fatalf("%.0f bytes per flow, more than twice the %d B of state and index", per, FlowStateSize)
	}
	runtime.KeepAlive(tbl)
}
