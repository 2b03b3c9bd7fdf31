package synth

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// This file reads captures back with gopacket, independently of the code
// that wrote them, and rebuilds per-flow counts to compare with the truth.

type record struct {
	ts   time.Time
	data []byte
	wire int
}

// readPcap and readPcapng are minimal readers written from the file format
// specifications, deliberately sharing no code with the writers. The same
// checks run through gopacket's pcapgo readers in pcapgo_test.go (build tag
// pcapgo) and through tshark in bench_test.go.
func readPcap(t *testing.T, b []byte) []record {
	t.Helper()
	le := binary.LittleEndian
	if len(b) < 24 || le.Uint16(b[4:]) != 2 || le.Uint16(b[6:]) != 4 || le.Uint32(b[20:]) != uint32(layers.LinkTypeEthernet) {
		t.Fatalf("bad pcap header % x", b[:min(len(b), 24)])
	}
	var unit int64
	switch le.Uint32(b) {
	case 0xa1b2c3d4:
		unit = 1000
	case 0xa1b23c4d:
		unit = 1
	default:
		t.Fatalf("bad pcap magic %#x", le.Uint32(b))
	}
	var recs []record
	for b = b[24:]; len(b) > 0; {
		if len(b) < 16 {
			t.Fatalf("record %d: truncated header", len(recs))
		}
		ts := int64(le.Uint32(b))*1e9 + int64(le.Uint32(b[4:]))*unit
		capLen, wire := int(le.Uint32(b[8:])), int(le.Uint32(b[12:]))
		if len(b) < 16+capLen || capLen > wire {
			t.Fatalf("record %d: %d of %d bytes, %d left", len(recs), capLen, wire, len(b)-16)
		}
		recs = append(recs, record{ts: time.Unix(0, ts), data: b[16 : 16+capLen], wire: wire})
		b = b[16+capLen:]
	}
	return recs
}

func readPcapng(t *testing.T, b []byte) []record {
	t.Helper()
	le := binary.LittleEndian
	var recs []record
	sawIDB := false
	for len(b) > 0 {
		if len(b) < 12 {
			t.Fatalf("truncated block")
		}
		typ, n := le.Uint32(b), int(le.Uint32(b[4:]))
		if n%4 != 0 || n < 12 || n > len(b) || le.Uint32(b[n-4:]) != uint32(n) {
			t.Fatalf("block %#x: bad length %d", typ, n)
		}
		body := b[8 : n-4]
		switch typ {
		case 0x0A0D0D0A:
			if le.Uint32(body) != 0x1A2B3C4D {
				t.Fatalf("section header byte-order magic %#x", le.Uint32(body))
			}
		case 1:
			if le.Uint16(body) != uint16(layers.LinkTypeEthernet) {
				t.Fatalf("interface link type %d", le.Uint16(body))
			}
			// options: expect if_tsresol = 9
			opts, res := body[8:], -1
			for len(opts) >= 4 && le.Uint16(opts) != 0 {
				code, l := le.Uint16(opts), int(le.Uint16(opts[2:]))
				if code == 9 && l == 1 {
					res = int(opts[4])
				}
				opts = opts[4+pad4(l):]
			}
			if res != 9 {
				t.Fatalf("if_tsresol %d, want 9", res)
			}
			sawIDB = true
		case 6:
			if !sawIDB {
				t.Fatal("packet before interface block")
			}
			ts := int64(le.Uint32(body[4:]))<<32 | int64(le.Uint32(body[8:]))
			capLen, wire := int(le.Uint32(body[12:])), int(le.Uint32(body[16:]))
			if 20+pad4(capLen) != len(body) || capLen > wire {
				t.Fatalf("packet block: %d of %d bytes in a %d-byte body", capLen, wire, len(body))
			}
			recs = append(recs, record{ts: time.Unix(0, ts), data: body[20 : 20+capLen], wire: wire})
		default:
			t.Fatalf("unexpected block type %#x", typ)
		}
		b = b[n:]
	}
	return recs
}

// observed is what the read-back finds for one flow.
type observed struct {
	FlowTruth
	nextSeq     [2]uint32
	seqInit     [2]bool
	syn, synack bool
	fin, rst    [2]bool
	maxGap      time.Duration
	dnsNames    []string
	dnsAnswers  []netip.Addr
}

func (o *observed) connState() string {
	if o.Proto == ProtoUDP {
		if o.RespPkts > 0 {
			return "SF"
		}
		return "S0"
	}
	switch {
	case o.rst[1] && !o.synack:
		return "REJ"
	case o.rst[0]:
		return "RSTO"
	case o.rst[1]:
		return "RSTR"
	case o.fin[0] && o.fin[1]:
		return "SF"
	case o.syn && !o.synack:
		return "S0"
	}
	return "OTH"
}

// analyze decodes every frame (which must be complete unless truncated is
// set), checks checksums and TCP sequence consistency, and returns the flows
// in order of first packet.
func analyze(t *testing.T, recs []record, truncated bool) []*observed {
	t.Helper()
	var (
		eth  layers.Ethernet
		vlan layers.Dot1Q
		ip4  layers.IPv4
		ip6  layers.IPv6
		tcp  layers.TCP
		udp  layers.UDP
		dns  layers.DNS
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &vlan, &ip4, &ip6, &tcp, &udp, &dns)
	parser.IgnoreUnsupported = true
	var decoded []gopacket.LayerType
	flows := map[tupleKey]*observed{}
	var order []*observed
	var last time.Time
	for i, rec := range recs {
		if rec.ts.Before(last) {
			t.Fatalf("packet %d: time %v before %v", i, rec.ts, last)
		}
		last = rec.ts
		if !truncated && len(rec.data) != rec.wire {
			t.Fatalf("packet %d: captured %d of %d bytes", i, len(rec.data), rec.wire)
		}
		err := parser.DecodeLayers(rec.data, &decoded)
		if err != nil && !truncated {
			t.Fatalf("packet %d: %v", i, err)
		}
		var (
			src, dst   netip.Addr
			ipLen      int
			proto      uint8
			sport, dpt uint16
			payload    int
			isDNS      bool
			l2         = 14
			ipHdr      []byte
			l4         []byte
		)
		for _, lt := range decoded {
			switch lt {
			case layers.LayerTypeDot1Q:
				l2 += 4
			case layers.LayerTypeIPv4:
				src, _ = netip.AddrFromSlice(ip4.SrcIP)
				dst, _ = netip.AddrFromSlice(ip4.DstIP)
				src, dst = src.Unmap(), dst.Unmap()
				ipLen = int(ip4.Length)
				proto = uint8(ip4.Protocol)
				ipHdr = ip4.Contents
				l4 = ip4.Payload
			case layers.LayerTypeIPv6:
				src, _ = netip.AddrFromSlice(ip6.SrcIP)
				dst, _ = netip.AddrFromSlice(ip6.DstIP)
				ipLen = 40 + int(ip6.Length)
				proto = uint8(ip6.NextHeader)
				ipHdr = ip6.Contents
				l4 = ip6.Payload
			case layers.LayerTypeTCP:
				sport, dpt = uint16(tcp.SrcPort), uint16(tcp.DstPort)
				hdr := int(tcp.DataOffset) * 4
				payload = ipLen - len(ipHdr) - hdr
			case layers.LayerTypeUDP:
				sport, dpt = uint16(udp.SrcPort), uint16(udp.DstPort)
				payload = int(udp.Length) - 8
			case layers.LayerTypeDNS:
				isDNS = true
			}
		}
		if !src.IsValid() || sport == 0 {
			t.Fatalf("packet %d: no IP/transport layers (%v)", i, decoded)
		}
		if !truncated {
			checkChecksums(t, i, src, dst, proto, ipHdr, l4)
			if got := len(rec.data); got != max(l2+ipLen, MinFrameLen) {
				t.Fatalf("packet %d: frame %d bytes, IP length %d", i, got, ipLen)
			}
		}
		a, b := netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dpt)
		key := makeTupleKey(proto, a, b)
		f := flows[key]
		if f == nil {
			f = &observed{FlowTruth: FlowTruth{Proto: proto, OrigAddr: src, RespAddr: dst, OrigPort: sport, RespPort: dpt, Start: rec.ts}}
			flows[key] = f
			order = append(order, f)
		} else if gap := rec.ts.Sub(f.End); gap > f.maxGap {
			f.maxGap = gap
		}
		f.End = rec.ts
		dir := 0
		if src != f.OrigAddr || sport != f.OrigPort {
			dir = 1
		}
		counts := [2][4]*uint64{
			{&f.OrigPkts, &f.OrigBytes, &f.OrigIPBytes, &f.OrigFrameBytes},
			{&f.RespPkts, &f.RespBytes, &f.RespIPBytes, &f.RespFrameBytes},
		}[dir]
		*counts[0]++
		*counts[1] += uint64(payload)
		*counts[2] += uint64(ipLen)
		*counts[3] += uint64(rec.wire)

		if proto == ProtoTCP {
			checkSeq(t, i, f, dir, &tcp, payload)
		}
		if isDNS && !truncated {
			if len(dns.Questions) != 1 {
				t.Fatalf("packet %d: %d DNS questions", i, len(dns.Questions))
			}
			if dir == 0 {
				f.dnsNames = append(f.dnsNames, string(dns.Questions[0].Name))
			} else {
				for _, an := range dns.Answers {
					ip, _ := netip.AddrFromSlice(an.IP)
					f.dnsAnswers = append(f.dnsAnswers, ip.Unmap())
				}
			}
		}
	}
	return order
}

// checkSeq follows sequence numbers: data and FINs continue exactly where the
// sender left off, and every ACK acknowledges everything the peer has sent.
func checkSeq(t *testing.T, i int, f *observed, dir int, tcp *layers.TCP, payload int) {
	t.Helper()
	peer := 1 - dir
	switch {
	case tcp.SYN && !tcp.ACK:
		if f.seqInit[0] && f.nextSeq[0] != tcp.Seq+1 {
			t.Fatalf("packet %d: SYN retransmission with a new ISN", i)
		}
		f.syn = true
		f.nextSeq[0], f.seqInit[0] = tcp.Seq+1, true
		return
	case tcp.SYN && tcp.ACK:
		f.synack = true
		f.nextSeq[1], f.seqInit[1] = tcp.Seq+1, true
	case tcp.RST && tcp.ACK && !f.seqInit[1]:
		f.rst[dir] = true // a rejected SYN: RST-ACK with seq 0
	default:
		if !f.seqInit[dir] || tcp.Seq != f.nextSeq[dir] {
			t.Fatalf("packet %d: seq %d, want %d", i, tcp.Seq, f.nextSeq[dir])
		}
		f.nextSeq[dir] += uint32(payload)
		if tcp.FIN {
			f.fin[dir] = true
			f.nextSeq[dir]++
		}
		if tcp.RST {
			f.rst[dir] = true
		}
	}
	if tcp.ACK && tcp.Ack != f.nextSeq[peer] {
		t.Fatalf("packet %d: ack %d, want %d", i, tcp.Ack, f.nextSeq[peer])
	}
}

func checkChecksums(t *testing.T, i int, src, dst netip.Addr, proto uint8, ipHdr, l4 []byte) {
	t.Helper()
	if src.Is4() && naiveSum(ipHdr) != 0xffff {
		t.Fatalf("packet %d: bad IPv4 header checksum", i)
	}
	var pseudo []byte
	pseudo = append(pseudo, src.AsSlice()...)
	pseudo = append(pseudo, dst.AsSlice()...)
	pseudo = append(pseudo, 0, proto)
	pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(l4)))
	if len(l4)%2 == 1 {
		l4 = append(l4[:len(l4):len(l4)], 0)
	}
	s := uint32(naiveSum(pseudo)) + uint32(naiveSum(l4))
	s = s>>16 + s&0xffff
	if s != 0xffff {
		t.Fatalf("packet %d: bad transport checksum", i)
	}
}

// compareTruth checks that the read-back flows are exactly the truth's, in
// the same order, and that no conversation lingers more than MaxGap.
func compareTruth(t *testing.T, truth *Truth, obs []*observed) {
	t.Helper()
	if len(obs) != len(truth.Flows) {
		t.Fatalf("read back %d flows, truth has %d", len(obs), len(truth.Flows))
	}
	var pkts, byts uint64
	for i, o := range obs {
		want := truth.Flows[i]
		got := o.FlowTruth
		got.ConnState = o.connState()
		if !got.Start.Equal(want.Start) || !got.End.Equal(want.End) {
			t.Fatalf("flow %d: times %v..%v, truth %v..%v", i, got.Start, got.End, want.Start, want.End)
		}
		got.Start, got.End = want.Start, want.End
		if got != want {
			t.Fatalf("flow %d:\n read %+v\ntruth %+v", i, got, want)
		}
		if o.maxGap > MaxGap {
			t.Fatalf("flow %d: %v between packets", i, o.maxGap)
		}
		pkts += got.OrigPkts + got.RespPkts
		byts += got.OrigFrameBytes + got.RespFrameBytes
	}
	if pkts != truth.Packets || byts != truth.Bytes {
		t.Fatalf("read %d packets / %d bytes, truth %d / %d", pkts, byts, truth.Packets, truth.Bytes)
	}
	if len(obs) > 0 && (!obs[0].Start.Equal(truth.Start) || truth.End.Before(obs[len(obs)-1].End)) {
		t.Fatalf("capture times: truth %v..%v", truth.Start, truth.End)
	}
}
