package capture

import "hash/maphash"

// dedup drops packets seen again, byte for byte, within a short window of
// packet time. SPAN sessions that mirror both ingress and egress deliver
// every switched frame twice; without this, volumes double. It compares
// the innermost IP packet (see dedupBytes), so ERSPAN or VXLAN copies whose
// outer headers differ are caught too.
//
// It is a direct-mapped cache of frame hashes: a duplicate can be missed when
// another frame took its slot in between, never invented (a false match needs
// a 64-bit hash collision of equal-length frames).
type dedup struct {
	window int64
	seed   maphash.Seed
	slots  []dedupSlot
	mask   uint64
}

type dedupSlot struct {
	hash uint64
	ts   int64
	n    int
}

const dedupSlots = 1 << 16

func newDedup(windowNs int64) *dedup {
	return &dedup{window: windowNs, seed: maphash.MakeSeed(), slots: make([]dedupSlot, dedupSlots), mask: dedupSlots - 1}
}

// seen reports whether frame is a duplicate and remembers it otherwise.
func (dd *dedup) seen(frame []byte, ts int64) bool {
	h := maphash.Bytes(dd.seed, frame)
	s := &dd.slots[h&dd.mask]
	if s.hash == h && s.n == len(frame) && ts >= s.ts && ts-s.ts <= dd.window {
		return true
	}
	*s = dedupSlot{hash: h, ts: ts, n: len(frame)}
	return false
}
