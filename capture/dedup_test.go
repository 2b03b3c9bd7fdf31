package capture

import (
	"encoding/binary"
	"testing"
)

func TestDedup(t *testing.T) {
	dd := newDedup(5e6) // 5 ms
	a, b := []byte("packet a"), []byte("packet b")
	if dd.seen(a, 1000) || dd.seen(b, 1100) {
		t.Fatal("first copies reported as duplicates")
	}
	if !dd.seen(a, 2000) {
		t.Fatal("copy within the window not caught")
	}
	if dd.seen(b, 1100+6e6) {
		t.Fatal("copy after the window reported as duplicate")
	}
	if dd.seen([]byte("packet a, longer"), 2100) {
		t.Fatal("different packet reported as duplicate")
	}
}

// At a SPAN's rate, every copy arriving within the window is caught: 200 k
// packets at 1 Mpps, each mirrored again 3 ms later.
func TestDedupCatchesEveryCopyAtLineRate(t *testing.T) {
	dd := newDedup(5e6)
	const n, lag = 200_000, 3000 // copies 3000 packets (3 ms) later
	pkt := func(i int) []byte { return binary.BigEndian.AppendUint64([]byte("pkt"), uint64(i)) }
	missed := 0
	for i := 0; i < n+lag; i++ {
		ts := int64(i) * 1000 // 1 µs apart
		if i < n && dd.seen(pkt(i), ts) {
			t.Fatalf("packet %d is not a duplicate", i)
		}
		if j := i - lag; j >= 0 && !dd.seen(pkt(j), ts) {
			missed++
		}
	}
	if missed != 0 {
		t.Fatalf("%d of %d copies missed", missed, n)
	}
}
