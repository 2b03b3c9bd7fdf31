// Package live captures packets from network interfaces with AF_PACKET
// (Linux) and feeds them through the same packet path as capture files.
//
// Each interface is read through PACKET_FANOUT_HASH sockets, one per worker,
// each with its own memory-mapped TPACKET_V3 ring. The kernel hashes every
// frame by its flow, symmetrically, so both directions of a connection land
// in the same socket, and each socket feeds its own capture.Sensor: the
// packet path takes no locks. Flow records from all workers are serialised
// before they reach the caller.
//
// The kernel's hash looks at the outermost IP addresses and ports. Later IP
// fragments carry no ports and are hashed by address pair, so a flow whose
// datagrams are fragmented may be split between two workers' records; and
// the two directions of a flow inside VXLAN or GENEVE usually have
// different outer UDP source ports. For such traffic use one worker per
// interface.
//
// Capture filters are written in tcpdump syntax and compiled by running
// `tcpdump -ddd` once at start-up (see CompileFilter), so the default build
// needs no cgo and the filter means exactly what it means to tcpdump.
//
// Opening a socket needs CAP_NET_RAW; nothing else is needed afterwards, so
// a sensor should call DropPrivileges once Open has returned.
package live
