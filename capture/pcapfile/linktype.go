package pcapfile

import "strconv"

// LinkType is a pcap LINKTYPE_* value: what the first byte of Packet.Data
// is.
type LinkType uint16

// Link types flowhound decodes. Others are passed through unchanged.
const (
	LinkTypeNull      LinkType = 0   // BSD loopback, 4-byte host-order AF family
	LinkTypeEthernet  LinkType = 1   // Ethernet II / 802.3
	LinkTypeRaw       LinkType = 101 // raw IPv4 or IPv6
	LinkTypeLoop      LinkType = 108 // OpenBSD loopback, network-order AF family
	LinkTypeLinuxSLL  LinkType = 113 // Linux "cooked" capture v1
	LinkTypeIPv4      LinkType = 228 // raw IPv4
	LinkTypeIPv6      LinkType = 229 // raw IPv6
	LinkTypeLinuxSLL2 LinkType = 276 // Linux "cooked" capture v2
)

// String returns a short lower-case name, or "linktype(N)" for types
// without a constant here.
func (t LinkType) String() string {
	switch t {
	case LinkTypeNull:
		return "null"
	case LinkTypeEthernet:
		return "ethernet"
	case LinkTypeRaw:
		return "raw"
	case LinkTypeLoop:
		return "loop"
	case LinkTypeLinuxSLL:
		return "linux_sll"
	case LinkTypeIPv4:
		return "ipv4"
	case LinkTypeIPv6:
		return "ipv6"
	case LinkTypeLinuxSLL2:
		return "linux_sll2"
	}
	return "linktype(" + strconv.Itoa(int(t)) + ")"
}
