// Package flow is flowhound's vocabulary for network conversations: the
// bidirectional flow record that the sensor emits and the detectors consume,
// its stable JSON wire shape, host locality and the Community ID.
//
// A Record follows the semantics of Zeek's conn.log (originator and
// responder, per-direction payload and IP bytes, conn_state, history) so that
// analysts can read it without a glossary.
package flow

import (
	"net/netip"
	"strconv"
	"time"
)

// SchemaVersion is written into every JSON record as "v". It changes only
// when a field changes meaning or is removed; new fields do not bump it.
const SchemaVersion = 1

// Proto is an IP protocol number.
type Proto uint8

// IP protocol numbers flowhound names.
const (
	ProtoICMP   Proto = 1
	ProtoTCP    Proto = 6
	ProtoUDP    Proto = 17
	ProtoICMPv6 Proto = 58
	ProtoSCTP   Proto = 132
)

// String returns the lower-case transport name used in JSON ("tcp", "udp",
// "icmp", ...) or the decimal protocol number for others.
func (p Proto) String() string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP:
		return "icmp"
	case ProtoICMPv6:
		return "icmp6"
	case ProtoSCTP:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

// HasPorts reports whether flows of this protocol carry real port numbers.
// For ICMP the ports hold the message type and code, as in Zeek.
func (p Proto) HasPorts() bool { return p == ProtoTCP || p == ProtoUDP || p == ProtoSCTP }

// Record is one bidirectional flow as seen by the sensor. Interim records
// (Final false) are emitted for long-lived flows every active timeout; they
// carry cumulative totals since the flow began, so the last record of a flow
// always holds its complete counts.
type Record struct {
	// Start is the timestamp of the first packet, End of the last one.
	Start, End time.Time

	// UID identifies the flow and is the same on its interim and final
	// records; derived from the 5-tuple and start time, so a replay of the
	// same capture yields the same UIDs.
	UID string
	// CommunityID is the Community ID v1 flow hash (seed 0).
	CommunityID string

	// Orig is the originator: the sender of the first SYN for TCP, otherwise
	// the sender of the first packet.
	OrigAddr netip.Addr
	OrigPort uint16
	RespAddr netip.Addr
	RespPort uint16
	Proto    Proto
	// Service is a guess from the responder port and application hints
	// ("dns", "http", "tls", "ssh", "smb", ...); empty when unknown.
	Service string

	// Payload bytes per direction. For TCP they come from sequence numbers,
	// as Zeek does, so retransmissions count once and bytes missing from a
	// snaplen-truncated capture still count.
	OrigBytes, RespBytes uint64
	// MissedBytes counts TCP payload bytes skipped by sequence gaps.
	MissedBytes uint64
	// Packets, IP-layer bytes (from the IP header's length field) and frame
	// bytes (original wire length, including link layer and any tunnel
	// headers around the inner packet) per direction.
	OrigPkts, RespPkts             uint64
	OrigIPBytes, RespIPBytes       uint64
	OrigFrameBytes, RespFrameBytes uint64

	// ConnState and History are Zeek's conn_state and history.
	ConnState string
	History   string

	// LocalOrig and LocalResp say whether each side lies in the configured
	// home networks.
	LocalOrig, LocalResp bool

	// Final is false on interim records of flows that are still open.
	Final bool

	// Encap describes how the packets reached the sensor: VLAN tags, MPLS,
	// and the outermost tunnel. Nil when the packets were plain.
	Encap *Encap

	// App holds application hints seen in the flow. Nil when none.
	App *App
}

// Duration is End − Start.
func (r *Record) Duration() time.Duration { return r.End.Sub(r.Start) }

// Encap is the encapsulation a flow's packets arrived in.
type Encap struct {
	VLANs      []uint16 `json:"vlan,omitempty"`
	MPLSLabels []uint32 `json:"mpls,omitempty"`
	// Tunnel is the outermost tunnel type: "gre", "erspan", "vxlan",
	// "geneve", "ipip" (IPv4 or IPv6 directly in IPv4 or IPv6, e.g. 6in4),
	// or empty.
	Tunnel string `json:"tunnel,omitempty"`
	// OuterSrc and OuterDst are the endpoints of the outermost tunnel.
	OuterSrc netip.Addr `json:"outer_src,omitzero"`
	OuterDst netip.Addr `json:"outer_dst,omitzero"`
	// VNI is the VXLAN/GENEVE network identifier, ERSPAN session id or GRE
	// key of the outermost tunnel, when it has one.
	VNI uint32 `json:"vni,omitempty"`
}

// MaxDNSNames bounds App.DNSNames.
const MaxDNSNames = 8

// App holds application-layer hints parsed from the first packets of a flow.
type App struct {
	// DNSQuery and DNSQType are the first question of the flow; DNSRcode
	// and DNSAnswers come from the first response.
	DNSQuery   string
	DNSQType   uint16
	DNSRcode   int16 // -1 when no response was seen
	DNSAnswers []string
	// DNSQueries counts the queries in the flow (one socket may send many,
	// as DNS tunnels do) and DNSNames holds up to MaxDNSNames distinct
	// query names in order of first appearance.
	DNSQueries uint32
	DNSNames   []string
	TLSSNI     string
	HTTPHost   string
	// HTTPProxyTarget is the host[:port] of an HTTP CONNECT or absolute-URI
	// request: the real destination behind an explicit web proxy.
	HTTPProxyTarget string
	HTTPMethod      string
}
