package capture

import (
	"encoding/binary"
	"math/bits"
)

// flowKey identifies a bidirectional flow. It is canonical: side a is the
// smaller (address, port) endpoint, so both directions of a conversation
// produce the same key and the same hash. Addresses are held as big-endian
// 64-bit halves so that ordering, hashing and equality are a few word
// operations.
type flowKey struct {
	ahi, alo, bhi, blo uint64
	rest               uint64 // port a << 24 | port b << 8 | protocol
}

// equal compares word by word (== on the struct calls memequal).
func (k *flowKey) equal(o *flowKey) bool {
	return k.alo == o.alo && k.rest == o.rest && k.blo == o.blo && k.ahi == o.ahi && k.bhi == o.bhi
}

func (k *flowKey) proto() uint8    { return uint8(k.rest) }
func (k *flowKey) portA() uint16   { return uint16(k.rest >> 24) }
func (k *flowKey) portB() uint16   { return uint16(k.rest >> 8) }
func (k *flowKey) clearPorts()     { k.rest &= 0xff }
func (k *flowKey) addrA() [16]byte { return addrBytes(k.ahi, k.alo) }
func (k *flowKey) addrB() [16]byte { return addrBytes(k.bhi, k.blo) }

func addrBytes(hi, lo uint64) (b [16]byte) {
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return b
}

// makeKey builds the canonical key for a packet and reports whether the
// packet was sent by side a.
func makeKey(d *Decoded) (k flowKey, fromA bool) {
	fromA = k.set(d)
	return k, fromA
}

// set makes k the canonical key of a packet's flow and reports whether the
// packet was sent by side a. It writes in place: this is per packet.
func (k *flowKey) set(d *Decoded) (fromA bool) {
	sp, dp := uint64(d.SrcPort), uint64(d.DstPort)
	if d.Proto == 1 || d.Proto == 58 {
		s, t := icmpPorts(d.Proto, d.SrcPort, d.DstPort)
		sp, dp = uint64(s), uint64(t)
	}
	if !d.HasPorts {
		sp, dp = 0, 0
	}
	sh, sl := binary.BigEndian.Uint64(d.Src[:8]), binary.BigEndian.Uint64(d.Src[8:])
	dh, dl := binary.BigEndian.Uint64(d.Dst[:8]), binary.BigEndian.Uint64(d.Dst[8:])
	proto := uint64(d.Proto)
	if sh < dh || sh == dh && (sl < dl || sl == dl && sp <= dp) {
		k.ahi, k.alo, k.bhi, k.blo, k.rest = sh, sl, dh, dl, sp<<24|dp<<8|proto
		return true
	}
	k.ahi, k.alo, k.bhi, k.blo, k.rest = dh, dl, sh, sl, dp<<24|sp<<8|proto
	return false
}

// keyOf orders the two endpoints into a canonical key.
func keyOf(src *[16]byte, sp uint16, dst *[16]byte, dp uint16, proto uint8) (k flowKey, fromA bool) {
	sh, sl := binary.BigEndian.Uint64(src[:8]), binary.BigEndian.Uint64(src[8:])
	dh, dl := binary.BigEndian.Uint64(dst[:8]), binary.BigEndian.Uint64(dst[8:])
	if sh < dh || sh == dh && (sl < dl || sl == dl && sp <= dp) {
		return flowKey{sh, sl, dh, dl, uint64(sp)<<24 | uint64(dp)<<8 | uint64(proto)}, true
	}
	return flowKey{dh, dl, sh, sl, uint64(dp)<<24 | uint64(sp)<<8 | uint64(proto)}, false
}

// icmpPorts maps an ICMP (type, code) to the (sender, receiver) "ports" of
// its flow, as Zeek and the Community ID spec do: a message with a
// counterpart (echo request/reply and friends) is keyed by (type,
// counterpart type) so that request and reply land in one flow; any other
// message by (type, code).
func icmpPorts(proto uint8, typ, code uint16) (uint16, uint16) {
	if c, ok := icmpCounterpart(proto, typ); ok {
		return typ, c
	}
	return typ, code
}

func icmpCounterpart(proto uint8, typ uint16) (uint16, bool) {
	if proto == 1 {
		switch typ {
		case 8:
			return 0, true
		case 0:
			return 8, true
		case 13:
			return 14, true
		case 14:
			return 13, true
		case 15:
			return 16, true
		case 16:
			return 15, true
		case 10:
			return 9, true
		case 9:
			return 10, true
		case 17:
			return 18, true
		case 18:
			return 17, true
		}
		return 0, false
	}
	switch typ {
	case 128:
		return 129, true
	case 129:
		return 128, true
	case 133:
		return 134, true
	case 134:
		return 133, true
	case 135:
		return 136, true
	case 136:
		return 135, true
	case 130:
		return 131, true
	case 131:
		return 130, true
	case 139:
		return 140, true
	case 140:
		return 139, true
	case 144:
		return 145, true
	case 145:
		return 144, true
	}
	return 0, false
}

// hash mixes the key with a per-table seed (so that crafted traffic cannot
// aim at one bucket). The key is canonical, so the hash is symmetric.
func (k *flowKey) hash(seed uint64) uint64 {
	h1 := mum(k.ahi^seed^0xa0761d6478bd642f, k.alo^0xe7037ed1a0b428db)
	h2 := mum(k.bhi^0x8ebc6af09c88c6e3, k.blo^seed^0x589965cc75374cc3)
	return mum(h1^k.rest^0x1d8e4e27c47d124f, h2^seed)
}

func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}
