package capture

import (
	"encoding/binary"
	"math/bits"
)

// flowKey identifies a bidirectional flow. It is canonical: side a is the
// smaller (address, port) endpoint, so both directions of a conversation
// produce the same key and the same hash.
type flowKey struct {
	a, b   [16]byte
	pa, pb uint16
	proto  uint8
}

// makeKey builds the canonical key for a packet and reports whether the
// packet was sent by side a.
func makeKey(d *Decoded) (k flowKey, fromA bool) {
	sp, dp := d.SrcPort, d.DstPort
	if d.Proto == 1 || d.Proto == 58 {
		sp, dp = icmpPorts(d.Proto, sp, dp)
	}
	k.proto = d.Proto
	if lessEndpoint(&d.Src, sp, &d.Dst, dp) {
		k.a, k.pa, k.b, k.pb = d.Src, sp, d.Dst, dp
		return k, true
	}
	k.a, k.pa, k.b, k.pb = d.Dst, dp, d.Src, sp
	return k, false
}

func lessEndpoint(x *[16]byte, xp uint16, y *[16]byte, yp uint16) bool {
	x0, y0 := binary.BigEndian.Uint64(x[:8]), binary.BigEndian.Uint64(y[:8])
	if x0 != y0 {
		return x0 < y0
	}
	x1, y1 := binary.BigEndian.Uint64(x[8:]), binary.BigEndian.Uint64(y[8:])
	if x1 != y1 {
		return x1 < y1
	}
	return xp <= yp
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
	a0 := binary.LittleEndian.Uint64(k.a[:8])
	a1 := binary.LittleEndian.Uint64(k.a[8:])
	b0 := binary.LittleEndian.Uint64(k.b[:8])
	b1 := binary.LittleEndian.Uint64(k.b[8:])
	p := uint64(k.pa) | uint64(k.pb)<<16 | uint64(k.proto)<<32
	h1 := mum(a0^seed^0xa0761d6478bd642f, a1^0xe7037ed1a0b428db)
	h2 := mum(b0^0x8ebc6af09c88c6e3, b1^seed^0x589965cc75374cc3)
	return mum(h1^p^0x1d8e4e27c47d124f, h2^seed)
}

func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}
