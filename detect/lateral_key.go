package detect

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
)

// latKey is an address as a pointer-free map key: IPv4 in its IPv4-mapped
// form, zones dropped. Maps keyed by it are not scanned by the garbage
// lmCollector, which matters for the lateral and scan detectors' host tables.
type latKey [16]byte

func latKeyOf(a netip.Addr) latKey { return a.As16() }

func (k latKey) addr() netip.Addr { return netip.AddrFrom16(k).Unmap() }

// hash mixes the key into 64 well-spread bits (the splitmix64 finalizer).
func (k latKey) hash() uint64 {
	return latMix(binary.LittleEndian.Uint64(k[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(k[8:]))
}

func latMix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// latDistinct estimates how many distinct values were added by linear
// counting over 512 bits: exact enough (a few percent) up to about a
// thousand values, in 64 bytes and without allocation.
type latDistinct [8]uint64

func (b *latDistinct) add(h uint64) { b[(h>>6)&7] |= 1 << (h & 63) }

// has reports whether the bit of h is set.
func (b *latDistinct) has(h uint64) bool { return b[(h>>6)&7]&(1<<(h&63)) != 0 }

func (b *latDistinct) ones() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// latBitsFor is how many of the 512 bits n distinct values set, on
// average: the inverse of latLinearCount, so thresholds can be checked on
// a bit count without a logarithm per value.
func latBitsFor(n float64) int {
	const m = 512
	return min(m, int(math.Ceil(m*(1-math.Exp(-n/m)))))
}

// latLinearCount turns a count of set bits into a distinct-value estimate.
func latLinearCount(set int) float64 {
	const m = 512
	zeros := m - set
	if zeros == 0 {
		zeros = 1 // saturated: the estimate is a floor
	}
	return -m * math.Log(float64(zeros)/m)
}

func latAbsDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}
