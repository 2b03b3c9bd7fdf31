package synth

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
)

// Defaults of BenchConfig.
const (
	DefaultBenchPackets = 2_000_000
	DefaultBenchHosts   = 500
	DefaultBenchIPv6    = 0.05
)

// DefaultBenchStart is the default packet time of the benchmark capture's
// start: a Monday morning.
var DefaultBenchStart = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// BenchConfig shapes the benchmark capture. Zero fields take the defaults.
type BenchConfig struct {
	Seed int64
	// Packets is the target number of packets (at least 1000); the capture
	// ends up at most one conversation's worth above it. Default 2 000 000.
	Packets int
	// Hosts is the number of internal client hosts (10.20.0.0/14 and
	// fd00:f10:20::/64). Default 500.
	Hosts int
	// IPv6 is the fraction of conversations over IPv6; default 0.05, a
	// negative value means none.
	IPv6 float64
	// Snaplen, when > 0, cuts frames to that many bytes; the truth still
	// counts full frames.
	Snaplen int
	// Start is the time of the first conversation; default DefaultBenchStart.
	Start time.Time
}

func (c BenchConfig) withDefaults() (BenchConfig, error) {
	if c.Packets == 0 {
		c.Packets = DefaultBenchPackets
	}
	if c.Hosts == 0 {
		c.Hosts = DefaultBenchHosts
	}
	switch {
	case c.IPv6 == 0:
		c.IPv6 = DefaultBenchIPv6
	case c.IPv6 < 0:
		c.IPv6 = 0
	}
	if c.Start.IsZero() {
		c.Start = DefaultBenchStart
	}
	switch {
	case c.Packets < 1000:
		return c, fmt.Errorf("synth: bench Packets %d below 1000", c.Packets)
	case c.Hosts < 2 || c.Hosts > 250_000:
		return c, fmt.Errorf("synth: bench Hosts %d outside [2, 250000]", c.Hosts)
	case c.IPv6 > 1:
		return c, fmt.Errorf("synth: bench IPv6 fraction %v above 1", c.IPv6)
	case c.Snaplen < 0:
		return c, fmt.Errorf("synth: bench Snaplen %d is negative", c.Snaplen)
	case c.Start.UnixNano() < 0:
		return c, fmt.Errorf("synth: bench Start %v before 1970", c.Start)
	}
	return c, nil
}

// WriteBench writes the benchmark capture to w and returns its truth: a
// mixed enterprise capture of about cfg.Packets packets whose frames average
// about 500 bytes, over a few minutes (Packets/3000 seconds, at least one
// minute, at most fifteen) of packet time:
//
//   - web browsing over TLS (with SNI) and plain HTTP to external and
//     intranet servers: short conversations of one or more small requests
//     and larger responses, most closed with FIN, some with RST;
//   - DNS lookups of the same names over UDP, a few unanswered;
//   - a few bulk transfers of megabytes (downloads, one backup upload);
//   - long-lived chatty TLS connections open for the whole capture;
//   - connection attempts that nobody answers (S0) or that are refused (REJ);
//   - one internal host SYN-scanning up to 1000 ports of an intranet server,
//     closed ports answering RST.
//
// Hundreds of conversations are open at any time and their packets are
// interleaved in time order. The same cfg always gives the same bytes on a
// given architecture (the plan draws from floating-point distributions, whose
// last bits may differ between CPU architectures).
func WriteBench(w PacketWriter, cfg BenchConfig) (*Truth, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	pl := newBenchPlanner(cfg)
	pl.plan()

	m := NewMixer(w, cfg.Snaplen)
	for _, it := range pl.items {
		start := cfg.Start.Add(time.Duration(it.start))
		if err := m.Advance(start); err != nil {
			return nil, err
		}
		if it.dns {
			q := &pl.dnss[it.idx]
			q.Start = start
			err = m.AddDNS(q)
		} else {
			c := &pl.tcps[it.idx]
			c.Start = start
			err = m.AddTCP(c)
		}
		if err != nil {
			return nil, err
		}
	}
	return m.Finish()
}

// WriteBenchFile writes the benchmark capture to path: pcapng when the name
// ends in ".pcapng", otherwise pcap with nanosecond timestamps.
func WriteBenchFile(path string, cfg BenchConfig) (*Truth, error) {
	if cfg.Snaplen < 0 {
		return nil, fmt.Errorf("synth: bench Snaplen %d is negative", cfg.Snaplen)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	var w interface {
		PacketWriter
		Close() error
	}
	if strings.HasSuffix(path, ".pcapng") {
		w, err = NewPcapngWriter(f, LinkTypeEthernet, cfg.Snaplen)
	} else {
		w, err = NewPcapWriter(f, LinkTypeEthernet, cfg.Snaplen, true)
	}
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	truth, err := WriteBench(w, cfg)
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	if err := errors.Join(w.Close(), f.Close()); err != nil {
		return nil, err
	}
	return truth, nil
}

// The benchmark network.

type benchHost struct {
	v4, v6   netip.Addr
	mac      [6]byte
	vlan     uint16
	ttl      uint8
	nextPort uint16
}

type benchServer struct {
	name   string
	v4, v6 netip.Addr
	mac    [6]byte
	ttl    uint8
	plain  bool // serves plain HTTP (OCSP, CRLs, captive-portal checks)
}

var (
	gatewayMAC = [6]byte{0x02, 0x00, 0x5e, 0x00, 0x01, 0x01}

	// External names, most popular first. "+" marks plain-HTTP services.
	benchExternalNames = []string{
		"www.google.com", "login.microsoftonline.com", "outlook.office365.com", "teams.microsoft.com",
		"graph.microsoft.com", "fonts.gstatic.com", "www.youtube.com", "i.ytimg.com", "slack.com",
		"+ocsp.digicert.com", "api.github.com", "github.com", "accounts.google.com", "mail.google.com",
		"docs.google.com", "www.office.com", "+ctldl.windowsupdate.com", "edge.microsoft.com",
		"settings-win.data.microsoft.com", "cdn.jsdelivr.net", "ajax.googleapis.com", "www.bing.com",
		"+connectivitycheck.gstatic.com", "www.linkedin.com", "static.licdn.com", "zoom.us",
		"registry.npmjs.org", "proxy.golang.org", "pypi.org", "files.pythonhosted.org",
		"objects.githubusercontent.com", "+ocsp.pki.goog", "s3.amazonaws.com", "www.wikipedia.org",
		"upload.wikimedia.org", "www.salesforce.com", "app.hubspot.com", "cdn.cookielaw.org",
		"connect.facebook.net", "www.dropbox.com", "api.dropboxapi.com", "+crl3.digicert.com",
		"news.ycombinator.com", "www.nytimes.com", "update.googleapis.com", "dl.google.com",
		"clients4.google.com", "+detectportal.firefox.com", "wss-primary.slack.com", "mtalk.google.com",
	}
	benchPushNames = []string{"wss-primary.slack.com", "teams.microsoft.com", "mtalk.google.com", "outlook.office365.com"}
	benchBulkNames = []string{"dl.google.com", "objects.githubusercontent.com", "files.pythonhosted.org", "s3.amazonaws.com"}

	benchIntranetNames = []string{
		"intranet.corp.example", "wiki.corp.example", "git.corp.example", "jira.corp.example",
		"files.corp.example", "backup.corp.example", "mail.corp.example", "print.corp.example",
		"hr.corp.example", "build.corp.example",
	}
	benchScanTarget = "files.corp.example"
	benchBackup     = "backup.corp.example"

	benchOpenPorts   = []uint16{22, 80, 135, 139, 443, 445, 3389}
	benchClosedPorts = []uint16{8080, 8443, 9100, 5985, 1433, 3306, 5432, 6379}
	// first octets of the external IPv4 addresses: large public allocations
	benchPublicOctets = []byte{13, 20, 23, 31, 34, 35, 40, 44, 52, 54, 64, 66, 69, 74, 78, 81, 85, 91, 93,
		104, 107, 108, 128, 130, 134, 140, 142, 143, 146, 151, 157, 162, 170, 176, 185, 188, 193, 195,
		199, 204, 208, 212, 216}
	benchPublicV6 = []uint16{0x2001, 0x2400, 0x2600, 0x2605, 0x2a00, 0x2a03, 0x2c0f}
)

type benchItem struct {
	start int64 // ns after cfg.Start
	dns   bool
	idx   int
}

type benchPlanner struct {
	cfg  BenchConfig
	r    rng
	span int64

	clients   []benchHost
	resolv4   []benchServer
	resolv6   benchServer
	ext       []benchServer
	extByName map[string][]int
	intranet  []benchServer

	used    map[tupleKey]struct{}
	tcps    []TCPConv
	dnss    []DNSQuery
	items   []benchItem
	arena   []Message
	planned int
}

func newBenchPlanner(cfg BenchConfig) *benchPlanner {
	pl := &benchPlanner{
		cfg:       cfg,
		r:         newRNG(uint64(cfg.Seed) ^ 0x6a09e667f3bcc909),
		extByName: make(map[string][]int),
	}
	// Sized from the measured mix (about 40 packets and 10 messages per
	// conversation) so the plan does not regrow its slices.
	flows := cfg.Packets/35 + 2000
	pl.used = make(map[tupleKey]struct{}, flows)
	pl.items = make([]benchItem, 0, flows)
	pl.tcps = make([]TCPConv, 0, flows*3/4)
	pl.dnss = make([]DNSQuery, 0, flows/3)
	pl.arena = make([]Message, 0, cfg.Packets/4)
	secs := clampF(float64(cfg.Packets)/3000, 60, 900)
	pl.span = int64(secs * 1e9)
	r := &pl.r

	for i := range cfg.Hosts {
		j := i + 1
		h := benchHost{
			v4:       netip.AddrFrom4([4]byte{10, byte(20 + j>>16), byte(j >> 8), byte(j)}),
			v6:       netip.AddrFrom16([16]byte{0xfd, 0x00, 0x0f, 0x10, 0x00, 0x20, 14: byte(j >> 8), 15: byte(j)}),
			mac:      [6]byte{0x02, 0x10, 0x00, byte(j >> 16), byte(j >> 8), byte(j)},
			ttl:      128,
			nextPort: uint16(49152 + r.intn(16384)),
		}
		if j > 0xffff {
			h.v6 = netip.AddrFrom16([16]byte{0xfd, 0x00, 0x0f, 0x10, 0x00, 0x20, 13: byte(j >> 16), 14: byte(j >> 8), 15: byte(j)})
		}
		if r.chance(0.3) {
			h.ttl = 64 // Linux and macOS clients
		}
		if i%8 == 7 {
			h.vlan = 20 // a lab segment reaches the sensor over a tagged trunk
		}
		pl.clients = append(pl.clients, h)
	}

	for i, last := range []byte{53, 54} {
		pl.resolv4 = append(pl.resolv4, benchServer{
			name: "resolver",
			v4:   netip.AddrFrom4([4]byte{10, 0, 0, last}),
			mac:  [6]byte{0x02, 0x20, 0, 0, 0, byte(i + 1)},
			ttl:  64,
		})
	}
	pl.resolv6 = benchServer{
		name: "resolver",
		v6:   netip.AddrFrom16([16]byte{0xfd, 0x00, 0x0f, 0x10, 15: 0x53}),
		mac:  pl.resolv4[0].mac,
		ttl:  64,
	}
	for i, name := range benchIntranetNames {
		pl.intranet = append(pl.intranet, benchServer{
			name: name,
			v4:   netip.AddrFrom4([4]byte{10, 1, 0, byte(10 + i)}),
			v6:   netip.AddrFrom16([16]byte{0xfd, 0x00, 0x0f, 0x10, 0x00, 0x01, 15: byte(10 + i)}),
			mac:  [6]byte{0x02, 0x30, 0, 0, 0, byte(10 + i)},
			ttl:  64,
		})
	}
	for _, name := range benchExternalNames {
		plain := strings.HasPrefix(name, "+")
		name = strings.TrimPrefix(name, "+")
		for range 1 + r.intn(3) {
			var v6 [16]byte
			prefix := benchPublicV6[r.intn(len(benchPublicV6))]
			v6[0], v6[1] = byte(prefix>>8), byte(prefix)
			for k := 2; k < 16; k++ {
				if k < 6 || k >= 8 {
					v6[k] = byte(r.next())
				}
			}
			pl.extByName[name] = append(pl.extByName[name], len(pl.ext))
			pl.ext = append(pl.ext, benchServer{
				name:  name,
				v4:    netip.AddrFrom4([4]byte{benchPublicOctets[r.intn(len(benchPublicOctets))], byte(r.next()), byte(r.next()), byte(1 + r.intn(254))}),
				v6:    netip.AddrFrom16(v6),
				mac:   gatewayMAC,
				ttl:   byte(44 + r.intn(76)),
				plain: plain,
			})
		}
	}
	return pl
}

// plan lays out every conversation, then sorts them by start.
func (pl *benchPlanner) plan() {
	pl.scan()
	pl.bulk()
	pl.longLived()
	for pl.planned < pl.cfg.Packets {
		switch u := pl.r.float(); {
		case u < 0.28:
			pl.dns(pl.r.between(0, pl.span))
		case u < 0.32:
			pl.failed(pl.r.between(0, pl.span))
		default:
			pl.web(pl.r.between(0, pl.span))
		}
	}
	slices.SortStableFunc(pl.items, func(a, b benchItem) int { return cmp.Compare(a.start, b.start) })
}

func (pl *benchPlanner) addTCP(start int64, c TCPConv) {
	c.Seed = pl.r.next()
	pl.planned += c.Packets()
	pl.items = append(pl.items, benchItem{start: start, idx: len(pl.tcps)})
	pl.tcps = append(pl.tcps, c)
}

func (pl *benchPlanner) addDNS(start int64, q DNSQuery) {
	q.Seed = pl.r.next()
	pl.planned += q.Packets()
	pl.items = append(pl.items, benchItem{start: start, dns: true, idx: len(pl.dnss)})
	pl.dnss = append(pl.dnss, q)
}

// client picks a client host; a few hosts are much busier than the rest.
func (pl *benchPlanner) client() *benchHost {
	u := pl.r.float()
	return &pl.clients[int(float64(len(pl.clients))*u*u)]
}

// popular picks an external server, popular names far more often.
func (pl *benchPlanner) popular() *benchServer {
	u := pl.r.float()
	name := benchExternalNames[int(float64(len(benchExternalNames))*u*u*u)]
	return pl.named(strings.TrimPrefix(name, "+"))
}

func (pl *benchPlanner) named(name string) *benchServer {
	ids := pl.extByName[name]
	return &pl.ext[ids[pl.r.intn(len(ids))]]
}

func (pl *benchPlanner) intranetNamed(name string) *benchServer {
	i := slices.Index(benchIntranetNames, name)
	return &pl.intranet[i]
}

// endpoints returns the two sides of a new conversation from h to srv:port,
// with a client port not used with that server before.
func (pl *benchPlanner) endpoints(h *benchHost, srv *benchServer, port uint16, proto uint8, v6 bool) (orig, resp Endpoint) {
	orig = Endpoint{Addr: h.v4, MAC: h.mac, TTL: h.ttl}
	resp = Endpoint{Addr: srv.v4, Port: port, MAC: srv.mac, TTL: srv.ttl}
	if v6 && srv.v6.IsValid() {
		orig.Addr, resp.Addr = h.v6, srv.v6
	}
	for {
		orig.Port = h.nextPort
		h.nextPort++
		if h.nextPort == 0 {
			h.nextPort = 49152
		}
		key := makeTupleKey(proto, netip.AddrPortFrom(orig.Addr, orig.Port), netip.AddrPortFrom(resp.Addr, resp.Port))
		if _, ok := pl.used[key]; !ok {
			pl.used[key] = struct{}{}
			return orig, resp
		}
	}
}

func (pl *benchPlanner) v6() bool { return pl.r.chance(pl.cfg.IPv6) }

func (pl *benchPlanner) msgs(ms ...Message) []Message {
	off := len(pl.arena)
	pl.arena = append(pl.arena, ms...)
	return pl.arena[off:len(pl.arena):len(pl.arena)]
}

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// dur turns seconds into a Duration no longer than 9.5 s, safely inside
// MaxGap.
func dur(sec float64) time.Duration {
	return time.Duration(clampF(sec, 1e-6, 9.5) * float64(time.Second))
}

func (pl *benchPlanner) web(start int64) {
	r := &pl.r
	h := pl.client()
	internal := r.chance(0.22)
	var srv *benchServer
	if internal {
		srv = &pl.intranet[r.intn(len(pl.intranet))]
	} else {
		srv = pl.popular()
	}
	app, port := AppTLS, uint16(443)
	if srv.plain || internal && r.chance(0.25) {
		app, port = AppHTTP, 80
	}
	orig, resp := pl.endpoints(h, srv, port, ProtoTCP, pl.v6())

	rtt := ms(clampF(r.lognormal(25, 0.7), 2, 300))
	rate := int64(clampF(r.lognormal(4e6, 0.9), 1e5, 1e8))
	if internal {
		rtt = ms(clampF(r.lognormal(0.4, 0.5), 0.1, 5))
		rate = int64(clampF(r.lognormal(3e7, 0.5), 2e6, 1.1e8))
	}
	respDelay := func() time.Duration { return rtt + dur(r.exp(0.012)) }

	off := len(pl.arena)
	if app == AppTLS {
		pl.arena = append(pl.arena,
			Message{Len: TLSClientHelloLen, Delay: dur(r.exp(0.0003))},
			Message{FromResp: true, Len: TLSServerHelloLen + int(r.between(1500, 4500)), Delay: rtt + dur(r.exp(0.002))},
		)
	}
	for i := 0; i == 0 || i < 40 && r.chance(0.84); i++ {
		think := dur(r.exp(1.2))
		if i == 0 {
			think = dur(r.exp(0.0005))
		}
		var req, rsp int
		if app == AppTLS {
			req = int(clampF(r.lognormal(420, 0.5), 60, 8000))
			rsp = int(clampF(r.lognormal(700, 1.6), 40, 8e6))
		} else {
			req = int(clampF(r.lognormal(450, 0.3), float64(httpMinRequestLen(srv.name)+40), 1900))
			rsp = int(clampF(r.lognormal(1500, 1.8), float64(HTTPMinResponseLen), 8e6))
		}
		pl.arena = append(pl.arena,
			Message{Len: req, Delay: think},
			Message{FromResp: true, Len: rsp, Delay: respDelay()},
		)
	}
	close := CloseFIN
	switch u := r.float(); {
	case u < 0.32:
		close = CloseFINResp
	case u < 0.41:
		close = CloseRSTOrig
	case u < 0.48:
		close = CloseRSTResp
	}
	pl.addTCP(start, TCPConv{
		Orig: orig, Resp: resp, VLAN: h.vlan,
		RTT: rtt, Rate: rate,
		Messages:   pl.arena[off:len(pl.arena):len(pl.arena)],
		Close:      close,
		CloseDelay: dur(r.exp(1.5)),
		App:        app,
		ServerName: srv.name,
	})
}

func (pl *benchPlanner) dns(start int64) {
	r := &pl.r
	h := pl.client()
	var target *benchServer
	if r.chance(0.2) {
		target = &pl.intranet[r.intn(len(pl.intranet))]
	} else {
		target = pl.popular()
	}
	resolver := &pl.resolv4[r.intn(len(pl.resolv4))]
	v6 := pl.v6()
	if v6 {
		resolver = &pl.resolv6
	}
	client, server := pl.endpoints(h, resolver, 53, ProtoUDP, v6)
	rtt := ms(clampF(r.lognormal(0.3, 0.4), 0.1, 3))
	if r.chance(0.3) { // cache miss
		rtt = ms(clampF(r.lognormal(25, 0.8), 2, 1000))
	}
	q := DNSQuery{
		Client: client, Server: server, VLAN: h.vlan,
		ID:     uint16(r.next()),
		Name:   target.name,
		Answer: target.v4,
		TTL:    uint32(r.between(30, 3600)),
		RTT:    rtt,
	}
	if r.chance(0.025) {
		q.Unanswered = true
		q.Retries = 1 + r.intn(2)
	}
	pl.addDNS(start, q)
}

// failed adds a connection attempt to a host that is gone (S0) or to a
// closed intranet port (REJ).
func (pl *benchPlanner) failed(start int64) {
	r := &pl.r
	h := pl.client()
	if r.chance(0.55) {
		gone := benchServer{
			v4:  netip.AddrFrom4([4]byte{benchPublicOctets[r.intn(len(benchPublicOctets))], byte(r.next()), byte(r.next()), byte(1 + r.intn(254))}),
			mac: gatewayMAC,
		}
		orig, resp := pl.endpoints(h, &gone, []uint16{443, 443, 80, 8443}[r.intn(4)], ProtoTCP, false)
		pl.addTCP(start, TCPConv{Orig: orig, Resp: resp, VLAN: h.vlan, Setup: Unanswered, SYNRetries: r.intn(4)})
		return
	}
	srv := &pl.intranet[r.intn(len(pl.intranet))]
	orig, resp := pl.endpoints(h, srv, benchClosedPorts[r.intn(len(benchClosedPorts))], ProtoTCP, pl.v6())
	pl.addTCP(start, TCPConv{Orig: orig, Resp: resp, VLAN: h.vlan, Setup: Rejected,
		RTT: ms(clampF(r.lognormal(0.4, 0.5), 0.1, 5))})
}

// scan adds one internal host probing ports 1..n of an intranet server in
// random order from one source port, as a SYN scanner does.
func (pl *benchPlanner) scan() {
	r := &pl.r
	n := min(max(pl.cfg.Packets/20, 50), 1000)
	scanner := &pl.clients[len(pl.clients)/2]
	target := pl.intranetNamed(benchScanTarget)
	ports := make([]uint16, n)
	for i := range ports {
		ports[i] = uint16(i + 1)
	}
	for i := len(ports) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		ports[i], ports[j] = ports[j], ports[i]
	}
	sport := uint16(r.between(32768, 49151))
	t := int64(float64(pl.span) * (0.2 + 0.4*r.float()))
	for _, port := range ports {
		setup := Rejected
		if slices.Contains(benchOpenPorts, port) {
			setup = HalfOpen
		}
		orig := Endpoint{Addr: scanner.v4, Port: sport, MAC: scanner.mac, TTL: scanner.ttl}
		resp := Endpoint{Addr: target.v4, Port: port, MAC: target.mac, TTL: target.ttl}
		pl.used[makeTupleKey(ProtoTCP, netip.AddrPortFrom(orig.Addr, orig.Port), netip.AddrPortFrom(resp.Addr, resp.Port))] = struct{}{}
		pl.addTCP(t, TCPConv{Orig: orig, Resp: resp, VLAN: scanner.vlan, Setup: setup,
			RTT: time.Duration(r.between(150_000, 600_000))})
		t += int64(dur(clampF(r.exp(0.003), 50e-6, 0.1)))
	}
}

// bulk adds a few transfers of megabytes: downloads from external servers
// and, when there are several, one backup upload to the intranet.
func (pl *benchPlanner) bulk() {
	r := &pl.r
	n := min(max(pl.cfg.Packets/400_000, 1), 8)
	for i := range n {
		segs := 0.05 * float64(pl.cfg.Packets) / float64(n) / 1.5
		// MB-sized, except in captures too small to hold that
		size := int(clampF(segs*DefaultMSS4*r.lognormal(1, 0.3), min(1e6, 30*float64(pl.cfg.Packets)), 2e9))
		h := pl.client()
		upload := i == 0 && n >= 2
		var srv *benchServer
		var rtt time.Duration
		var rate int64
		if upload {
			srv = pl.intranetNamed(benchBackup)
			rtt, rate = ms(0.3), int64(clampF(r.lognormal(4e7, 0.3), 1e7, 1.1e8))
		} else {
			srv = pl.named(benchBulkNames[r.intn(len(benchBulkNames))])
			rtt, rate = ms(clampF(r.lognormal(20, 0.5), 3, 150)), int64(clampF(r.lognormal(1.5e7, 0.5), 3e6, 6e7))
		}
		orig, resp := pl.endpoints(h, srv, 443, ProtoTCP, pl.v6())
		req, rsp := int(r.between(300, 700)), size
		if upload {
			req, rsp = size, int(r.between(100, 400))
		}
		start := int64(float64(pl.span) * (0.05 + 0.8*r.float()))
		pl.addTCP(start, TCPConv{
			Orig: orig, Resp: resp, VLAN: h.vlan, RTT: rtt, Rate: rate,
			Messages: pl.msgs(
				Message{Len: TLSClientHelloLen, Delay: ms(0.2)},
				Message{FromResp: true, Len: TLSServerHelloLen + 4000, Delay: rtt},
				Message{Len: req, Delay: ms(0.5)},
				Message{FromResp: true, Len: rsp, Delay: rtt + ms(5)},
			),
			CloseDelay: ms(50),
			App:        AppTLS,
			ServerName: srv.name,
		})
	}
}

// longLived adds TLS connections to push services that stay open for the
// whole capture, trading small messages every few seconds.
func (pl *benchPlanner) longLived() {
	r := &pl.r
	n := min(max(min(len(pl.clients)/25, pl.cfg.Packets/5000), 1), 40)
	for range n {
		h := pl.client()
		srv := pl.named(benchPushNames[r.intn(len(benchPushNames))])
		orig, resp := pl.endpoints(h, srv, 443, ProtoTCP, pl.v6())
		rtt := ms(clampF(r.lognormal(25, 0.5), 3, 200))
		start := r.between(0, int64(3*time.Second))
		off := len(pl.arena)
		pl.arena = append(pl.arena,
			Message{Len: TLSClientHelloLen, Delay: ms(0.2)},
			Message{FromResp: true, Len: TLSServerHelloLen + 3500, Delay: rtt},
		)
		end := pl.span - int64(2*time.Second)
		for t := start + int64(rtt); t < end; {
			d := dur(clampF(r.exp(2.5), 0.02, 9.5))
			pl.arena = append(pl.arena, Message{
				FromResp: r.chance(0.5),
				Len:      int(clampF(r.lognormal(180, 0.7), 6, 4000)),
				Delay:    d,
			})
			t += int64(d) + int64(rtt)
		}
		pl.addTCP(start, TCPConv{
			Orig: orig, Resp: resp, VLAN: h.vlan, RTT: rtt,
			Rate:       int64(clampF(r.lognormal(4e6, 0.5), 1e6, 2e7)),
			Messages:   pl.arena[off:len(pl.arena):len(pl.arena)],
			CloseDelay: ms(100),
			App:        AppTLS,
			ServerName: srv.name,
		})
	}
}
