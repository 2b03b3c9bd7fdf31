package detect

import (
	"math/rand/v2"
	"testing"
)

// lookupPos probes x for key k at pos the way the tables do: it stops at
// the first empty slot.
func lookupPos(x *hashIndex, k uint64, pos uint32) bool {
	for i, tag := x.first(k); ; i = x.next(i) {
		st, p, ok := slotOf(x.slots[i])
		if !ok {
			return false
		}
		if st == tag && p == pos {
			return true
		}
	}
}

// TestHashIndex inserts and removes keys at random, many of them sharing
// home slots, and checks every probe against a map after each step: a key
// present is found before an empty slot, a key removed is not, and the
// count is right. Removal shifts slots back, the part that could lose a
// key.
func TestHashIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, keySpace := range []uint64{64, 1 << 12, 1 << 62} {
		x := newHashIndex()
		ref := map[uint64]uint32{}
		var keys []uint64
		for step := range 20000 {
			if len(keys) > 0 && rng.IntN(5) < 2 {
				j := rng.IntN(len(keys))
				k := keys[j]
				x.remove(k, ref[k])
				delete(ref, k)
				keys[j] = keys[len(keys)-1]
				keys = keys[:len(keys)-1]
			} else {
				k := rng.Uint64N(keySpace)
				if _, ok := ref[k]; ok {
					continue
				}
				pos := uint32(rng.IntN(1 << 20))
				x.insert(k, pos)
				ref[k] = pos
				keys = append(keys, k)
			}
			if x.len() != len(ref) {
				t.Fatalf("space %d step %d: len %d, want %d", keySpace, step, x.len(), len(ref))
			}
			if x.len()*4 > len(x.slots)*3 {
				t.Fatalf("space %d step %d: %d keys in %d slots", keySpace, step, x.len(), len(x.slots))
			}
			for _, k := range keys[max(0, len(keys)-8):] {
				if !lookupPos(&x, k, ref[k]) {
					t.Fatalf("space %d step %d: key %#x at %d not found", keySpace, step, k, ref[k])
				}
			}
		}
		for k, pos := range ref {
			if !lookupPos(&x, k, pos) {
				t.Fatalf("space %d: key %#x at %d not found at the end", keySpace, k, pos)
			}
		}
		for _, k := range keys {
			x.remove(k, ref[k])
		}
		for i, s := range x.slots {
			if s != 0 {
				t.Fatalf("space %d: slot %d still holds %#x after every key was removed", keySpace, i, s)
			}
		}
	}
}

// TestKeyedLRUSharedTags makes keys whose tags collide (the same key at
// two positions, as two keys with equal tags would look to the index) and
// checks that the table tells them apart by the stored key.
func TestKeyedLRUSharedTags(t *testing.T) {
	l := newKeyedLRU[uint64, int](8)
	*l.insert(5, 1) = 50
	*l.insert(6, 1) = 60
	// A slot with 5's tag pointing at 6's entry, probed before 5's own.
	x := &l.index
	i, tag := x.first(5)
	if x.slots[x.next(i)] != 0 {
		t.Fatal("setup: the slot after key 5's is taken")
	}
	x.slots[i], x.slots[x.next(i)] = tag<<32|uint64(1+1), x.slots[i]
	if v := l.get(5, 2); v == nil || *v != 50 {
		t.Fatalf("key 5 with a colliding tag in front: got %v", v)
	}
}
