package flow

import (
	"bytes"
	"encoding/base64"
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

	var sa, da [16]byte
	sl, dl := putAddr(&sa, src), putAddr(&da, dst)

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

	// One-way ICMP messages have no answer to pair with, so the spec (like
	// Zeek) leaves them in the order they were sent.
	if !oneWay {
		c := bytes.Compare(sa[:sl], da[:dl])
		if c > 0 || (c == 0 && sport > dport) {
			sa, da = da, sa
			sl, dl = dl, sl
			sport, dport = dport, sport
		}
	}

	// At most 2 + 16 + 16 + 2 + 4 = 40 bytes; kept on the stack.
	var in [40]byte
	binary.BigEndian.PutUint16(in[0:], seed)
	n := 2
	n += copy(in[n:], sa[:sl])
	n += copy(in[n:], da[:dl])
	in[n] = byte(proto)
	in[n+1] = 0
	n += 2
	if hasPorts {
		binary.BigEndian.PutUint16(in[n:], sport)
		binary.BigEndian.PutUint16(in[n+2:], dport)
		n += 4
	}
	sum := sha1Short(in[:n])

	b = append(b, '1', ':')
	return base64.StdEncoding.AppendEncode(b, sum[:])
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
