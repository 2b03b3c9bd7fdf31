package capture

import "hash/maphash"

// dedup drops packets seen again, byte for byte, within a short window of
// packet time. SPAN sessions that mirror both ingress and egress deliver
// every switched frame twice; without this, volumes double. It compares
// the innermost IP packet (see dedupBytes), so ERSPAN or VXLAN copies whose
// outer headers differ are caught too.
//
// It is a set-associative cache of packet hashes: 8 ways per set, the
// oldest way replaced (3 MiB). A duplicate is missed only when eight other packets
// of its set arrived within the window in between (at 1 Mpps and a 5 ms
// window, 5,000 packets share 16,384 sets: rare); a false match needs a
// 64-bit hash collision of equal-length packets.
type dedup struct {
	window int64
	seed   maphash.Seed
	sets   [][dedupWays]dedupSlot
	mask   uint64
}

type dedupSlot struct {
	hash uint64
	ts   int64
	n    int
}

const (
	dedupSets = 1 << 14
	dedupWays = 8
)

func newDedup(windowNs int64) *dedup {
	return &dedup{window: windowNs, seed: maphash.MakeSeed(), sets: make([][dedupWays]dedupSlot, dedupSets), mask: dedupSets - 1}
}

// seen reports whether pkt is a duplicate and remembers it otherwise.
func (dd *dedup) seen(pkt []byte, ts int64) bool {
	h := maphash.Bytes(dd.seed, pkt)
	set := &dd.sets[h&dd.mask]
	oldest := 0
	for i := range set {
		s := &set[i]
		if s.n == 0 {
			// Ways fill in order and are never emptied: the rest are empty
			// too. An empty way is taken before any old one (an entry
			// stamped 0 would otherwise tie with it and be replaced).
			oldest = i
			break
		}
		if s.hash == h && s.n == len(pkt) && ts >= s.ts && ts-s.ts <= dd.window {
			return true
		}
		if s.ts < set[oldest].ts {
			oldest = i
		}
	}
	set[oldest] = dedupSlot{hash: h, ts: ts, n: len(pkt)}
	return false
}
