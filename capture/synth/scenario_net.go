package synth

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// The scenario network: workstations in 10.10.0.0/16, servers in
// 10.1.0.0/24, and external sites whose addresses come from documentation
// and benchmarking ranges (they are never contacted, only written down).
var (
	scWorkstationNet4 = netip.MustParsePrefix("10.10.0.0/16")
	scWorkstationNet6 = netip.MustParsePrefix("fd00:10:10::/48")
	// scExternalPools are the IPv4 ranges external sites get addresses
	// from, with their weights: TEST-NET-1..3 and 198.18.0.0/15.
	scExternalPools = []struct {
		p netip.Prefix
		w float64
	}{
		{netip.MustParsePrefix("192.0.2.0/24"), 0.1},
		{netip.MustParsePrefix("198.51.100.0/24"), 0.1},
		{netip.MustParsePrefix("203.0.113.0/24"), 0.1},
		{netip.MustParsePrefix("198.18.0.0/15"), 0.7},
	}
)

// Well-known ports of the scenarios.
const (
	portProxy   = 3128
	portMonitor = 10051 // a Zabbix-style active agent
	portBackup  = 9103  // a Bacula-style storage daemon
)

// scMonitorPeriod is how often every host's monitoring agent reports.
const scMonitorPeriod = 5 * time.Minute

type scHost struct {
	name     string
	v4, v6   netip.Addr
	mac      [6]byte
	ttl      uint8
	linux    bool
	nextPort uint16
	site     *scSite // the host's own DNS entry
	cache    map[string]scCached
}

type scCached struct {
	v4, v6 netip.Addr
	// ready is when the answer arrived, exp when it expires.
	ready, exp int64
}

// scSite is a DNS name and the addresses it resolves to.
type scSite struct {
	name   string
	v4, v6 []netip.Addr
	host   *scHost // for internal names
	plain  bool    // serves plain HTTP on port 80
	ttl    uint32  // DNS TTL in seconds
	rtt    float64 // median round trip in ms
	hops   uint8   // IP TTL of its packets at the sensor
}

func (s *scSite) internal() bool { return s.host != nil }

type scNet struct {
	ws, servers                                  []*scHost
	dc, files, backup, jump, mon, scanner, proxy *scHost
	apps, lnx                                    []*scHost
	dc6                                          netip.Addr

	popular, cdn, downloads, push []*scSite
	updates                       *scSite
	ntp                           []*scSite
	cdnIPs                        []netip.Addr
	usedIPs                       map[netip.Addr]bool
}

// External names. "+" marks plain-HTTP sites, "6" sites with IPv6.
var (
	scPopularNames = []string{
		"6www.google.com", "6outlook.office365.com", "6teams.microsoft.com", "login.microsoftonline.com",
		"6www.youtube.com", "github.com", "6www.linkedin.com", "slack.com", "6www.bing.com", "6docs.google.com",
		"6mail.google.com", "6www.wikipedia.org", "news.ycombinator.com", "stackoverflow.com", "www.nytimes.com",
		"6www.bbc.co.uk", "zoom.us", "app.hubspot.com", "www.salesforce.com", "www.dropbox.com",
		"+ocsp.digicert.com", "+ctldl.windowsupdate.com", "+connectivitycheck.gstatic.com", "+ocsp.pki.goog",
		"6www.reddit.com", "www.amazon.com", "confluence.atlassian.com", "6www.office.com", "api.github.com",
		"registry.npmjs.org",
	}
	// scCDNNames share the CDN addresses: only the server name tells them
	// apart, which is what a C2 behind the same CDN hides in.
	scCDNNames      = []string{"cdn.jsdelivr.net", "static.licdn.com", "assets.msn.com", "fonts.gstatic.com", "i.ytimg.com", "cdn.cookielaw.org", "js.hs-scripts.com"}
	scDownloadNames = []string{"6dl.google.com", "download.visualstudio.microsoft.com", "objects.githubusercontent.com"}
	scPushNames     = []string{"wss-primary.slack.com", "6mtalk.google.com"}
	scUpdateName    = "6fe3cr.delivery.mp.microsoft.com"

	scC2Sub = []string{"api", "cdn", "update", "static", "telemetry", "sync", "img", "content", "edge", "news", "login", "status"}
	scC2Mid = []string{"cloud-metrics", "secure-cdn", "global-sync", "data-collector", "fast-analytics", "web-services",
		"app-insights", "msg-relay", "content-delivery", "update-service", "pixel-track", "node-health"}
	scC2TLD    = []string{"example.com", "example.net", "example.org"}
	scExfilTop = []string{"upload.sendbox-files", "dav.vault-storage", "put.bucket-mirror", "in.share-drop"}
)

const scDomain = "corp.example"

// scPlanner lays out a scenario: first intents (what happens when, in any
// order), then, in time order, the conversations they turn into, so that
// each host's DNS cache sees its lookups in order.
type scPlanner struct {
	cfg  scSetup
	r    rng
	span int64
	net  scNet

	proxy, v6 bool

	intents []scIntent
	items   []scItem
	tcps    []TCPConv
	dnss    []DNSQuery
	xs      []*xconv
	arena   []Message
	acts    []scAct
	benign  map[scActKey]int32
	used    map[tupleKey]struct{}
	roles   []*scHost
	c2Names map[string]bool
	err     error
}

type scIntent struct {
	t  int64
	n  int
	fn func(t int64)
}

const (
	itemTCP uint8 = iota
	itemDNS
	itemX
)

type scItem struct {
	start int64
	kind  uint8
	idx   int
	act   int32
}

type scAct struct {
	Activity
	beatsFromFlows bool
	beats          *[]int64
	twins          []int32
}

type scActKey struct {
	kind string
	src  netip.Addr
}

func newScPlanner(s scSetup) *scPlanner {
	pl := &scPlanner{
		cfg:     s,
		r:       newRNG(uint64(s.Seed) ^ 0xbb67ae8584caa73b),
		span:    int64(s.Duration),
		proxy:   s.variants["proxy"],
		v6:      s.variants["ipv6"],
		benign:  map[scActKey]int32{},
		used:    map[tupleKey]struct{}{},
		c2Names: map[string]bool{},
	}
	pl.buildNet()
	return pl
}

func (pl *scPlanner) fail(format string, args ...any) {
	if pl.err == nil {
		pl.err = fmt.Errorf("synth: scenario: "+format, args...)
	}
}

func (pl *scPlanner) buildNet() {
	r := &pl.r
	n := &pl.net
	n.usedIPs = map[netip.Addr]bool{}
	server := func(name string, last byte, linux bool) *scHost {
		h := &scHost{
			name:     name + "." + scDomain,
			v4:       netip.AddrFrom4([4]byte{10, 1, 0, last}),
			mac:      [6]byte{0x02, 0x01, 0, 0, 0, last},
			ttl:      128,
			linux:    linux,
			nextPort: uint16(49152 + r.intn(16384)),
		}
		if linux {
			h.ttl = 64
		}
		n.servers = append(n.servers, h)
		return h
	}
	n.proxy = server("proxy", 8, true)
	n.dc = server("dc01", 10, false)
	n.files = server("files01", 20, false)
	for i := range 4 {
		n.apps = append(n.apps, server(fmt.Sprintf("app%02d", i+1), byte(21+i), false))
	}
	n.backup = server("backup01", 30, true)
	n.jump = server("jump01", 40, false)
	n.mon = server("mon01", 50, true)
	n.scanner = server("vscan01", 60, true)
	for i := range 6 {
		n.lnx = append(n.lnx, server(fmt.Sprintf("lnx%02d", i+1), byte(70+i), true))
	}
	n.dc6 = netip.MustParseAddr("fd00:10:1::10")

	for i := range pl.cfg.Hosts {
		j := i + 1
		h := &scHost{
			name:     fmt.Sprintf("ws%04d.%s", j, scDomain),
			v4:       netip.AddrFrom4([4]byte{10, 10, byte(1 + j/250), byte(1 + j%250)}),
			mac:      [6]byte{0x02, 0x10, 0, 0, byte(j >> 8), byte(j)},
			ttl:      128,
			nextPort: uint16(49152 + r.intn(16384)),
		}
		if r.chance(0.15) {
			h.linux, h.ttl = true, 64
		}
		if pl.v6 && i%3 == 1 {
			h.v6 = netip.AddrFrom16([16]byte{0xfd, 0x00, 0x00, 0x10, 0x00, 0x10, 14: byte(j >> 8), 15: byte(j)})
		}
		n.ws = append(n.ws, h)
	}
	for _, h := range append(slices.Clone(n.servers), n.ws...) {
		h.site = &scSite{name: h.name, v4: []netip.Addr{h.v4}, host: h, ttl: 1200, rtt: 0.3}
		h.cache = map[string]scCached{}
	}

	site := func(spec string, nv4 int) *scSite {
		s := &scSite{ttl: uint32(r.between(60, 3600)), rtt: clampF(r.lognormal(25, 0.6), 3, 180), hops: byte(44 + r.intn(76))}
		for {
			switch spec[0] {
			case '+':
				s.plain = true
			case '6':
				if pl.v6 {
					s.v6 = append(s.v6, pl.extIP6())
				}
			default:
				s.name = spec
				for range nv4 {
					s.v4 = append(s.v4, pl.extIP())
				}
				return s
			}
			spec = spec[1:]
		}
	}
	for _, name := range scPopularNames {
		n.popular = append(n.popular, site(name, 1+r.intn(2)))
	}
	for range 2 {
		n.cdnIPs = append(n.cdnIPs, pl.extIP())
	}
	for _, name := range scCDNNames {
		s := site(name, 0)
		s.v4 = n.cdnIPs
		s.rtt, s.hops = 8, 58
		n.cdn = append(n.cdn, s)
	}
	for _, name := range scDownloadNames {
		n.downloads = append(n.downloads, site(name, 1))
	}
	for _, name := range scPushNames {
		n.push = append(n.push, site(name, 1))
	}
	n.updates = site(scUpdateName, 2)
	n.updates.ttl = 300
	for i := range 4 {
		s := site(fmt.Sprintf("%d.pool.ntp.org", i), 1)
		s.ttl = 150
		n.ntp = append(n.ntp, s)
	}
}

// extIP returns an unused external IPv4 address.
func (pl *scPlanner) extIP() netip.Addr {
	for {
		u := pl.r.float()
		pool := scExternalPools[len(scExternalPools)-1].p
		for _, p := range scExternalPools {
			if u < p.w {
				pool = p.p
				break
			}
			u -= p.w
		}
		a := pool.Addr().As4()
		size := uint32(1) << (32 - pool.Bits())
		v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
		v += uint32(pl.r.intn(int(size)))
		ip := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		if last := byte(v); last == 0 || last == 255 || pl.net.usedIPs[ip] {
			continue
		}
		pl.net.usedIPs[ip] = true
		return ip
	}
}

// extIP6 returns an external IPv6 address in 2001:db8::/32.
func (pl *scPlanner) extIP6() netip.Addr {
	var b [16]byte
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	for k := 4; k < 8; k++ {
		b[k] = byte(pl.r.next())
	}
	b[15] = byte(1 + pl.r.intn(254))
	return netip.AddrFrom16(b)
}

// newSite adds an external name with one fresh address (and an IPv6 one
// when v6).
func (pl *scPlanner) newSite(name string, v6 bool) *scSite {
	s := &scSite{name: name, v4: []netip.Addr{pl.extIP()}, ttl: 300,
		rtt: clampF(pl.r.lognormal(60, 0.5), 10, 250), hops: byte(40 + pl.r.intn(60))}
	if v6 && pl.v6 {
		s.v6 = []netip.Addr{pl.extIP6()}
	}
	return s
}

// at schedules fn at t (ns after the start) if t lies inside the scenario.
func (pl *scPlanner) at(t int64, fn func(t int64)) {
	if t < 0 || t >= pl.span {
		return
	}
	pl.intents = append(pl.intents, scIntent{t: t, n: len(pl.intents), fn: fn})
}

// plan runs the generators, then realizes the intents in time order.
func (pl *scPlanner) plan() error {
	p := pl.cfg.prof
	pl.assignRoles()
	pl.adminJump()
	pl.ntp()
	pl.monitoring()
	pl.updateChecks()
	pl.browsing()
	pl.fileShares()
	pl.downloads()
	pl.backups()
	pl.pushChannels()
	pl.vulnScanner()
	switch {
	case p.beacons:
		pl.enterpriseBeacons()
	case p.beaconGrid:
		pl.beaconGrid()
	}
	if p.exfil {
		pl.exfil()
	}
	if p.lateral {
		pl.lateral()
	}
	if p.scan {
		pl.portScan()
	}
	slices.SortFunc(pl.intents, func(a, b scIntent) int {
		return cmp.Or(cmp.Compare(a.t, b.t), cmp.Compare(a.n, b.n))
	})
	for i := range pl.intents {
		in := &pl.intents[i]
		in.fn(in.t)
		in.fn = nil
		if pl.err != nil {
			return pl.err
		}
	}
	pl.intents = nil
	t0 := pl.cfg.Start.UnixNano()
	for i := range pl.items {
		pl.items[i].start += t0
	}
	sortItems(pl.items)
	return pl.err
}

// Activities.

func (pl *scPlanner) newAct(a scAct) int32 {
	pl.acts = append(pl.acts, a)
	return int32(len(pl.acts) - 1)
}

// benignAct returns the trap of this kind for src, creating it on first use.
func (pl *scPlanner) benignAct(kind string, src netip.Addr) int32 {
	k := scActKey{kind, src}
	if a, ok := pl.benign[k]; ok {
		return a
	}
	a := pl.newAct(scAct{Activity: Activity{Kind: kind, Benign: true, Src: src}})
	pl.benign[k] = a
	return a
}

// Conversations.

func (pl *scPlanner) addTCP(t int64, act int32, c TCPConv) {
	c.Seed = pl.r.next()
	c.Start = pl.cfg.Start.Add(time.Duration(t))
	if err := c.Validate(); err != nil {
		pl.fail("%v", err)
		return
	}
	pl.items = append(pl.items, scItem{start: t, kind: itemTCP, idx: len(pl.tcps), act: act})
	pl.tcps = append(pl.tcps, c)
}

func (pl *scPlanner) addDNS(t int64, act int32, q DNSQuery) {
	q.Seed = pl.r.next()
	q.Start = pl.cfg.Start.Add(time.Duration(t))
	if err := q.Validate(); err != nil {
		pl.fail("%v", err)
		return
	}
	pl.items = append(pl.items, scItem{start: t, kind: itemDNS, idx: len(pl.dnss), act: act})
	pl.dnss = append(pl.dnss, q)
}

func (pl *scPlanner) addX(t int64, act int32, x *xconv) {
	x.seed = pl.r.next()
	pl.items = append(pl.items, scItem{start: t, kind: itemX, idx: len(pl.xs), act: act})
	pl.xs = append(pl.xs, x)
}

func (pl *scPlanner) msgs(ms ...Message) []Message {
	off := len(pl.arena)
	pl.arena = append(pl.arena, ms...)
	return pl.arena[off:len(pl.arena):len(pl.arena)]
}

// sport picks h's source port for a new conversation to dst, never reusing
// a 5-tuple: Windows counts up through 49152–65535, Linux picks at random
// in 32768–60999.
func (pl *scPlanner) sport(h *scHost, src netip.Addr, dst netip.AddrPort, proto uint8) uint16 {
	for range 1 << 16 {
		var p uint16
		if h.linux {
			p = uint16(32768 + pl.r.intn(60999-32768+1))
		} else {
			p = h.nextPort
			h.nextPort++
			if h.nextPort == 0 {
				h.nextPort = 49152
			}
		}
		k := makeTupleKey(proto, netip.AddrPortFrom(src, p), dst)
		if _, ok := pl.used[k]; !ok {
			pl.used[k] = struct{}{}
			return p
		}
	}
	pl.fail("host %v ran out of source ports towards %v", src, dst)
	return 0
}

// peerEnd is the far side of a conversation to addr:port: an internal host
// answers with its own MAC, anything else comes through the router.
func (pl *scPlanner) peerEnd(addr netip.Addr, port uint16, site *scSite) Endpoint {
	if site != nil && site.host != nil {
		return Endpoint{Addr: addr, Port: port, MAC: site.host.mac, TTL: site.host.ttl}
	}
	if h := pl.hostByAddr(addr); h != nil {
		return Endpoint{Addr: addr, Port: port, MAC: h.mac, TTL: h.ttl}
	}
	ttl := uint8(50)
	if site != nil {
		ttl = site.hops
	}
	return Endpoint{Addr: addr, Port: port, MAC: gatewayMAC, TTL: ttl}
}

func (pl *scPlanner) hostByAddr(a netip.Addr) *scHost {
	if a == pl.net.dc6 {
		return pl.net.dc
	}
	for _, h := range pl.net.servers {
		if h.v4 == a {
			return h
		}
	}
	return nil
}

// ends returns both ends of a new conversation from h (over IPv6 when dst
// is IPv6) to dst:port.
func (pl *scPlanner) ends(h *scHost, dst netip.Addr, port uint16, proto uint8, site *scSite) (Endpoint, Endpoint) {
	src := h.v4
	if dst.Is6() {
		src = h.v6
	}
	resp := pl.peerEnd(dst, port, site)
	orig := Endpoint{Addr: src, MAC: h.mac, TTL: h.ttl}
	orig.Port = pl.sport(h, src, netip.AddrPortFrom(dst, port), proto)
	return orig, resp
}

// DNS.

func (pl *scPlanner) dnsServer(h *scHost) netip.Addr {
	if h.v6.IsValid() {
		return pl.net.dc6
	}
	return pl.net.dc.v4
}

// lookup makes h resolve site at t through the domain controller unless its
// cache still holds the name, and returns the address h then connects to
// (IPv6 when want6 and both sides have it) and the earliest time to
// connect. Dual-stack hosts ask for A and AAAA records over IPv6. Intents
// run in time order but may plan connections a little ahead, so a
// connection planned before a cached answer arrived waits for it, as a
// resolver coalesces concurrent queries.
func (pl *scPlanner) lookup(h *scHost, site *scSite, want6 bool, t int64) (netip.Addr, int64) {
	c, ok := h.cache[site.name]
	if ok && c.exp > t {
		t = max(t, c.ready)
	} else {
		r := &pl.r
		c = scCached{v4: site.v4[r.intn(len(site.v4))], exp: t + int64(site.ttl)*int64(time.Second)}
		if len(site.v6) > 0 {
			c.v6 = site.v6[r.intn(len(site.v6))]
		}
		if h == pl.net.dc { // the DNS server answers itself without packets
			c.ready = t
			h.cache[site.name] = c
			return c.v4, t
		}
		rtt := ms(clampF(r.lognormal(0.35, 0.4), 0.1, 2))
		if !site.internal() && r.chance(0.35) { // the DC's cache misses
			rtt = ms(clampF(r.lognormal(25, 0.7), 3, 400))
		}
		srv := pl.dnsServer(h)
		act := pl.benignAct("internal_dns", h.addrFor(srv))
		client, server := pl.ends(h, srv, 53, ProtoUDP, pl.net.dc.site)
		pl.addDNS(t, act, DNSQuery{
			Client: client, Server: server, ID: uint16(r.next()), Name: site.name,
			Answer: c.v4, TTL: site.ttl, RTT: rtt,
		})
		if h.v6.IsValid() {
			var rd [][]byte
			if c.v6.IsValid() {
				a := c.v6.As16()
				rd = append(rd, a[:])
			}
			id := uint16(r.next())
			client, server := pl.ends(h, srv, 53, ProtoUDP, pl.net.dc.site)
			pl.addX(t+int64(40*time.Microsecond), act, &xconv{proto: ProtoUDP, ep: [2]Endpoint{client, server}, dgrams: []xdgram{
				{payload: appendDNSMsg(nil, id, false, site.name, dnsTypeAAAA, 0, nil)},
				{fromResp: true, delay: rtt, payload: appendDNSMsg(nil, id, true, site.name, dnsTypeAAAA, site.ttl, rd)},
			}})
		}
		t += int64(rtt) + int64(rtt)/8 + r.between(int64(300*time.Microsecond), int64(3*time.Millisecond))
		c.ready = t
		h.cache[site.name] = c
	}
	if want6 && h.v6.IsValid() && c.v6.IsValid() {
		return c.v6, t
	}
	return c.v4, t
}

func (h *scHost) addrFor(peer netip.Addr) netip.Addr {
	if peer.Is6() {
		return h.v6
	}
	return h.v4
}

// Web conversations.

type webPair struct {
	req, resp int
	think     time.Duration // before the request
}

type webConn struct {
	h     *scHost
	site  *scSite
	tls   bool
	pairs []webPair
	cert  int // server bytes after the ServerHello
	close Close
	rate  int64
	act   int32
	// actFor, when set, picks the activity from the source address
	// actually used (benign traps are per address).
	actFor func(src netip.Addr) int32
	// beats, when set, marks every request as a beat and receives their
	// times (long-lived beacons; only for xconv conversations).
	beats *[]int64
	// long makes the conversation an xconv even without a proxy, so that
	// think times may exceed MaxGap.
	long bool
}

// web opens one web conversation from wc.h to wc.site at t: directly after a
// DNS lookup, or through the explicit proxy when the scenario has one.
func (pl *scPlanner) web(t int64, wc webConn) {
	r := &pl.r
	site := wc.site
	rtt := ms(clampF(r.lognormal(site.rtt, 0.25), 0.1, 1000))
	if wc.rate == 0 {
		wc.rate = int64(clampF(r.lognormal(4e6, 0.8), 2e5, 5e7))
	}
	if pl.proxy && !site.internal() {
		pl.proxied(t, wc, rtt)
		return
	}
	addr, t := pl.lookup(wc.h, site, true, t)
	port := uint16(80)
	if wc.tls {
		port = 443
	}
	orig, resp := pl.ends(wc.h, addr, port, ProtoTCP, site)
	act := wc.act
	if wc.actFor != nil {
		act = wc.actFor(orig.Addr)
	}
	if wc.long {
		x := &xconv{proto: ProtoTCP, ep: [2]Endpoint{orig, resp}, rtt: int64(rtt), rate: wc.rate,
			name: site.name, close: wc.close, beats: wc.beats}
		x.msgs = append(x.msgs,
			xmsg{n: TLSClientHelloLen, head: xheadClientHello, tls: true, delay: ms(0.3)},
			xmsg{fromResp: true, n: TLSServerHelloLen + wc.cert, head: xheadServerHello, tls: true, delay: rtt})
		x.msgs = appendPairs(x.msgs, wc.pairs, rtt, wc.beats != nil)
		pl.addX(t, act, x)
		return
	}
	off := len(pl.arena)
	if wc.tls {
		pl.arena = append(pl.arena,
			Message{Len: TLSClientHelloLen, Delay: ms(0.3)},
			Message{FromResp: true, Len: TLSServerHelloLen + max(wc.cert, 6), Delay: rtt + ms(r.exp(1.5))})
	}
	minReq, minResp := 6, 6
	if !wc.tls {
		minReq, minResp = httpMinRequestLen(site.name)+40, HTTPMinResponseLen
	}
	for i, p := range wc.pairs {
		think := dur(p.think.Seconds())
		if i == 0 {
			think = ms(0.4)
		}
		pl.arena = append(pl.arena,
			Message{Len: max(p.req, minReq), Delay: think},
			Message{FromResp: true, Len: max(p.resp, minResp), Delay: rtt + ms(r.exp(4))})
	}
	app := AppHTTP
	if wc.tls {
		app = AppTLS
	}
	pl.addTCP(t, act, TCPConv{Orig: orig, Resp: resp, RTT: rtt, Rate: wc.rate, Messages: pl.arena[off:len(pl.arena):len(pl.arena)],
		Close: wc.close, CloseDelay: dur(r.exp(1)), App: app, ServerName: site.name})
}

// appendPairs adds request/response pairs as TLS records. A think time
// counts from the previous request, as a timer in the client does: the
// exchange's own time is taken off, so that heartbeats do not drift.
func appendPairs(msgs []xmsg, pairs []webPair, rtt time.Duration, beats bool) []xmsg {
	for i, p := range pairs {
		think := p.think
		switch {
		case i == 0 && think == 0:
			think = ms(0.4)
		case i > 0:
			think = max(think-rtt-ms(2.3), ms(1))
		}
		msgs = append(msgs,
			xmsg{n: max(p.req, 6), tls: true, delay: think, beat: beats},
			xmsg{fromResp: true, n: max(p.resp, 6), tls: true, delay: rtt + ms(2)})
	}
	return msgs
}

// proxied sends wc through the explicit proxy: CONNECT name:443 and TLS
// inside, or absolute-URI GETs for plain HTTP. The client resolves only the
// proxy's name; the proxy resolves the rest.
func (pl *scPlanner) proxied(t int64, wc webConn, rtt time.Duration) {
	r := &pl.r
	proxy := pl.net.proxy
	addr, t := pl.lookup(wc.h, proxy.site, false, t)
	orig, resp := pl.ends(wc.h, addr, portProxy, ProtoTCP, proxy.site)
	act := wc.act
	if wc.actFor != nil {
		act = wc.actFor(orig.Addr)
	}
	x := &xconv{proto: ProtoTCP, ep: [2]Endpoint{orig, resp}, rtt: int64(ms(0.4)), rate: wc.rate,
		name: wc.site.name, close: wc.close, beats: wc.beats}
	if wc.tls {
		x.msgs = append(x.msgs,
			xmsg{head: xheadConnect, delay: ms(0.3)},
			xmsg{fromResp: true, head: xheadConnectOK, delay: rtt + ms(r.exp(2))},
			xmsg{n: TLSClientHelloLen, head: xheadClientHello, tls: true, delay: ms(0.3)},
			xmsg{fromResp: true, n: TLSServerHelloLen + wc.cert, head: xheadServerHello, tls: true, delay: rtt + ms(r.exp(1.5))})
		x.msgs = appendPairs(x.msgs, wc.pairs, rtt, wc.beats != nil)
	} else {
		for i, p := range wc.pairs {
			think := p.think
			if i == 0 {
				think = ms(0.3)
			}
			path := "http://" + wc.site.name + "/" + randomPath(r, 6+r.intn(20))
			x.msgs = append(x.msgs,
				xmsg{n: p.req, head: xheadGet, target: path, delay: think, beat: wc.beats != nil},
				xmsg{fromResp: true, n: p.resp, head: xheadResponse, delay: rtt + ms(r.exp(3))})
		}
	}
	pl.addX(t, act, x)
}

func randomPath(r *rng, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = pathAlphabet[r.intn(len(pathAlphabet))]
	}
	return string(b)
}

// Time of day.

// busy is how active people are at t: 1 in office hours on weekdays, a
// little in the evening, almost nothing at night and at weekends.
func (pl *scPlanner) busy(t int64) float64 {
	tm := pl.cfg.Start.Add(time.Duration(t))
	if wd := tm.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return 0.04
	}
	h := float64(tm.Hour()) + float64(tm.Minute())/60
	switch {
	case h >= 8.5 && h < 12, h >= 13 && h < 17.5:
		return 1
	case h >= 12 && h < 13:
		return 0.6
	case h >= 7.5 && h < 8.5:
		return 0.5
	case h >= 17.5 && h < 19.5:
		return 0.3
	}
	return 0.03
}

// poisson calls fn at the times of a Poisson process of the given mean gap
// thinned by busy.
func (pl *scPlanner) poisson(from, to int64, mean time.Duration, fn func(t int64)) {
	for t := from; ; {
		t += int64(pl.r.exp(float64(mean)))
		if t >= to {
			return
		}
		if pl.r.chance(pl.busy(t)) {
			fn(t)
		}
	}
}

// daily returns the offsets from the start of every day's hh:mm inside the
// scenario.
func (pl *scPlanner) daily(hh, mm int) []int64 {
	st := pl.cfg.Start
	day := time.Date(st.Year(), st.Month(), st.Day(), hh, mm, 0, 0, time.UTC)
	var out []int64
	for ; day.Sub(st) < time.Duration(pl.span); day = day.Add(24 * time.Hour) {
		if d := day.Sub(st); d >= 0 {
			out = append(out, int64(d))
		}
	}
	return out
}

// Small helpers.

func secs(v float64) int64 { return int64(v * float64(time.Second)) }

func mins(v float64) int64 { return int64(v * float64(time.Minute)) }

// sizeNoise returns base scaled by a log-normal factor of mean 1 and the
// given coefficient of variation.
func sizeNoise(r *rng, base int, cv float64) int {
	if cv <= 0 {
		return base
	}
	s := math.Sqrt(math.Log(1 + cv*cv))
	return max(int(float64(base)*math.Exp(s*r.normal()-s*s/2)), 1)
}

// base32 is the DNS-safe alphabet of RFC 4648 base32 in lower case.
const base32 = "abcdefghijklmnopqrstuvwxyz234567"

func randomB32(r *rng, n int) string {
	var b strings.Builder
	b.Grow(n)
	for range n {
		b.WriteByte(base32[r.intn(32)])
	}
	return b.String()
}
