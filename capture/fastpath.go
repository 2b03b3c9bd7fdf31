package capture

import "encoding/binary"

// fastDecode handles the frames that make up most of any network's traffic
// — Ethernet (with at most two VLAN tags), IPv4 without options or IPv6
// without extension headers, not fragmented, carrying TCP or UDP — without
// the per-layer dispatch of the DecodingLayerParser. It writes exactly what
// the layers would (a differential fuzz test holds it to that) and returns
// false, having written nothing that matters, for anything else: tunnels,
// options, fragments, odd lengths and damaged headers all take the parser.
func fastDecode(d *Decoded, data []byte) bool {
	if len(data) < 14 {
		return false
	}
	et := binary.BigEndian.Uint16(data[12:])
	off := 14
	var vlans [2]uint16
	nv := 0
	for et == 0x8100 || et == 0x88a8 {
		if nv == 2 || len(data) < off+4 {
			return false
		}
		vlans[nv] = binary.BigEndian.Uint16(data[off:]) & 0x0fff
		nv++
		et = binary.BigEndian.Uint16(data[off+2:])
		off += 4
	}
	ip := data[off:]
	var l4 []byte
	switch et {
	case 0x0800:
		if len(ip) < 20 || ip[0] != 0x45 {
			return false // not IPv4, or options present
		}
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if total < 20 || (total > len(ip) && !d.truncated) || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
			return false
		}
		proto := ip[9]
		if proto != 6 && proto != 17 {
			return false
		}
		// Whole-word stores: the flow key reads these back as words, and
		// byte stores would stall that load.
		binary.BigEndian.PutUint64(d.Src[:8], 0)
		binary.BigEndian.PutUint64(d.Src[8:], 0xffff<<32|uint64(binary.BigEndian.Uint32(ip[12:])))
		binary.BigEndian.PutUint64(d.Dst[:8], 0)
		binary.BigEndian.PutUint64(d.Dst[8:], 0xffff<<32|uint64(binary.BigEndian.Uint32(ip[16:])))
		d.Proto = proto
		d.IPLen = total
		d.PayloadLen = total - 20
		d.L3 = ip[:min(total, len(ip))]
		l4 = d.L3[20:]
	case 0x86dd:
		if len(ip) < 40 || ip[0]>>4 != 6 {
			return false
		}
		plen := int(binary.BigEndian.Uint16(ip[4:]))
		next := ip[6]
		if plen == 0 || (40+plen > len(ip) && !d.truncated) || (next != 6 && next != 17) {
			return false
		}
		d.IPv6 = true
		copy(d.Src[:], ip[8:24])
		copy(d.Dst[:], ip[24:40])
		d.Proto = next
		d.IPLen = 40 + plen
		d.PayloadLen = plen
		d.L3 = ip[:min(40+plen, len(ip))]
		l4 = d.L3[40:]
	default:
		return false
	}
	if d.Proto == 6 {
		if len(l4) < 20 {
			return false
		}
		hl := int(l4[12]>>4) * 4
		if hl < 20 || hl > d.PayloadLen {
			return false
		}
		d.SrcPort = binary.BigEndian.Uint16(l4)
		d.DstPort = binary.BigEndian.Uint16(l4[2:])
		d.Seq = binary.BigEndian.Uint32(l4[4:])
		d.Ack = binary.BigEndian.Uint32(l4[8:])
		d.TCPFlags = l4[13]
		d.Window = binary.BigEndian.Uint16(l4[14:])
		d.PayloadLen -= hl
		if len(l4) >= hl {
			d.Payload = l4[hl:]
		}
	} else {
		if len(l4) < 8 {
			return false
		}
		dp := binary.BigEndian.Uint16(l4[2:])
		if dp == 4789 || dp == 8472 || dp == 6081 {
			return false // perhaps a tunnel: the parser decides
		}
		d.SrcPort = binary.BigEndian.Uint16(l4)
		d.DstPort = dp
		d.PayloadLen = max(d.PayloadLen-8, 0)
		d.Payload = l4[8:]
	}
	d.HasIP, d.HasPorts = true, true
	d.ipDepth = 1
	d.NVLAN, d.VLANs = uint8(nv), vlans
	return true
}

// pktView is what the flow table reads of a packet once it knows the packet's
// flow: fields as in Decoded. The general path copies them out of a
// Decoded; fastPacket writes them straight from the frame.
type pktView struct {
	Payload          []byte
	IPLen            int
	PayloadLen       int
	Seq              uint32
	Window           uint16
	SrcPort, DstPort uint16
	Proto, TCPFlags  uint8
	HasPorts, Frag   bool
}

func pktOf(d *Decoded) pktView {
	return pktView{
		Payload: d.Payload, IPLen: d.IPLen, PayloadLen: d.PayloadLen,
		Seq: d.Seq, Window: d.Window, SrcPort: d.SrcPort, DstPort: d.DstPort,
		Proto: d.Proto, TCPFlags: d.TCPFlags, HasPorts: d.HasPorts, Frag: d.Frag,
	}
}

// fastPacket is fastDecode fused with the flow key, for the packets of
// flows the table already holds: it takes the frames fastDecode takes, by
// the same checks, and writes the packet's canonical key into k and what
// the table reads of it into p, instead of a Decoded that the key and the
// table would read back. It reports whether the frame was taken and, if
// so, whether side a of k sent it. truncated is as Decoded's.
func fastPacket(data []byte, truncated bool, k *flowKey, p *pktView) (fromA, ok bool) {
	if len(data) < 14 {
		return false, false
	}
	et := binary.BigEndian.Uint16(data[12:])
	off := 14
	for nv := 0; et == 0x8100 || et == 0x88a8; nv++ {
		if nv == 2 || len(data) < off+4 {
			return false, false
		}
		et = binary.BigEndian.Uint16(data[off+2:])
		off += 4
	}
	ip := data[off:]
	var l4 []byte
	var sh, sl, dh, dl uint64
	switch et {
	case 0x0800:
		if len(ip) < 20 || ip[0] != 0x45 {
			return false, false
		}
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if total < 20 || (total > len(ip) && !truncated) || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
			return false, false
		}
		p.Proto = ip[9]
		if p.Proto != 6 && p.Proto != 17 {
			return false, false
		}
		sl = 0xffff<<32 | uint64(binary.BigEndian.Uint32(ip[12:]))
		dl = 0xffff<<32 | uint64(binary.BigEndian.Uint32(ip[16:]))
		p.IPLen = total
		p.PayloadLen = total - 20
		l4 = ip[20:min(total, len(ip))]
	case 0x86dd:
		if len(ip) < 40 || ip[0]>>4 != 6 {
			return false, false
		}
		plen := int(binary.BigEndian.Uint16(ip[4:]))
		p.Proto = ip[6]
		if plen == 0 || (40+plen > len(ip) && !truncated) || (p.Proto != 6 && p.Proto != 17) {
			return false, false
		}
		sh, sl = binary.BigEndian.Uint64(ip[8:]), binary.BigEndian.Uint64(ip[16:])
		dh, dl = binary.BigEndian.Uint64(ip[24:]), binary.BigEndian.Uint64(ip[32:])
		p.IPLen = 40 + plen
		p.PayloadLen = plen
		l4 = ip[40:min(40+plen, len(ip))]
	default:
		return false, false
	}
	var sp, dp uint16
	if p.Proto == 6 {
		if len(l4) < 20 {
			return false, false
		}
		hl := int(l4[12]>>4) * 4
		if hl < 20 || hl > p.PayloadLen {
			return false, false
		}
		sp, dp = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
		p.Seq = binary.BigEndian.Uint32(l4[4:])
		p.TCPFlags = l4[13]
		p.Window = binary.BigEndian.Uint16(l4[14:])
		p.PayloadLen -= hl
		p.Payload = nil
		if len(l4) >= hl {
			p.Payload = l4[hl:]
		}
	} else {
		if len(l4) < 8 {
			return false, false
		}
		sp, dp = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
		if dp == 4789 || dp == 8472 || dp == 6081 {
			return false, false
		}
		p.Seq, p.TCPFlags, p.Window = 0, 0, 0
		p.PayloadLen = max(p.PayloadLen-8, 0)
		p.Payload = l4[8:]
	}
	p.SrcPort, p.DstPort = sp, dp
	p.HasPorts, p.Frag = true, false
	// As flowKey.set orders them.
	rest := uint64(p.Proto)
	if sh < dh || sh == dh && (sl < dl || sl == dl && sp <= dp) {
		k.ahi, k.alo, k.bhi, k.blo, k.rest = sh, sl, dh, dl, uint64(sp)<<24|uint64(dp)<<8|rest
		return true, true
	}
	k.ahi, k.alo, k.bhi, k.blo, k.rest = dh, dl, sh, sl, uint64(dp)<<24|uint64(sp)<<8|rest
	return false, true
}
