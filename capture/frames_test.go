package capture

import (
	"encoding/binary"
	"net/netip"
)

// Test helpers that build frames byte by byte, so that decoder tests state
// exactly what is on the wire. Checksums are left zero: the decoder does not
// verify them (mirrored traffic often carries offloaded, unfinished ones).

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

var (
	macA = []byte{0x02, 0, 0, 0, 0, 0xaa}
	macB = []byte{0x02, 0, 0, 0, 0, 0xbb}
)

func ether(etherType uint16, payload []byte) []byte {
	return cat(macB, macA, u16(etherType), payload)
}

func vlan(id uint16, etherType uint16, payload []byte) []byte {
	return cat(u16(id&0x0fff), u16(etherType), payload)
}

func ipv4(src, dst string, proto uint8, payload []byte) []byte {
	return ipv4Frag(src, dst, proto, 0, 0, false, payload)
}

func ipv4Frag(src, dst string, proto uint8, id uint16, offset uint16, more bool, payload []byte) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(h[4:], id)
	fl := offset / 8
	if more {
		fl |= 0x2000
	}
	binary.BigEndian.PutUint16(h[6:], fl)
	h[8] = 64
	h[9] = proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	return cat(h, payload)
}

func ipv6(src, dst string, next uint8, payload []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6] = next
	h[7] = 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return cat(h, payload)
}

// ipv6Ext is an 8-byte extension header (hop-by-hop, destination options).
func ipv6Ext(next uint8, payload []byte) []byte {
	return cat([]byte{next, 0, 1, 4, 0, 0, 0, 0}, payload)
}

func ipv6FragHdr(next uint8, offset uint16, more bool, id uint32, payload []byte) []byte {
	fo := offset &^ 7
	if more {
		fo |= 1
	}
	return cat([]byte{next, 0}, u16(fo), u32(id), payload)
}

func tcp(sport, dport uint16, seq, ack uint32, flags uint8, payload []byte) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h, sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint32(h[4:], seq)
	binary.BigEndian.PutUint32(h[8:], ack)
	h[12] = 5 << 4
	h[13] = flags
	binary.BigEndian.PutUint16(h[14:], 65535)
	return cat(h, payload)
}

func udp(sport, dport uint16, payload []byte) []byte {
	return cat(u16(sport), u16(dport), u16(uint16(8+len(payload))), u16(0), payload)
}

func icmpMsg(typ, code uint8, payload []byte) []byte {
	return cat([]byte{typ, code, 0, 0}, payload)
}

func gre(proto uint16, key *uint32, seq *uint32, payload []byte) []byte {
	var flags uint16
	var opt []byte
	if key != nil {
		flags |= 0x2000
		opt = append(opt, u32(*key)...)
	}
	if seq != nil {
		flags |= 0x1000
		opt = append(opt, u32(*seq)...)
	}
	return cat(u16(flags), u16(proto), opt, payload)
}

func vxlanHdr(vni uint32, payload []byte) []byte {
	return cat([]byte{0x08, 0, 0, 0}, u32(vni<<8), payload)
}

func geneveHdr(vni uint32, proto uint16, payload []byte) []byte {
	// One 4-byte option (length 1 word).
	return cat([]byte{0x01, 0}, u16(proto), u32(vni<<8), []byte{0, 0x01, 0x80, 0}, payload)
}

func erspan2Hdr(session uint16, payload []byte) []byte {
	return cat([]byte{0x10, 0x00}, u16(session&0x3ff), []byte{0, 0, 0, 0}, payload)
}

func erspan3Hdr(session uint16, payload []byte) []byte {
	// ver 2, timestamp, SGT/P/FT=0 (Ethernet)/HwID/D/Gra/O=0.
	return cat([]byte{0x20, 0x00}, u16(session&0x3ff), u32(12345), []byte{0, 0, 0, 0}, payload)
}

func mplsLabel(label uint32, bottom bool, payload []byte) []byte {
	v := label<<12 | 64
	if bottom {
		v |= 0x100
	}
	return cat(u32(v), payload)
}

func fill(n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = byte('a' + i%26)
	}
	return out
}
