package flow

import (
	"bytes"
	"encoding/binary"
	"net/netip"
)

// Community ID v1, as specified at
// https://github.com/corelight/community-id-spec: SHA-1 over
//
//	seed (2) . addr1 (4|16) . addr2 (4|16) . proto (1) . 0 (1) [. port1 (2) . port2 (2)]
//
// all in network byte order, base64-encoded and prefixed with "1:". The
// endpoints are ordered so that both directions of a flow hash alike.

// communityIDLen is len("1:") plus the base64 of a 20-byte digest.
const communityIDLen = 2 + 28

// CommunityID returns the Community ID v1 of a flow as "1:<base64>". Suricata,
// Zeek, Arkime and Elastic compute the same value for the same flow, which is
// what makes it useful for pivoting between their data and ours.
//
// For ICMP and ICMPv6, sport carries the message type and dport the code, as
// in Record. Request and reply types (echo, timestamp, router and neighbor
// discovery, ...) map to the same ID in both directions; all other ICMP
// messages are one-way and, as the spec demands, their ID depends on
// direction. Protocols other than TCP, UDP, SCTP, ICMP and ICMPv6 are hashed
// without ports, so sport and dport are ignored for them.
//
// IPv4-mapped IPv6 addresses are hashed as IPv4. If either address is invalid
// (the zero Addr) the result is "", which the spec allows for flows it does not
// cover.
func CommunityID(seed uint16, src, dst netip.Addr, sport, dport uint16, proto Proto) string {
	var buf [communityIDLen]byte
	return string(AppendCommunityID(buf[:0], seed, src, dst, sport, dport, proto))
}

// AppendCommunityID appends the Community ID of a flow, as CommunityID
// returns it, to b and returns the extended buffer. It does not allocate
// unless b lacks capacity for the 30 bytes it appends.
func AppendCommunityID(b []byte, seed uint16, src, dst netip.Addr, sport, dport uint16, proto Proto) []byte {
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() || !dst.IsValid() {
		return b
	}

	hasPorts := true
	oneWay := false
	switch proto {
	case ProtoTCP, ProtoUDP, ProtoSCTP:
	case ProtoICMP, ProtoICMPv6:
		// Following Zeek, a message type with a counterpart hashes as
		// the port pair (type, counterpart), so a request and its reply
		// share an ID; any other type hashes as (type, code).
		counterpart := icmpCounterpart
		if proto == ProtoICMPv6 {
			counterpart = icmp6Counterpart
		}
		if c, ok := counterpart(sport); ok {
			dport = c
		} else {
			oneWay = true
		}
	default:
		hasPorts = false
		sport, dport = 0, 0
	}

	// The input, at most 2 + 16 + 16 + 2 + 4 = 40 bytes, is written
	// straight into the one SHA-1 block it pads to. One-way ICMP messages
	// have no answer to pair with, so the spec (like Zeek) leaves them in
	// the order they were sent; all else is ordered so that both
	// directions of a flow hash alike.
	var blk [64]byte
	binary.BigEndian.PutUint16(blk[0:], seed)
	var n int
	switch is4 := src.Is4(); {
	case is4 && dst.Is4():
		sv, dv := src.As4(), dst.As4()
		s, d := binary.BigEndian.Uint32(sv[:]), binary.BigEndian.Uint32(dv[:])
		if !oneWay && (s > d || (s == d && sport > dport)) {
			s, d = d, s
			sport, dport = dport, sport
		}
		binary.BigEndian.PutUint32(blk[2:], s)
		binary.BigEndian.PutUint32(blk[6:], d)
		n = 10
	case !is4 && !dst.Is4():
		sv, dv := src.As16(), dst.As16()
		sh, sl := binary.BigEndian.Uint64(sv[:]), binary.BigEndian.Uint64(sv[8:])
		dh, dl := binary.BigEndian.Uint64(dv[:]), binary.BigEndian.Uint64(dv[8:])
		if !oneWay && (sh > dh || (sh == dh && (sl > dl || (sl == dl && sport > dport)))) {
			sh, sl, dh, dl = dh, dl, sh, sl
			sport, dport = dport, sport
		}
		binary.BigEndian.PutUint64(blk[2:], sh)
		binary.BigEndian.PutUint64(blk[10:], sl)
		binary.BigEndian.PutUint64(blk[18:], dh)
		binary.BigEndian.PutUint64(blk[26:], dl)
		n = 34
	default:
		// One IPv4 and one IPv6 address: the spec orders the endpoints
		// by their bytes, the shorter first when it is a prefix.
		var sa, da [16]byte
		sl, dl := putAddr(&sa, src), putAddr(&da, dst)
		if !oneWay {
			c := bytes.Compare(sa[:sl], da[:dl])
			if c > 0 || (c == 0 && sport > dport) {
				sa, da = da, sa
				sl, dl = dl, sl
				sport, dport = dport, sport
			}
		}
		n = 2
		n += copy(blk[n:], sa[:sl])
		n += copy(blk[n:], da[:dl])
	}
	blk[n] = byte(proto)
	// blk[n+1] is the zero padding byte.
	n += 2
	if hasPorts {
		binary.BigEndian.PutUint16(blk[n:], sport)
		binary.BigEndian.PutUint16(blk[n+2:], dport)
		n += 4
	}
	blk[n] = 0x80
	blk[63] = byte(n * 8) // the bit length, at most 320, in the last two bytes
	blk[62] = byte(n * 8 >> 8)
	sum := sha1Block(&blk)

	var out [communityIDLen]byte
	out[0], out[1] = '1', ':'
	encodeDigest(&out, &sum)
	return append(b, out[:]...)
}

// encodeDigest writes the standard, padded base64 of sum to out[2:]: six
// groups of three bytes to four characters each, then the last two bytes
// to three characters and '='.
func encodeDigest(out *[communityIDLen]byte, sum *[20]byte) {
	const enc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range 6 {
		v := uint(sum[3*i])<<16 | uint(sum[3*i+1])<<8 | uint(sum[3*i+2])
		o := out[2+4*i : 6+4*i]
		o[0] = enc[v>>18&0x3f]
		o[1] = enc[v>>12&0x3f]
		o[2] = enc[v>>6&0x3f]
		o[3] = enc[v&0x3f]
	}
	v := uint(sum[18])<<16 | uint(sum[19])<<8
	out[26] = enc[v>>18&0x3f]
	out[27] = enc[v>>12&0x3f]
	out[28] = enc[v>>6&0x3f]
	out[29] = '='
}

// putAddr writes a's network-order bytes to p and returns their count.
func putAddr(p *[16]byte, a netip.Addr) int {
	if a.Is4() {
		v := a.As4()
		return copy(p[:], v[:])
	}
	*p = a.As16()
	return 16
}

// icmpCounterpart returns the ICMPv4 type that answers typ, or ok false for
// one-way types. The table is the spec's (pycommunityid icmp.py).
func icmpCounterpart(typ uint16) (uint16, bool) {
	switch typ {
	case 8: // echo request
		return 0, true
	case 0: // echo reply
		return 8, true
	case 13: // timestamp
		return 14, true
	case 14: // timestamp reply
		return 13, true
	case 15: // information request
		return 16, true
	case 16: // information reply
		return 15, true
	case 10: // router solicitation
		return 9, true
	case 9: // router advertisement
		return 10, true
	case 17: // address mask request
		return 18, true
	case 18: // address mask reply
		return 17, true
	}
	return 0, false
}

// icmp6Counterpart is icmpCounterpart for ICMPv6 (pycommunityid icmp6.py).
func icmp6Counterpart(typ uint16) (uint16, bool) {
	switch typ {
	case 128: // echo request
		return 129, true
	case 129: // echo reply
		return 128, true
	case 130: // multicast listener query
		return 131, true
	case 131: // multicast listener report
		return 130, true
	case 133: // router solicitation
		return 134, true
	case 134: // router advertisement
		return 133, true
	case 135: // neighbor solicitation
		return 136, true
	case 136: // neighbor advertisement
		return 135, true
	case 139: // node information query ("who are you" request)
		return 140, true
	case 140: // node information reply
		return 139, true
	case 144: // home agent address discovery request
		return 145, true
	case 145: // home agent address discovery reply
		return 144, true
	}
	return 0, false
}
