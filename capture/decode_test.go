package capture

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/flow"
)

func TestDecode(t *testing.T) {
	key := uint32(77)
	seq := uint32(1)
	inner := ipv4("10.1.1.1", "10.2.2.2", 6, tcp(1234, 443, 100, 0, flagSYN, nil))
	tests := []struct {
		name     string
		link     uint16
		frame    []byte
		src, dst string
		proto    uint8
		sport    uint16
		dport    uint16
		payload  int
		vlans    []uint16
		mpls     int
		tunnel   Tunnel
		outer    [2]string
		vni      uint32
		frag     bool
		fragOff  uint16
		wantErr  ErrorKind
		errSet   bool
		noIP     bool
	}{
		{name: "ethernet ipv4 tcp", link: linkEthernet, frame: ether(0x0800, ipv4("192.168.1.2", "8.8.8.8", 6, tcp(5555, 80, 1, 0, flagACK|flagPSH, fill(100)))),
			src: "192.168.1.2", dst: "8.8.8.8", proto: 6, sport: 5555, dport: 80, payload: 100},
		{name: "ethernet ipv6 udp", link: linkEthernet, frame: ether(0x86dd, ipv6("2001:db8::1", "2001:db8::2", 17, udp(5353, 53, fill(30)))),
			src: "2001:db8::1", dst: "2001:db8::2", proto: 17, sport: 5353, dport: 53, payload: 30},
		{name: "ipv6 extension headers", link: linkEthernet, frame: ether(0x86dd, ipv6("2001:db8::1", "2001:db8::2", 0, ipv6Ext(60, ipv6Ext(6, tcp(1, 22, 1, 1, flagACK, fill(7)))))),
			src: "2001:db8::1", dst: "2001:db8::2", proto: 6, sport: 1, dport: 22, payload: 7},
		{name: "802.1Q", link: linkEthernet, frame: ether(0x8100, vlan(42, 0x0800, inner)),
			src: "10.1.1.1", dst: "10.2.2.2", proto: 6, sport: 1234, dport: 443, vlans: []uint16{42}},
		{name: "QinQ", link: linkEthernet, frame: ether(0x88a8, vlan(100, 0x8100, vlan(200, 0x0800, inner))),
			src: "10.1.1.1", dst: "10.2.2.2", proto: 6, sport: 1234, dport: 443, vlans: []uint16{100, 200}},
		{name: "MPLS two labels", link: linkEthernet, frame: ether(0x8847, mplsLabel(16, false, mplsLabel(17, true, inner))),
			src: "10.1.1.1", dst: "10.2.2.2", proto: 6, sport: 1234, dport: 443, mpls: 2},
		{name: "GRE with key", link: linkEthernet, frame: ether(0x0800, ipv4("1.1.1.1", "2.2.2.2", 47, gre(0x0800, &key, nil, inner))),
			src: "10.1.1.1", dst: "10.2.2.2", proto: 6, sport: 1234, dport: 443, tunnel: TunnelGRE, outer: [2]string{"1.1.1.1", "2.2.2.2"}, vni: 77},
		{name: "GRE within GRE", link: linkEthernet, frame: ether(0x0800, ipv4("1.1.1.1", "2.2.2.2", 47, gre(0x0800, nil, nil, ipv4("3.3.3.3", "4.4.4.4", 47, gre(0x0800, nil, nil, inner))))),
			src: "10.1.1.1", dst: "10.2.2.2", proto: 6, sport: 1234, dport: 443, tunnel: TunnelGRE, outer: [2]string{"1.1.1.1", "2.2.2.2"}},
		{name: "ERSPAN type II", link: linkEthernet, frame: ether(0x0800, ipv4("1.1.1.1", "2.2.2.2", 47, gre(0x88be, nil, &seq, erspan2Hdr(5, ether(0x0800, inner))))),
			src: "10.1.1.1", dst: "10.2.2.2", proto: 6, sport: 1234, dport: 443, tunnel: TunnelERSPAN, outer: [2]string{"1.1.1.1", "2.2.2.2"}, vni: 5},
		{name: "ERSPAN type I", link: linkEthernet, frame: ether(0x0800, ipv4("1.1.1.1", "2.2.2.2", 47, gre(0x88be, nil, nil, ether(0x0800, inner)))),
			src: "10.1.1.1", dst: "10.2.2.2", proto: 6, sport: 1234, dport: 443, tunnel: TunnelERSPAN, outer: [2]string{"1.1.1.1", "2.2.2.2"}},
		{name: "ERSPAN type III", link: linkEthernet, frame: ether(0x0800, ipv4("1.1.1.1", "2.2.2.2", 47, gre(0x22eb, nil, &seq, erspan3Hdr(9, ether(0x0800, inner))))),
			src: "10.1.1.1", dst: "10.2.2.2", proto: 6, sport: 1234, dport: 443, tunnel: TunnelERSPAN, outer: [2]string{"1.1.1.1", "2.2.2.2"}, vni: 9},
		{name: "VXLAN", link: linkEthernet, frame: ether(0x0800, ipv4("1.1.1.1", "2.2.2.2", 17, udp(40000, 4789, vxlanHdr(4242, ether(0x0800, inner))))),
			src: "10.1.1.1", dst: "10.2.2.2", proto: 6, sport: 1234, dport: 443, tunnel: TunnelVXLAN, outer: [2]string{"1.1.1.1", "2.2.2.2"}, vni: 4242},
		{name: "GENEVE", link: linkEthernet, frame: ether(0x0800, ipv4("1.1.1.1", "2.2.2.2", 17, udp(40000, 6081, geneveHdr(7, 0x6558, ether(0x0800, inner))))),
			src: "10.1.1.1", dst: "10.2.2.2", proto: 6, sport: 1234, dport: 443, tunnel: TunnelGeneve, outer: [2]string{"1.1.1.1", "2.2.2.2"}, vni: 7},
		{name: "6in4", link: linkEthernet, frame: ether(0x0800, ipv4("1.1.1.1", "2.2.2.2", 41, ipv6("2001:db8::1", "2001:db8::2", 17, udp(1, 2, fill(3))))),
			src: "2001:db8::1", dst: "2001:db8::2", proto: 17, sport: 1, dport: 2, payload: 3, tunnel: TunnelIPIP, outer: [2]string{"1.1.1.1", "2.2.2.2"}},
		{name: "raw IPv4", link: linkRaw, frame: inner, src: "10.1.1.1", dst: "10.2.2.2", proto: 6, sport: 1234, dport: 443},
		{name: "raw IPv6", link: linkIPv6, frame: ipv6("::1", "::2", 58, icmpMsg(128, 0, fill(8))), src: "::1", dst: "::2", proto: 58, sport: 128, dport: 0, payload: 8},
		{name: "BSD null loopback", link: linkNull, frame: cat([]byte{2, 0, 0, 0}, inner), src: "10.1.1.1", dst: "10.2.2.2", proto: 6, sport: 1234, dport: 443},
		{name: "OpenBSD loop IPv6", link: linkLoop, frame: cat([]byte{0, 0, 0, 24}, ipv6("::1", "::2", 17, udp(7, 8, nil))), src: "::1", dst: "::2", proto: 17, sport: 7, dport: 8},
		{name: "Linux SLL", link: linkSLL, frame: cat(make([]byte, 14), u16(0x0800), inner), src: "10.1.1.1", dst: "10.2.2.2", proto: 6, sport: 1234, dport: 443},
		{name: "Linux SLL2", link: linkSLL2, frame: cat(u16(0x0800), make([]byte, 18), inner), src: "10.1.1.1", dst: "10.2.2.2", proto: 6, sport: 1234, dport: 443},
		{name: "first fragment carries ports", link: linkEthernet, frame: ether(0x0800, ipv4Frag("10.0.0.1", "10.0.0.2", 17, 99, 0, true, udp(1000, 2000, fill(100)))),
			src: "10.0.0.1", dst: "10.0.0.2", proto: 17, sport: 1000, dport: 2000, payload: 100, frag: true},
		{name: "later fragment", link: linkEthernet, frame: ether(0x0800, ipv4Frag("10.0.0.1", "10.0.0.2", 17, 99, 1480, false, fill(200))),
			src: "10.0.0.1", dst: "10.0.0.2", proto: 17, payload: 200, frag: true, fragOff: 1480},
		{name: "IPv6 later fragment", link: linkEthernet, frame: ether(0x86dd, ipv6("2001:db8::1", "2001:db8::2", 44, ipv6FragHdr(17, 1448, false, 5, fill(64)))),
			src: "2001:db8::1", dst: "2001:db8::2", proto: 17, payload: 64, frag: true, fragOff: 1448},
		{name: "ARP inside GRE is no tunnel", link: linkEthernet, frame: ether(0x0800, ipv4("1.1.1.1", "2.2.2.2", 47, gre(0x6558, nil, nil, ether(0x0806, make([]byte, 28))))),
			src: "1.1.1.1", dst: "2.2.2.2", proto: 47, payload: 4 + 14 + 28},
		{name: "first fragment of an outer packet reaches the inner TCP", link: linkEthernet,
			frame: ether(0x0800, ipv4Frag("1.1.1.1", "2.2.2.2", 47, 9, 0, true, gre(0x0800, nil, nil, ipv4("10.1.1.1", "10.2.2.2", 6, tcp(80, 5000, 1, 1, PA, fill(100)))[:60]))),
			src:   "10.1.1.1", dst: "10.2.2.2", proto: 6, sport: 80, dport: 5000, payload: 20, tunnel: TunnelGRE, outer: [2]string{"1.1.1.1", "2.2.2.2"}, frag: true},
		{name: "ARP is not IP", link: linkEthernet, frame: ether(0x0806, make([]byte, 28)), noIP: true, wantErr: ErrNonIP, errSet: true},
		{name: "truncated ethernet", link: linkEthernet, frame: macA, noIP: true, wantErr: ErrTruncated, errSet: true},
		{name: "bad IHL", link: linkEthernet, frame: ether(0x0800, cat([]byte{0x43}, make([]byte, 19))), noIP: true, wantErr: ErrBadHeaderLen, errSet: true},
		{name: "unknown link type", link: 147, frame: inner, noIP: true, wantErr: ErrUnsupported, errSet: true},
	}
	dec := NewDecoder()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := dec.Decode(tc.frame, tc.link, len(tc.frame))
			if tc.errSet {
				k, ok := IsDecodeError(err)
				if !ok || k != tc.wantErr {
					t.Fatalf("error = %v, want kind %v", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if d.HasIP == tc.noIP {
				t.Fatalf("HasIP = %v", d.HasIP)
			}
			if tc.noIP {
				return
			}
			if got := addrOf(&d.Src).String(); got != tc.src {
				t.Errorf("src = %s, want %s", got, tc.src)
			}
			if got := addrOf(&d.Dst).String(); got != tc.dst {
				t.Errorf("dst = %s, want %s", got, tc.dst)
			}
			if d.Proto != tc.proto || d.SrcPort != tc.sport || d.DstPort != tc.dport {
				t.Errorf("proto/ports = %d %d %d, want %d %d %d", d.Proto, d.SrcPort, d.DstPort, tc.proto, tc.sport, tc.dport)
			}
			if d.PayloadLen != tc.payload {
				t.Errorf("payload len = %d, want %d", d.PayloadLen, tc.payload)
			}
			if int(d.NVLAN) != len(tc.vlans) {
				t.Errorf("vlans = %d, want %v", d.NVLAN, tc.vlans)
			}
			for i, v := range tc.vlans {
				if d.VLANs[i] != v {
					t.Errorf("vlan[%d] = %d, want %d", i, d.VLANs[i], v)
				}
			}
			if int(d.NMPLS) != tc.mpls {
				t.Errorf("mpls labels = %d, want %d", d.NMPLS, tc.mpls)
			}
			if d.Tunnel != tc.tunnel {
				t.Errorf("tunnel = %v, want %v", d.Tunnel, tc.tunnel)
			}
			if tc.tunnel != TunnelNone {
				if s, dd := addrOf(&d.OuterSrc).String(), addrOf(&d.OuterDst).String(); s != tc.outer[0] || dd != tc.outer[1] {
					t.Errorf("outer = %s -> %s, want %v", s, dd, tc.outer)
				}
				if d.VNI != tc.vni {
					t.Errorf("vni = %d, want %d", d.VNI, tc.vni)
				}
			}
			if d.Frag != tc.frag || d.FragOffset != tc.fragOff {
				t.Errorf("frag = %v/%d, want %v/%d", d.Frag, d.FragOffset, tc.frag, tc.fragOff)
			}
		})
	}
}

// A frame cut by the snaplen keeps the lengths its headers claim.
func TestDecodeSnaplenTruncated(t *testing.T) {
	frame := ether(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, 1, 1, flagACK, fill(1400))))
	dec := NewDecoder()
	d, err := dec.Decode(frame[:96], linkEthernet, len(frame))
	if err != nil {
		t.Fatal(err)
	}
	if d.IPLen != 1440 || d.PayloadLen != 1400 || len(d.Payload) != 96-14-40 {
		t.Fatalf("IPLen=%d PayloadLen=%d captured=%d", d.IPLen, d.PayloadLen, len(d.Payload))
	}
	// The same cut without the wire length saying so is a bad length.
	d, err = dec.Decode(frame[:96], linkEthernet, 96)
	if k, _ := IsDecodeError(err); k != ErrBadIPLength || !d.HasIP {
		t.Fatalf("err=%v HasIP=%v", err, d.HasIP)
	}
}

func FuzzDecode(f *testing.F) {
	seq, key := uint32(1), uint32(2)
	inner := ipv4("10.1.1.1", "10.2.2.2", 6, tcp(1234, 443, 100, 0, flagSYN, nil))
	seeds := [][]byte{
		ether(0x0800, inner),
		ether(0x88a8, vlan(100, 0x8100, vlan(200, 0x0800, inner))),
		ether(0x8847, mplsLabel(16, true, inner)),
		ether(0x0800, ipv4("1.1.1.1", "2.2.2.2", 47, gre(0x88be, &key, &seq, erspan2Hdr(5, ether(0x0800, inner))))),
		ether(0x0800, ipv4("1.1.1.1", "2.2.2.2", 17, udp(1, 4789, vxlanHdr(1, ether(0x0800, inner))))),
		ether(0x8100, vlan(3, 0x86dd, ipv6("::1", "::2", 6, zeroWindow(tcp(1, 2, 3, 4, flagACK, []byte("data")))))),
		ether(0x0800, ipv4("1.1.1.1", "2.2.2.2", 17, udp(1, 6081, geneveHdr(1, 0x6558, ether(0x86dd, ipv6("::1", "::2", 0, ipv6Ext(44, ipv6FragHdr(6, 0, true, 1, tcp(1, 2, 3, 4, 5, nil))))))))),
	}
	for _, fr := range seeds {
		for _, lt := range []uint16{linkEthernet, linkRaw, linkSLL, linkSLL2, linkNull} {
			f.Add(fr, lt)
		}
	}
	dec := NewDecoder()
	slow := NewDecoder()
	slow.NoFastPath = true
	tbl := NewTable(TableConfig{MaxFlows: 64}, nil)
	// reused is decoded into frame after frame, as Run does, so that its
	// partial reset after fast-path frames is checked against fresh decodes.
	var reused Decoded
	f.Fuzz(func(t *testing.T, frame []byte, link uint16) {
		// The fast path must agree with the parser on every input, also
		// when the capture cut the frame (wire length beyond it).
		for _, wire := range []int{len(frame), len(frame) + 100} {
			d1, err1 := dec.Decode(frame, link, wire)
			c1 := *d1
			d2, err2 := slow.Decode(frame, link, wire)
			if !sameDecoded(&c1, d2) || err1 != err2 {
				t.Fatalf("fast path and parser disagree on %x (wire %d):\n fast   %+v %v\n parser %+v %v", frame, wire, c1, err1, *d2, err2)
			}
			err3 := dec.decodeInto(&reused, frame, link, wire)
			c3 := reused
			c3.fastOnly = false
			if !sameDecoded(&c3, d2) || err3 != err2 {
				t.Fatalf("decoding into a reused Decoded differs on %x (wire %d):\n reused %+v %v\n parser %+v %v", frame, wire, c3, err3, *d2, err2)
			}
		}
		checkFastPacket(t, slow, frame)
		// A stream of copies of the frame: a new flow, packets of a known
		// flow, and one after every idle timeout.
		var st stream
		for i, at := range []int64{1, 2, 3, 900} {
			st.add(at*int64(time.Second), link, frame, len(frame)+i%2*100)
		}
		st.check(t)
		d, err := dec.Decode(frame, link, len(frame))
		if k, ok := IsDecodeError(err); ok && k == ErrPanic {
			t.Fatalf("decoder panicked on %x", frame)
		}
		if d.HasIP {
			if d.PayloadLen < 0 || len(d.Payload) > len(frame) {
				t.Fatalf("impossible lengths: payload %d captured %d frame %d", d.PayloadLen, len(d.Payload), len(frame))
			}
			tbl.Add(d, 1, len(frame))
		}
		_ = netip.Addr{}
	})
}

// sameDecoded compares two decodes field by field, payloads by content.
func sameDecoded(a, b *Decoded) bool {
	x, y := *a, *b
	if !bytes.Equal(x.Payload, y.Payload) {
		return false
	}
	x.Payload, y.Payload = nil, nil
	return reflect.DeepEqual(x, y)
}

// checkFastPacket holds fastPacket to fastDecode and the parser: it takes
// exactly the frames fastDecode takes, and for those gives the key,
// direction and packet view that the parser's decode gives.
func checkFastPacket(t *testing.T, slow *Decoder, frame []byte) {
	t.Helper()
	for _, wire := range []int{len(frame), len(frame) + 100} {
		truncated := len(frame) < wire
		var k flowKey
		var pv pktView
		fromA, ok := fastPacket(frame, truncated, &k, &pv)
		fd := Decoded{truncated: truncated}
		if fastOK := fastDecode(&fd, frame); ok != fastOK {
			t.Fatalf("fastPacket takes %x (wire %d): %v, fastDecode: %v", frame, wire, ok, fastOK)
		}
		if !ok {
			continue
		}
		d, err := slow.Decode(frame, linkEthernet, wire)
		if err != nil || !d.HasIP {
			t.Fatalf("fastPacket takes %x (wire %d), the parser says %v", frame, wire, err)
		}
		wantK, wantA := makeKey(d)
		want := pktOf(d)
		got := pv
		if k != wantK || fromA != wantA || !bytes.Equal(got.Payload, want.Payload) {
			t.Fatalf("fastPacket and parser disagree on %x (wire %d): key %+v %v, parser %+v %v", frame, wire, k, fromA, wantK, wantA)
		}
		got.Payload, want.Payload = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fastPacket and parser disagree on %x (wire %d):\n fused  %+v\n parser %+v", frame, wire, got, want)
		}
	}
}

// zeroWindow sets the window of a TCP header to 0.
func zeroWindow(seg []byte) []byte {
	seg[14], seg[15] = 0, 0
	return seg
}

// stream is a sequence of captured frames, to run through sensors.
type stream struct{ pkts []pcapfile.Packet }

func (s *stream) add(ts int64, link uint16, frame []byte, wire int) {
	s.pkts = append(s.pkts, pcapfile.Packet{Data: frame, Timestamp: ts, WireLen: wire, LinkType: pcapfile.LinkType(link)})
}

// run runs the stream through a sensor in batches, as Run does: fused
// (or not), prefetching flow state from the first flow (or not). It
// returns the records as JSON lines and the counters.
func (s *stream) run(fused, prefetch bool, dedup time.Duration) ([]byte, Stats) {
	var out []byte
	cfg := Config{Table: TableConfig{Seed: 1, MaxFlows: 3, ActiveTimeout: 10 * time.Second}, Dedup: dedup}
	sn := NewSensor(cfg, func(r *flow.Record) {
		out = r.AppendJSON(out)
		out = append(out, '\n')
	})
	sn.noFused = !fused
	if prefetch {
		sn.prefetchMin = 0
	}
	b := new(readBatch)
	for i := 0; i < len(s.pkts); i += readAhead {
		n := copy(b.pkts[:], s.pkts[i:])
		sn.packets(b, n)
	}
	sn.Flush()
	return out, sn.Stats()
}

// check fails t unless the fused path gives the records and counters of
// the general path, with and without prefetching.
func (s *stream) check(t *testing.T) {
	t.Helper()
	for _, prefetch := range []bool{false, true} {
		wantOut, wantSt := s.run(false, prefetch, 0)
		gotOut, gotSt := s.run(true, prefetch, 0)
		if !bytes.Equal(gotOut, wantOut) || !reflect.DeepEqual(gotSt, wantSt) {
			t.Fatalf("fused path and general path disagree (prefetch %v):\nfused:\n%s%+v\ngeneral:\n%s%+v", prefetch, gotOut, gotSt, wantOut, wantSt)
		}
	}
}

// FuzzFusedStream runs streams of frames through the fused path and the
// general path of the sensor, which must give the same records and
// counters. The input is a sequence of frames, each after three bytes: the
// seconds since the frame before (times 4, so that idle timeouts expire)
// and the frame's length.
func FuzzFusedStream(f *testing.F) {
	cli, srv := "10.0.0.1", "192.0.2.7"
	hello := []byte{0x16, 0x03, 0x01, 0x00, 0x30, 0x01, 0x00, 0x00, 0x2c, 0x03, 0x03}
	dnsQ := []byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 1, 0, 1}
	dnsR := append([]byte{0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0}, dnsQ[12:]...)
	dnsR = append(dnsR, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1)
	conv := [][]byte{
		ether(0x0800, ipv4(cli, srv, 6, tcp(40000, 443, 100, 0, flagSYN, nil))),
		ether(0x0800, ipv4(srv, cli, 6, tcp(443, 40000, 900, 101, flagSYN|flagACK, nil))),
		ether(0x0800, ipv4(cli, srv, 6, tcp(40000, 443, 101, 901, flagACK, nil))),
		ether(0x0800, ipv4(cli, srv, 6, tcp(40000, 443, 101, 901, flagACK|flagPSH, hello))),
		ether(0x0800, ipv4(srv, cli, 6, tcp(443, 40000, 901, 112, flagACK, []byte("0123456789")))),
		ether(0x0800, ipv4(srv, cli, 6, tcp(443, 40000, 921, 112, flagACK, []byte("abc")))),
		ether(0x0800, ipv4(srv, cli, 6, tcp(443, 40000, 911, 112, flagACK, []byte("0123456789")))),
		ether(0x0800, ipv4(cli, srv, 6, zeroWindow(tcp(40000, 443, 111, 921, flagACK, nil)))),
		ether(0x8100, vlan(7, 0x0800, ipv4(cli, "198.51.100.1", 17, udp(5353, 53, dnsQ)))),
		ether(0x8100, vlan(7, 0x0800, ipv4("198.51.100.1", cli, 17, udp(53, 5353, dnsR)))),
		ether(0x8100, vlan(7, 0x0800, ipv4(cli, "198.51.100.1", 17, udp(5353, 53, dnsQ)))),
		ether(0x86dd, ipv6("2001:db8::1", "2001:db8::2", 17, udp(1000, 2000, []byte("x")))),
		ether(0x86dd, ipv6("2001:db8::2", "2001:db8::1", 6, tcp(80, 1000, 5, 0, flagRST, nil))),
		ether(0x0800, ipv4(cli, srv, 6, tcp(40000, 443, 112, 924, flagFIN|flagACK, nil))),
		ether(0x0800, ipv4(srv, cli, 6, tcp(443, 40000, 924, 113, flagFIN|flagACK, nil))),
		ether(0x0800, ipv4(cli, srv, 6, tcp(40000, 443, 5000, 0, flagSYN, nil))),
		ether(0x0800, ipv4(cli, srv, 1, icmpMsg(8, 0, nil))),
	}
	enc := func(gaps []byte, frames [][]byte) []byte {
		var b []byte
		for i, fr := range frames {
			b = append(b, gaps[i%len(gaps)])
			b = binary.BigEndian.AppendUint16(b, uint16(len(fr)))
			b = append(b, fr...)
		}
		return b
	}
	f.Add(enc([]byte{0, 1}, conv))
	f.Add(enc([]byte{0, 20, 80}, conv))
	f.Add(enc([]byte{1}, append(append(conv, conv...), conv...)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var st stream
		ts := int64(time.Second)
		for len(data) >= 3 && len(st.pkts) < 4*readAhead {
			ts += int64(data[0]) * int64(4*time.Second)
			n := min(int(binary.BigEndian.Uint16(data[1:])), len(data)-3)
			frame := data[3 : 3+n]
			// Some frames cut by the capture, by the gap's low bit.
			st.add(ts, linkEthernet, frame, len(frame)+int(data[0]&1)*40)
			data = data[3+n:]
		}
		st.check(t)
	})
}
