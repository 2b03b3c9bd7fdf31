package synth

import (
	"net/netip"
	"time"
)

// FlowTruth is what one conversation put into the capture, counted packet by
// packet as it was written, in the terms of a Zeek conn.log entry.
type FlowTruth struct {
	Proto              uint8 // ProtoTCP or ProtoUDP
	OrigAddr, RespAddr netip.Addr
	OrigPort, RespPort uint16
	// Start and End are the times of the first and last packet.
	Start, End         time.Time
	OrigPkts, RespPkts uint64
	// Transport payload bytes (TCP data, UDP payload), true lengths before
	// any snaplen truncation.
	OrigBytes, RespBytes uint64
	// Sums of IP total lengths (IPv6: 40 + payload length).
	OrigIPBytes, RespIPBytes uint64
	// Sums of original frame lengths, Ethernet padding included.
	OrigFrameBytes, RespFrameBytes uint64
	// ConnState is the Zeek conn_state the flow should get.
	ConnState string
}

// Truth is the ground truth of one capture.
type Truth struct {
	// Flows are in the order the conversations were added, which for
	// WriteBench is the order of their first packets.
	Flows []FlowTruth
	// Packets and Bytes (the sum of wire lengths) cover the whole capture.
	Packets, Bytes uint64
	// Start and End are the times of the first and last packet.
	Start, End time.Time
}
