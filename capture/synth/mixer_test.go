package synth

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var (
	t0     = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	client = Endpoint{Addr: netip.MustParseAddr("10.20.0.7"), Port: 50123, MAC: [6]byte{2, 0x10, 0, 0, 0, 7}, TTL: 128}
	server = Endpoint{Addr: netip.MustParseAddr("142.250.1.2"), Port: 443, MAC: gatewayMAC, TTL: 57}
	c6     = Endpoint{Addr: netip.MustParseAddr("fd00:f10:20::7"), Port: 50124, MAC: [6]byte{2, 0x10, 0, 0, 0, 7}}
	s6     = Endpoint{Addr: netip.MustParseAddr("2a00:1450::200e"), Port: 443, MAC: gatewayMAC}
)

// mix runs add against a Mixer writing a nanosecond pcap and returns the
// truth and the file.
func mix(t *testing.T, snaplen int, add func(m *Mixer) error) (*Truth, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewPcapWriter(&buf, LinkTypeEthernet, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMixer(w, snaplen)
	if err := add(m); err != nil {
		t.Fatal(err)
	}
	truth, err := m.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return truth, buf.Bytes()
}

func msgs(lens ...int) []Message {
	var ms []Message
	for i, n := range lens {
		ms = append(ms, Message{FromResp: i%2 == 1, Len: n, Delay: time.Duration(i+1) * time.Millisecond})
	}
	return ms
}

func TestConversations(t *testing.T) {
	long := []Message{{Len: 5000, Delay: 10 * time.Second}, {FromResp: true, Len: 1, Delay: 9 * time.Second}}
	for _, tc := range []struct {
		name string
		tcp  *TCPConv
		dns  *DNSQuery
	}{
		{"syn-unanswered", &TCPConv{Orig: client, Resp: server, Setup: Unanswered}, nil},
		{"syn-retries", &TCPConv{Orig: client, Resp: server, Setup: Unanswered, SYNRetries: 3}, nil},
		{"rejected", &TCPConv{Orig: client, Resp: server, Setup: Rejected, RTT: 300 * time.Microsecond}, nil},
		{"half-open", &TCPConv{Orig: client, Resp: server, Setup: HalfOpen}, nil},
		{"no-data-fin", &TCPConv{Orig: client, Resp: server}, nil},
		{"fin", &TCPConv{Orig: client, Resp: server, Messages: msgs(300, 20000), RTT: 20 * time.Millisecond}, nil},
		{"fin-resp", &TCPConv{Orig: client, Resp: server, Messages: msgs(1, 1, 1460, 1461, 2920, 2921), Close: CloseFINResp}, nil},
		{"rst-orig", &TCPConv{Orig: client, Resp: server, Messages: msgs(700, 64000), Close: CloseRSTOrig}, nil},
		{"rst-resp", &TCPConv{Orig: client, Resp: server, Messages: msgs(700), Close: CloseRSTResp}, nil},
		{"tls", &TCPConv{Orig: client, Resp: server, Messages: msgs(TLSClientHelloLen, TLSServerHelloLen+3000, 500, 16389*2+3, 506, 16389+5),
			App: AppTLS, ServerName: "www.example.com"}, nil},
		{"http", &TCPConv{Orig: client, Resp: server, Messages: msgs(400, 100_000, 5000, HTTPMinResponseLen),
			App: AppHTTP, ServerName: "ocsp.example.net"}, nil},
		{"ipv6-vlan", &TCPConv{Orig: c6, Resp: s6, VLAN: 20, Messages: msgs(2000, 30000), App: AppTLS, ServerName: "v6.example.org",
			Close: CloseRSTResp}, nil},
		{"jumbo-slow", &TCPConv{Orig: client, Resp: server, MSS: 9000, Rate: 10_000, Messages: msgs(100, 40000)}, nil},
		{"max-gaps", &TCPConv{Orig: client, Resp: server, Messages: long, CloseDelay: MaxGap}, nil},
		{"dns", nil, &DNSQuery{Client: client, Server: Endpoint{Addr: netip.MustParseAddr("10.0.0.53"), Port: 53},
			ID: 0xabcd, Name: "www.example.com.", Answer: netip.MustParseAddr("93.184.215.14"), TTL: 300}},
		{"dns-retry-v6", nil, &DNSQuery{Client: c6, Server: Endpoint{Addr: netip.MustParseAddr("fd00:f10::53"), Port: 53},
			Name: "a.b.example", Answer: netip.MustParseAddr("10.1.0.10"), Retries: 2, VLAN: 7}},
		{"dns-unanswered", nil, &DNSQuery{Client: client, Server: Endpoint{Addr: netip.MustParseAddr("10.0.0.53"), Port: 53},
			Name: "gone.example", Unanswered: true, Retries: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var packets int
			var state string
			truth, file := mix(t, 0, func(m *Mixer) error {
				if tc.tcp != nil {
					tc.tcp.Start, tc.tcp.Seed = t0, 42
					packets, state = tc.tcp.Packets(), tc.tcp.ConnState()
					return m.AddTCP(tc.tcp)
				}
				tc.dns.Start = t0
				packets, state = tc.dns.Packets(), tc.dns.ConnState()
				return m.AddDNS(tc.dns)
			})
			obs := analyze(t, readPcap(t, file), false)
			compareTruth(t, truth, obs)
			f := truth.Flows[0]
			if got := f.OrigPkts + f.RespPkts; got != uint64(packets) {
				t.Errorf("%d packets, Packets() said %d", got, packets)
			}
			if f.ConnState != state {
				t.Errorf("conn state %s, ConnState() said %s", f.ConnState, state)
			}
			if tc.tcp != nil {
				var orig, resp uint64
				for _, m := range tc.tcp.Messages {
					if m.FromResp {
						resp += uint64(m.Len)
					} else {
						orig += uint64(m.Len)
					}
				}
				if f.OrigBytes != orig || f.RespBytes != resp {
					t.Errorf("payload %d/%d, messages %d/%d", f.OrigBytes, f.RespBytes, orig, resp)
				}
			}
			if tc.dns != nil {
				o := obs[0]
				wantName := strings.TrimSuffix(tc.dns.Name, ".")
				if len(o.dnsNames) != 1+tc.dns.Retries || o.dnsNames[0] != wantName {
					t.Errorf("queries %q, want %d × %q", o.dnsNames, 1+tc.dns.Retries, wantName)
				}
				if !tc.dns.Unanswered && (len(o.dnsAnswers) != 1 || o.dnsAnswers[0] != tc.dns.Answer) {
					t.Errorf("answers %v, want %v", o.dnsAnswers, tc.dns.Answer)
				}
			}
		})
	}
}

// TestInterleaving runs many overlapping conversations through one Mixer and
// checks the capture is in time order and each flow's truth is exact.
func TestInterleaving(t *testing.T) {
	truth, file := mix(t, 0, func(m *Mixer) error {
		for i := range 300 {
			start := t0.Add(time.Duration(i) * 7 * time.Millisecond)
			if err := m.Advance(start); err != nil {
				return err
			}
			c := TCPConv{Orig: client, Resp: server, Start: start, Seed: uint64(i),
				Messages: msgs(200+i, 1000*(i%37)+1, 300), Close: Close(i % 4), RTT: time.Duration(i%50+1) * time.Millisecond}
			c.Orig.Port = uint16(40000 + i)
			if err := m.AddTCP(&c); err != nil {
				return err
			}
			if m.Active() == 0 {
				return errors.New("no open conversation right after AddTCP")
			}
		}
		return nil
	})
	compareTruth(t, truth, analyze(t, readPcap(t, file), false))
}

func TestMixerRefuses(t *testing.T) {
	var w bytes.Buffer
	pw, _ := NewPcapWriter(&w, LinkTypeEthernet, 0, true)
	m := NewMixer(pw, 0)
	first := &TCPConv{Orig: client, Resp: server, Start: t0.Add(time.Second), Messages: msgs(10, 10)}
	if err := m.AddTCP(first); err != nil {
		t.Fatal(err)
	}
	if err := m.Advance(t0.Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	reversed := &TCPConv{Orig: server, Resp: client, Start: t0.Add(3 * time.Second)}
	if err := m.AddTCP(reversed); !errors.Is(err, ErrTupleReused) {
		t.Errorf("reversed 5-tuple: %v", err)
	}
	if !m.InUse(ProtoTCP, netip.AddrPortFrom(server.Addr, server.Port), netip.AddrPortFrom(client.Addr, client.Port)) {
		t.Error("InUse does not know the first conversation")
	}
	if m.InUse(ProtoUDP, netip.AddrPortFrom(server.Addr, server.Port), netip.AddrPortFrom(client.Addr, client.Port)) {
		t.Error("InUse confuses protocols")
	}
	late := *first
	late.Orig.Port++
	if err := m.AddTCP(&late); !errors.Is(err, ErrOutOfOrder) {
		t.Errorf("start before written packets: %v", err)
	}

	ok := func() TCPConv {
		return TCPConv{Orig: client, Resp: server, Start: t0.Add(time.Hour), Messages: msgs(600, 600)}
	}
	for _, tc := range []struct {
		want   string
		change func(c *TCPConv)
	}{
		{"missing address", func(c *TCPConv) { c.Resp.Addr = netip.Addr{} }},
		{"mixed IPv4 and IPv6", func(c *TCPConv) { c.Resp = s6 }},
		{"IPv4-mapped", func(c *TCPConv) {
			c.Orig.Addr, c.Resp.Addr = netip.MustParseAddr("::ffff:10.0.0.1"), netip.MustParseAddr("::ffff:10.0.0.2")
		}},
		{"VLAN 4095", func(c *TCPConv) { c.VLAN = 4095 }},
		{"before 1970", func(c *TCPConv) { c.Start = time.Time{} }},
		{"RTT", func(c *TCPConv) { c.RTT = 4 * time.Second }},
		{"rate", func(c *TCPConv) { c.Rate = 100 }},
		{"MSS", func(c *TCPConv) { c.MSS = 9001 }},
		{"SYNRetries", func(c *TCPConv) { c.Setup, c.SYNRetries = Unanswered, 4 }},
		{"close delay", func(c *TCPConv) { c.CloseDelay = MaxGap + 1 }},
		{"delay", func(c *TCPConv) { c.Messages[1].Delay = MaxGap + 1 }},
		{"length 0", func(c *TCPConv) { c.Messages[0].Len = 0 }},
		{"must start with the originator", func(c *TCPConv) { c.App, c.Messages[0].FromResp = AppTLS, true }},
		{"cannot be laid out", func(c *TCPConv) { c.App, c.Messages[0].Len = AppTLS, TLSClientHelloLen-1 }},
		{"cannot be laid out", func(c *TCPConv) { c.App, c.Messages[0].Len = AppTLS, TLSClientHelloLen+3 }},
		{"needs a ServerName", func(c *TCPConv) { c.App = AppHTTP }},
		{"HTTP request", func(c *TCPConv) { c.App, c.ServerName, c.Messages[0].Len = AppHTTP, "example.com", 30 }},
		{"HTTP response", func(c *TCPConv) { c.App, c.ServerName, c.Messages[1].Len = AppHTTP, "example.com", 100 }},
		{"unknown app", func(c *TCPConv) { c.App = 9 }},
	} {
		c := ok()
		c.Messages = msgs(600, 600)
		tc.change(&c)
		err := m.AddTCP(&c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v", tc.want, err)
		}
	}
	q := DNSQuery{Client: client, Server: server, Start: t0.Add(time.Hour), Name: "bad..name", Answer: server.Addr}
	if err := m.AddDNS(&q); err == nil || !strings.Contains(err.Error(), "invalid DNS name") {
		t.Errorf("bad DNS name: %v", err)
	}
	q.Name, q.Answer = "ok.example", s6.Addr
	if err := m.AddDNS(&q); err == nil || !strings.Contains(err.Error(), "not an IPv4") {
		t.Errorf("IPv6 answer: %v", err)
	}
	if _, err := m.Finish(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Finish(); err == nil {
		t.Error("second Finish succeeded")
	}
	if err := m.AddTCP(&TCPConv{Orig: client, Resp: server, Start: t0.Add(2 * time.Hour)}); err == nil {
		t.Error("AddTCP after Finish succeeded")
	}
}

// TestNoAllocationPerPacket: a Mixer's allocations depend on the number of
// conversations, not on their packets.
func TestNoAllocationPerPacket(t *testing.T) {
	run := func(size int) float64 {
		return testing.AllocsPerRun(3, func() {
			w, _ := NewPcapWriter(io.Discard, LinkTypeEthernet, 0, true)
			m := NewMixer(w, 0)
			for i := range 4 {
				c := TCPConv{Orig: client, Resp: server, Start: t0.Add(time.Duration(i) * time.Second),
					Messages: msgs(TLSClientHelloLen, TLSServerHelloLen+100, 300, size), App: AppTLS, ServerName: "x.example"}
				c.Orig.Port += uint16(i)
				if err := m.AddTCP(&c); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := m.Finish(); err != nil {
				t.Fatal(err)
			}
		})
	}
	small, big := run(1000), run(5_000_000) // ~10 vs ~5000 packets each
	if big > small {
		t.Errorf("%v allocations with large transfers, %v with small ones", big, small)
	}
}

func TestHTTPLayout(t *testing.T) {
	host := "files.corp.example"
	r := newRNG(1)
	for n := httpMinRequestLen(host); n < 2300; n++ {
		b, body := appendHTTPRequest(nil, n, host, &r)
		if len(b)+body != n {
			t.Fatalf("request of %d bytes: header %d + body %d", n, len(b), body)
		}
		req, err := http.ReadRequest(bufio.NewReader(io.MultiReader(bytes.NewReader(b), bytes.NewReader(make([]byte, body)))))
		if err != nil {
			t.Fatalf("request of %d bytes: %v\n%s", n, err, b)
		}
		if req.Host != host || req.ContentLength != int64(body) {
			t.Fatalf("request of %d bytes: host %q, content length %d, want %d", n, req.Host, req.ContentLength, body)
		}
	}
	for n := HTTPMinResponseLen; n < 200_000; n = n*11/10 + 1 {
		b, body := appendHTTPResponse(nil, n)
		if len(b)+body != n {
			t.Fatalf("response of %d bytes: header %d + body %d", n, len(b), body)
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
		if err != nil || resp.StatusCode != 200 || resp.ContentLength != int64(body) {
			t.Fatalf("response of %d bytes: %v, %+v", n, err, resp)
		}
	}
}

func TestTLSRecordLayout(t *testing.T) {
	pool := newPayloadPool()
	for _, n := range []int{6, 7, 100, 16388, 16389, 16390, 16394, 16395, 16396, 2*16389 + 5, 2*16389 + 6, 1 << 20} {
		whole := make([]byte, n)
		fillTLSRecords(whole, 0, n, pool, 99)
		// piecewise in odd chunks must give the same bytes
		pieces := make([]byte, n)
		for off := 0; off < n; off += 1447 {
			fillTLSRecords(pieces[off:min(off+1447, n)], off, n, pool, 99)
		}
		if !bytes.Equal(whole, pieces) {
			t.Fatalf("%d bytes: piecewise fill differs", n)
		}
		for off := 0; off < n; {
			if n-off < 5 || whole[off] != 23 || whole[off+1] != 3 || whole[off+2] != 3 {
				t.Fatalf("%d bytes: no record header at %d", n, off)
			}
			l := int(whole[off+3])<<8 | int(whole[off+4])
			if l == 0 || l > 1<<14+256 {
				t.Fatalf("%d bytes: record length %d at %d", n, l, off)
			}
			off += 5 + l
			if off > n {
				t.Fatalf("%d bytes: record at %d runs past the end", n, off)
			}
		}
	}
	r := newRNG(5)
	for _, name := range []string{"", "a.example", strings.Repeat("x", 63) + "." + strings.Repeat("y", 63) + "." + strings.Repeat("z", 125)} {
		if ch := appendClientHello(nil, &r, name); len(ch) != TLSClientHelloLen || !bytes.Contains(ch, []byte(name)) {
			t.Errorf("ClientHello for %q: %d bytes", name, len(ch))
		}
	}
	if sh := appendServerHello(nil, &r); len(sh) != TLSServerHelloLen {
		t.Errorf("ServerHello: %d bytes", len(sh))
	}
}

func TestDNSLengths(t *testing.T) {
	for _, name := range []string{"a", "www.example.com", "www.example.com.", strings.Repeat("a.", 126) + "b"} {
		if err := validDNSName(name); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if q := appendDNSQuery(nil, 1, name); len(q) != dnsQueryLen(name) {
			t.Errorf("%q: query %d bytes, dnsQueryLen %d", name, len(q), dnsQueryLen(name))
		}
		if r := appendDNSResponse(nil, 1, name, 60, [4]byte{1, 2, 3, 4}); len(r) != dnsResponseLen(name) {
			t.Errorf("%q: response %d bytes, dnsResponseLen %d", name, len(r), dnsResponseLen(name))
		}
	}
	for _, name := range []string{"", ".", "a..b", strings.Repeat("a", 64), strings.Repeat("a.", 127) + "bc"} {
		if validDNSName(name) == nil {
			t.Errorf("%q accepted", fmt.Sprintf("%.20s", name))
		}
	}
}
