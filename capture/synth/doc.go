// Package synth writes deterministic synthetic captures together with the
// exact ground truth of what they contain, so that the flow table, the
// detectors and the benchmarks can be checked against known answers instead
// of against another tool's opinion.
//
// The building blocks are layered so that a scenario generator can reuse
// them:
//
//   - PcapWriter and PcapngWriter (both PacketWriter) write classic pcap and
//     pcapng files.
//   - Packet builds one Ethernet/IPv4-or-IPv6/TCP-or-UDP frame with correct
//     lengths and checksums into a caller's buffer.
//   - TCPConv and DNSQuery describe whole conversations; a Mixer interleaves
//     any number of them in packet-time order into one PacketWriter and
//     records a FlowTruth for each.
//   - WriteBench uses all of the above to write the mixed enterprise capture
//     the benchmarks run on.
//   - WriteScenario writes labelled scenarios (profiles "enterprise",
//     "beacons", "exfil", "lateral", "benign", "mirror", "proxy") whose
//     ScenarioTruth lists every attack and benign trap as an Activity; the
//     evaluation harness (detect/eval) scores findings against it.
//
// Everything is deterministic: the same inputs give byte-identical output.
// Nothing here is safe for concurrent use; use one Mixer per goroutine.
package synth
