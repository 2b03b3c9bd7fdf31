package synth

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// naiveSum is the textbook 16-bit one's-complement sum, to check sum against.
func naiveSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func TestSumMatchesNaive(t *testing.T) {
	r := newRNG(7)
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = byte(r.next())
	}
	// all-ones data exercises the carries
	ones := bytes.Repeat([]byte{0xff}, 300)
	for n := 0; n <= 300; n++ {
		for _, b := range [][]byte{buf[:n], buf[1000 : 1000+n], ones[:n]} {
			if got, want := fold(sum(0, b)), naiveSum(b); got != want {
				t.Fatalf("len %d: sum %#04x, naive %#04x", n, got, want)
			}
		}
	}
	if got, want := fold(sum(0, buf)), naiveSum(buf); got != want {
		t.Fatalf("4096 bytes: sum %#04x, naive %#04x", got, want)
	}
}

// TestPacketMatchesGopacket builds frames with Packet and with gopacket's
// serializer (lengths and checksums computed by gopacket) and compares them
// byte for byte.
func TestPacketMatchesGopacket(t *testing.T) {
	v4a, v4b := netip.MustParseAddr("10.20.0.7"), netip.MustParseAddr("142.250.1.2")
	v6a, v6b := netip.MustParseAddr("fd00:f10:20::7"), netip.MustParseAddr("2a00:1450::200e")
	synOpts := []byte{2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2}
	payload := make([]byte, 1461)
	r := newRNG(3)
	for i := range payload {
		payload[i] = byte(r.next())
	}
	for _, tc := range []struct {
		src, dst netip.Addr
		proto    uint8
		vlan     uint16
		opts     []byte
		n        int
	}{
		{v4a, v4b, ProtoTCP, 0, nil, 0},
		{v4a, v4b, ProtoTCP, 0, synOpts, 0},
		{v4a, v4b, ProtoTCP, 20, nil, 1},
		{v4a, v4b, ProtoTCP, 0, nil, 1460},
		{v4a, v4b, ProtoTCP, 0, []byte{1, 1, 4, 2, 3, 3, 7}, 7}, // options needing padding
		{v4a, v4b, ProtoUDP, 0, nil, 5},
		{v4a, v4b, ProtoUDP, 4094, nil, 1461},
		{v6a, v6b, ProtoTCP, 0, synOpts, 0},
		{v6a, v6b, ProtoTCP, 0, nil, 1440},
		{v6a, v6b, ProtoTCP, 20, nil, 3},
		{v6a, v6b, ProtoUDP, 0, nil, 0},
		{v6a, v6b, ProtoUDP, 0, nil, 77},
	} {
		t.Run(fmt.Sprintf("%v_%d_vlan%d_opts%d_len%d", tc.src.Is4(), tc.proto, tc.vlan, len(tc.opts), tc.n), func(t *testing.T) {
			p := Packet{
				SrcMAC: [6]byte{2, 0x10, 0, 0, 0, 7}, DstMAC: gatewayMAC, VLAN: tc.vlan,
				Src: tc.src, Dst: tc.dst, TTL: 128, IPID: 0xbeef, DontFragment: tc.proto == ProtoTCP, FlowLabel: 0x12345,
				Proto: tc.proto, SrcPort: 50123, DstPort: 443,
				Seq: 0xfffffff0, Ack: 12345, Flags: FlagACK | FlagPSH, Window: 502, Options: tc.opts,
			}
			got := p.AppendFrame(nil, payload[:tc.n])
			want := gopacketFrame(t, &p, payload[:tc.n])
			if !bytes.Equal(got, want) {
				t.Fatalf("frame differs\n got %x\nwant %x", got, want)
			}
			// and in place, into a dirty buffer
			buf := bytes.Repeat([]byte{0xaa}, 2048)
			copy(buf[p.HeaderLen():], payload[:tc.n])
			if inPlace := p.Encode(buf, tc.n); !bytes.Equal(inPlace, want) {
				t.Fatalf("Encode differs\n got %x\nwant %x", inPlace, want)
			}
		})
	}
}

func gopacketFrame(t *testing.T, p *Packet, payload []byte) []byte {
	t.Helper()
	var ls []gopacket.SerializableLayer
	et := layers.EthernetTypeIPv4
	if p.Src.Is6() {
		et = layers.EthernetTypeIPv6
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(p.SrcMAC[:]), DstMAC: net.HardwareAddr(p.DstMAC[:]), EthernetType: et}
	ls = append(ls, eth)
	if p.VLAN != 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: p.VLAN, Type: et})
	}
	var netLayer gopacket.NetworkLayer
	if p.Src.Is4() {
		ip := &layers.IPv4{Version: 4, IHL: 5, Id: p.IPID, TTL: p.TTL, Protocol: layers.IPProtocol(p.Proto),
			SrcIP: p.Src.AsSlice(), DstIP: p.Dst.AsSlice()}
		if p.DontFragment {
			ip.Flags = layers.IPv4DontFragment
		}
		netLayer = ip
		ls = append(ls, ip)
	} else {
		ip := &layers.IPv6{Version: 6, FlowLabel: p.FlowLabel, NextHeader: layers.IPProtocol(p.Proto), HopLimit: p.TTL,
			SrcIP: p.Src.AsSlice(), DstIP: p.Dst.AsSlice()}
		netLayer = ip
		ls = append(ls, ip)
	}
	if p.Proto == ProtoUDP {
		u := &layers.UDP{SrcPort: layers.UDPPort(p.SrcPort), DstPort: layers.UDPPort(p.DstPort)}
		if err := u.SetNetworkLayerForChecksum(netLayer); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, u)
	} else {
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p.SrcPort), DstPort: layers.TCPPort(p.DstPort),
			Seq: p.Seq, Ack: p.Ack, Window: p.Window,
			ACK: p.Flags&FlagACK != 0, PSH: p.Flags&FlagPSH != 0, SYN: p.Flags&FlagSYN != 0}
		for o := p.Options; len(o) > 0; {
			kind := layers.TCPOptionKind(o[0])
			if kind == layers.TCPOptionKindNop {
				tcp.Options = append(tcp.Options, layers.TCPOption{OptionType: kind, OptionLength: 1})
				o = o[1:]
				continue
			}
			tcp.Options = append(tcp.Options, layers.TCPOption{OptionType: kind, OptionLength: o[1], OptionData: o[2:o[1]]})
			o = o[o[1]:]
		}
		if err := tcp.SetNetworkLayerForChecksum(netLayer); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, tcp)
	}
	ls = append(ls, gopacket.Payload(payload))
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return sb.Bytes()
}

func BenchmarkEncode(b *testing.B) {
	p := Packet{
		Src: netip.MustParseAddr("10.20.0.7"), Dst: netip.MustParseAddr("142.250.1.2"),
		Proto: ProtoTCP, SrcPort: 50123, DstPort: 443, Flags: FlagACK, Window: 502,
	}
	buf := make([]byte, 2048)
	for _, n := range []int{0, 512, 1460} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(p.HeaderLen() + n))
			for b.Loop() {
				p.Seq++
				p.Encode(buf, n)
			}
		})
	}
}
