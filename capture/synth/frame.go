package synth

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// IP protocol numbers Packet can build.
const (
	ProtoTCP = 6
	ProtoUDP = 17
)

// MinFrameLen is the shortest Ethernet frame on the wire without its FCS;
// Packet pads shorter frames with zeros, as a NIC does, so IP and frame
// lengths differ for small IPv4 packets exactly as in real captures.
const MinFrameLen = 60

// TCPFlags are the TCP header flag bits.
type TCPFlags uint8

// TCP flag bits.
const (
	FlagFIN TCPFlags = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
)

// Packet describes one frame: Ethernet (optionally 802.1Q-tagged), IPv4 or
// IPv6, and TCP or UDP. Its methods never allocate when the destination
// buffer is large enough, so one Packet can be refilled per frame.
type Packet struct {
	SrcMAC, DstMAC [6]byte
	// VLAN is the 802.1Q VLAN ID (1–4094); 0 means untagged.
	VLAN uint16

	// Src and Dst must both be IPv4 or both IPv6.
	Src, Dst netip.Addr
	// TTL is the IPv4 TTL or IPv6 hop limit; 0 means 64.
	TTL uint8
	// IPID is the IPv4 identification field.
	IPID uint16
	// DontFragment sets the IPv4 DF bit.
	DontFragment bool
	// FlowLabel is the IPv6 flow label (low 20 bits).
	FlowLabel uint32

	// Proto is ProtoTCP or ProtoUDP.
	Proto            uint8
	SrcPort, DstPort uint16

	// TCP only.
	Seq, Ack uint32
	Flags    TCPFlags
	Window   uint16
	// Options are TCP options, padded with zeros (end of options) to a
	// multiple of four bytes; at most 40 bytes.
	Options []byte
}

// HeaderLen is the number of bytes in front of the transport payload.
func (p *Packet) HeaderLen() int {
	n := 14
	if p.VLAN != 0 {
		n += 4
	}
	if p.Src.Is4() {
		n += 20
	} else {
		n += 40
	}
	return n + p.transportHeaderLen()
}

func (p *Packet) transportHeaderLen() int {
	if p.Proto == ProtoUDP {
		return 8
	}
	return 20 + pad4(len(p.Options))
}

// AppendFrame appends the frame carrying payload to dst and returns the
// extended slice.
func (p *Packet) AppendFrame(dst, payload []byte) []byte {
	hl := p.HeaderLen()
	n := hl + len(payload)
	if n < MinFrameLen {
		n = MinFrameLen
	}
	off := len(dst)
	if cap(dst)-off < n {
		grown := make([]byte, off, off+n)
		copy(grown, dst)
		dst = grown
	}
	dst = dst[:off+n]
	copy(dst[off+hl:], payload)
	p.Encode(dst[off:], len(payload))
	return dst
}

// Encode builds the frame in place around a payload of payloadLen bytes that
// the caller has already put at buf[p.HeaderLen():], which lets a generator
// write payload straight into the frame. It fills in the headers and the
// Ethernet padding and returns the frame, a prefix of buf. len(buf) must be
// at least max(p.HeaderLen()+payloadLen, MinFrameLen).
func (p *Packet) Encode(buf []byte, payloadLen int) []byte {
	v4 := p.Src.Is4()
	if v4 != p.Dst.Is4() {
		panic("synth: Packet with mixed IPv4 and IPv6 addresses")
	}
	hl := p.HeaderLen()
	frameLen := hl + payloadLen
	b := buf[:max(frameLen, MinFrameLen)]
	for i := frameLen; i < len(b); i++ {
		b[i] = 0
	}
	be := binary.BigEndian

	copy(b[0:6], p.DstMAC[:])
	copy(b[6:12], p.SrcMAC[:])
	o := 12
	if p.VLAN != 0 {
		be.PutUint16(b[o:], 0x8100)
		be.PutUint16(b[o+2:], p.VLAN&0x0fff)
		o += 4
	}
	ttl := p.TTL
	if ttl == 0 {
		ttl = 64
	}
	tl := p.transportHeaderLen()
	l4Len := tl + payloadLen
	var pseudo uint64
	if v4 {
		be.PutUint16(b[o:], 0x0800)
		o += 2
		ip := b[o : o+20]
		ip[0] = 0x45
		ip[1] = 0
		be.PutUint16(ip[2:], uint16(20+l4Len))
		be.PutUint16(ip[4:], p.IPID)
		if p.DontFragment {
			be.PutUint16(ip[6:], 0x4000)
		} else {
			be.PutUint16(ip[6:], 0)
		}
		ip[8] = ttl
		ip[9] = p.Proto
		ip[10], ip[11] = 0, 0
		s, d := p.Src.As4(), p.Dst.As4()
		copy(ip[12:16], s[:])
		copy(ip[16:20], d[:])
		be.PutUint16(ip[10:], ^fold(sum(0, ip)))
		pseudo = uint64(be.Uint32(s[:])) + uint64(be.Uint32(d[:])) + uint64(p.Proto) + uint64(l4Len)
		o += 20
	} else {
		be.PutUint16(b[o:], 0x86DD)
		o += 2
		ip := b[o : o+40]
		be.PutUint32(ip[0:], 6<<28|p.FlowLabel&0xfffff)
		be.PutUint16(ip[4:], uint16(l4Len))
		ip[6] = p.Proto
		ip[7] = ttl
		s, d := p.Src.As16(), p.Dst.As16()
		copy(ip[8:24], s[:])
		copy(ip[24:40], d[:])
		pseudo = sum(0, ip[8:40]) + uint64(l4Len) + uint64(p.Proto)
		o += 40
	}

	t := b[o : o+l4Len]
	be.PutUint16(t[0:], p.SrcPort)
	be.PutUint16(t[2:], p.DstPort)
	if p.Proto == ProtoUDP {
		be.PutUint16(t[4:], uint16(l4Len))
		t[6], t[7] = 0, 0
		c := ^fold(sum(pseudo, t))
		if c == 0 {
			c = 0xffff // zero means "no checksum" in UDP
		}
		be.PutUint16(t[6:], c)
		return b
	}
	be.PutUint32(t[4:], p.Seq)
	be.PutUint32(t[8:], p.Ack)
	t[12] = byte(tl/4) << 4
	t[13] = byte(p.Flags)
	be.PutUint16(t[14:], p.Window)
	t[16], t[17], t[18], t[19] = 0, 0, 0, 0
	n := copy(t[20:tl], p.Options)
	for i := 20 + n; i < tl; i++ {
		t[i] = 0
	}
	be.PutUint16(t[16:], ^fold(sum(pseudo, t)))
	return b
}

// sum adds b to a running Internet checksum accumulator. b must start at an
// even offset of the checksummed data; an odd final byte is padded with zero.
// Big-endian 64-bit words are added with end-around carry, which folds to the
// same 16-bit one's-complement sum as adding 16-bit words.
func sum(acc uint64, b []byte) uint64 {
	var c uint64
	be := binary.BigEndian
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, be.Uint64(b[0:8]), c)
		acc, c = bits.Add64(acc, be.Uint64(b[8:16]), c)
		acc, c = bits.Add64(acc, be.Uint64(b[16:24]), c)
		acc, c = bits.Add64(acc, be.Uint64(b[24:32]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, be.Uint64(b[0:8]), c)
		b = b[8:]
	}
	var tail uint64
	switch len(b) {
	case 7:
		tail = uint64(be.Uint32(b))<<32 | uint64(be.Uint16(b[4:]))<<16 | uint64(b[6])<<8
	case 6:
		tail = uint64(be.Uint32(b))<<32 | uint64(be.Uint16(b[4:]))<<16
	case 5:
		tail = uint64(be.Uint32(b))<<32 | uint64(b[4])<<24
	case 4:
		tail = uint64(be.Uint32(b)) << 32
	case 3:
		tail = uint64(be.Uint16(b))<<48 | uint64(b[2])<<40
	case 2:
		tail = uint64(be.Uint16(b)) << 48
	case 1:
		tail = uint64(b[0]) << 56
	}
	acc, c = bits.Add64(acc, tail, c)
	acc, c = bits.Add64(acc, 0, c)
	return acc + c
}

// fold reduces a sum accumulator to 16 bits with end-around carry.
func fold(acc uint64) uint16 {
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>16 + acc&0xffff
	acc = acc>>16 + acc&0xffff
	return uint16(acc)
}
