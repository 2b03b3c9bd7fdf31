package detect

// hashIndex maps 64-bit keys to the positions of entries in a slice that
// holds the keys themselves (a detector's slots). It is an open-addressing
// table of 8-byte slots, linearly probed: a lookup of a key present is one
// or two loads from the index and one from the entry it was going to read
// anyway, and a Go map's hashing and group matching are not paid on every
// record.
//
// A slot holds the top 32 bits of the key's multiplicative hash (its tag,
// whose low bits are also its home slot) and the position plus one (0 is
// an empty slot). Equal tags are told apart by the caller, who compares
// the key stored at the position; removal shifts the slots after it back
// (no tombstones), so probes stay short however many keys come and go.
type hashIndex struct {
	slots []uint64
	mask  uint64
	n     int
}

// hashIndexMin is the slots of a new index.
const hashIndexMin = 16

func newHashIndex() hashIndex {
	return hashIndex{slots: make([]uint64, hashIndexMin), mask: hashIndexMin - 1}
}

// indexTag is the tag of key k.
func indexTag(k uint64) uint64 { return (k * 0x9e3779b97f4a7c15) >> 32 }

// first returns where the probe for k starts and the tag to match.
func (x *hashIndex) first(k uint64) (i, tag uint64) {
	tag = indexTag(k)
	return tag & x.mask, tag
}

// next is the slot probed after i.
func (x *hashIndex) next(i uint64) uint64 { return (i + 1) & x.mask }

// slot decodes a slot: its tag, and the position it holds (ok false for an
// empty slot).
func slotOf(s uint64) (tag uint64, pos uint32, ok bool) {
	return s >> 32, uint32(s) - 1, s != 0
}

func (x *hashIndex) len() int { return x.n }

// insert adds key k at pos. k must not be present.
func (x *hashIndex) insert(k uint64, pos uint32) {
	if (x.n+1)*4 > len(x.slots)*3 {
		x.grow()
	}
	x.put(indexTag(k)<<32 | uint64(pos+1))
	x.n++
}

func (x *hashIndex) put(s uint64) {
	i := (s >> 32) & x.mask
	for x.slots[i] != 0 {
		i = (i + 1) & x.mask
	}
	x.slots[i] = s
}

func (x *hashIndex) grow() {
	prev := x.slots
	x.slots = make([]uint64, 2*len(prev))
	x.mask = uint64(len(x.slots) - 1)
	for _, s := range prev {
		if s != 0 {
			x.put(s)
		}
	}
}

// remove deletes key k, which is at pos.
func (x *hashIndex) remove(k uint64, pos uint32) {
	want := indexTag(k)<<32 | uint64(pos+1)
	i := (want >> 32) & x.mask
	for x.slots[i] != want {
		if x.slots[i] == 0 {
			return // not present
		}
		i = (i + 1) & x.mask
	}
	// Shift back the slots after the hole that may move into it: one whose
	// home is not cyclically within (hole, j].
	hole := i
	for j := (i + 1) & x.mask; x.slots[j] != 0; j = (j + 1) & x.mask {
		home := (x.slots[j] >> 32) & x.mask
		if (j-home)&x.mask >= (j-hole)&x.mask {
			x.slots[hole] = x.slots[j]
			hole = j
		}
	}
	x.slots[hole] = 0
	x.n--
}

// bytes is the index's memory.
func (x *hashIndex) bytes() int { return cap(x.slots) * 8 }
