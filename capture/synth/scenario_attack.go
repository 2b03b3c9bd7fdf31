package synth

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// The attacks. Role numbers index pl.roles (see role): 0–6 beacons, 7–10
// exfiltration, 11–15 lateral movement, 16 the port scan.

// scMaxBeats bounds one beacon's beats: a beacon of a few seconds runs for
// a window (an operator's interactive session) rather than for days.
const scMaxBeats = 1000

// scBeacon describes one implant calling home.
type scBeacon struct {
	variant                  string // "http", "https-sni", "cdn-shared-ip", "sleep-burst", "long-lived"
	host                     *scHost
	v6                       bool // over IPv6 when the host is dual-stack
	period                   time.Duration
	jitter, missed, cv       float64
	burst                    int
	from, to                 int64
	site                     *scSite
	reqBase, respBase, certN int
}

func (pl *scPlanner) c2Name() string {
	r := &pl.r
	return fmt.Sprintf("%s.%s.%s", scC2Sub[r.intn(len(scC2Sub))], scC2Mid[r.intn(len(scC2Mid))], scC2TLD[r.intn(len(scC2TLD))])
}

// c2Site makes a fresh C2 site; cdn-shared-ip C2s resolve to the CDN's
// addresses that benign names use too.
func (pl *scPlanner) c2Site(variant string, v6 bool) *scSite {
	var name string
	for {
		name = pl.c2Name()
		if !pl.c2Names[name] {
			pl.c2Names[name] = true
			break
		}
	}
	s := pl.newSite(name, v6)
	if variant == "cdn-shared-ip" {
		s.v4 = pl.net.cdnIPs[pl.r.intn(len(pl.net.cdnIPs)):][:1]
		s.rtt, s.hops, s.v6 = 8, 58, nil
	}
	return s
}

// beacon plans one implant's calls from b.from to b.to.
func (pl *scPlanner) beacon(b scBeacon) {
	r := &pl.r
	if pl.cfg.Period > 0 {
		b.period = pl.cfg.Period
	}
	if pl.cfg.jitter >= 0 {
		b.jitter = pl.cfg.jitter
	}
	if pl.cfg.missed >= 0 {
		b.missed = pl.cfg.missed
	}
	http := b.variant == "http"
	if b.site == nil {
		b.site = pl.c2Site(b.variant, b.v6)
	}
	site := b.site
	variant := b.variant
	if pl.proxy && variant != "sleep-burst" && variant != "long-lived" {
		variant = "proxy-connect"
	}
	mitre := []string{"T1071.001", "T1573"}
	if http {
		mitre = []string{"T1071.001"}
	}
	src := b.host.v4
	port := uint16(443)
	switch {
	case pl.proxy:
		port = portProxy
	case http:
		port = 80
	case b.host.v6.IsValid() && len(site.v6) > 0:
		src = b.host.v6
	}
	b.reqBase = int(clampF(r.lognormal(380, 0.4), 150, 1500))
	b.respBase = int(clampF(r.lognormal(260, 0.5), float64(HTTPMinResponseLen+20), 2000))
	b.certN = int(r.between(1800, 4200))
	a := Activity{Kind: "beacon", Variant: variant, MITRE: mitre, Src: src, DstPort: port, Proto: "tcp",
		FQDN: site.name, Period: b.period, Jitter: b.jitter, Missed: b.missed, SizeCV: b.cv}
	if b.variant == "sleep-burst" {
		a.BurstOf = max(b.burst, 2)
	}
	if b.variant == "long-lived" {
		pl.longBeacon(b, a)
		return
	}
	act := pl.newAct(scAct{Activity: a, beatsFromFlows: true})
	b.to = min(b.to, b.from+int64(b.period)*scMaxBeats/int64(max(a.BurstOf, 1)))
	results := 0
	for t := b.from + int64(r.float()*float64(b.period)); t < b.to; t += int64(float64(b.period) * (1 + b.jitter*(2*r.float()-1))) {
		if r.chance(b.missed) {
			continue
		}
		n := max(a.BurstOf, 1)
		pairs := make([]webPair, n)
		offs := make([]int64, n)
		for k := range pairs {
			pairs[k] = webPair{req: sizeNoise(r, b.reqBase, b.cv), resp: sizeNoise(r, b.respBase, b.cv)}
			if results > 0 {
				pairs[k].req += results
				results = 0
			}
			if b.cv > 0 && r.chance(0.04) { // tasking, and its results on the next call
				pairs[k].resp = int(clampF(r.lognormal(25000, 0.6), 3000, 200000))
				results = int(clampF(r.lognormal(8000, 0.8), 500, 500000))
			}
			if k > 0 {
				offs[k] = offs[k-1] + secs(0.3+2.2*r.float())
			}
		}
		pl.at(t, func(t int64) {
			for k := range pairs {
				pl.web(t+offs[k], webConn{h: b.host, site: site, tls: !http, pairs: pairs[k : k+1], cert: b.certN,
					act: act, rate: 2_000_000})
			}
		})
	}
}

// longBeacon keeps one connection open with a heartbeat at the period (at
// most four minutes, so that flow trackers keep it as one flow); missed
// beats stretch the gap.
func (pl *scPlanner) longBeacon(b scBeacon, a Activity) {
	r := &pl.r
	period := min(max(b.period, 5*time.Second), 4*time.Minute)
	a.Period = period
	beats := new([]int64)
	act := pl.newAct(scAct{Activity: a, beats: beats})
	lc := a
	lc.Kind = "long_connection"
	lc.Period, lc.Jitter, lc.Missed, lc.SizeCV = 0, 0, 0, 0
	twin := pl.newAct(scAct{Activity: lc})
	pl.acts[act].twins = []int32{twin}
	var pairs []webPair
	gap := int64(0)
	for e := int64(0); b.from+e < b.to-int64(period); {
		step := int64(float64(period) * (1 + b.jitter*(2*r.float()-1)))
		e += step
		gap += step
		if r.chance(b.missed) {
			continue
		}
		pairs = append(pairs, webPair{req: sizeNoise(r, min(b.reqBase, 300), b.cv), resp: sizeNoise(r, min(b.respBase, 300), b.cv),
			think: time.Duration(gap)})
		gap = 0
	}
	pl.at(b.from, func(t int64) {
		pl.web(t, webConn{h: b.host, site: b.site, tls: true, pairs: pairs, cert: b.certN, act: act, long: true,
			beats: beats, rate: 2_000_000})
	})
}

// enterpriseBeacons: one beacon of each variant, plus a fast and a slow one.
func (pl *scPlanner) enterpriseBeacons() {
	specs := []scBeacon{
		{variant: "https-sni", period: 5 * time.Minute, jitter: 0.2, missed: 0.05, v6: true},
		{variant: "http", period: 10 * time.Minute, jitter: 0.1, missed: 0.1, cv: 0.3},
		{variant: "cdn-shared-ip", period: time.Minute, jitter: 0.3, cv: 0.1},
		{variant: "sleep-burst", period: 15 * time.Minute, jitter: 0.1, missed: 0.05, burst: 3},
		{variant: "long-lived", period: time.Minute, jitter: 0.05, cv: 0.2},
		{variant: "https-sni", period: 10 * time.Second, jitter: 0.5, missed: 0.02, cv: 0.2},
		{variant: "http", period: time.Hour, jitter: 0.1},
	}
	for i, b := range specs {
		b.host = pl.role(i)
		if b.v6 {
			if h := pl.dualStackRole(); h != nil {
				b.host = h
			}
		}
		b.from = pl.span/20 + int64(pl.r.float()*float64(pl.span/20))
		if b.period < time.Minute {
			b.from = pl.span / 4
		}
		b.to = pl.span
		pl.beacon(b)
	}
}

// dualStackRole returns the first attacker host with IPv6, if any.
func (pl *scPlanner) dualStackRole() *scHost {
	for _, h := range pl.roles {
		if h.v6.IsValid() {
			return h
		}
	}
	return nil
}

// beaconGrid: beacons over period × jitter × missed (a knob collapses its
// dimension), variants and size noise rotating, plus one long-lived.
func (pl *scPlanner) beaconGrid() {
	periods := []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour}
	periods = slices.DeleteFunc(periods, func(p time.Duration) bool { return int64(p)*6 > pl.span })
	if len(periods) == 0 {
		periods = []time.Duration{time.Duration(pl.span / 8)}
	}
	if pl.cfg.Period > 0 {
		periods = []time.Duration{pl.cfg.Period}
	}
	jitters := []float64{0, 0.1, 0.3, 0.6}
	if pl.cfg.jitter >= 0 {
		jitters = []float64{pl.cfg.jitter}
	}
	misses := []float64{0, 0.1, 0.25}
	if pl.cfg.missed >= 0 {
		misses = []float64{pl.cfg.missed}
	}
	variants := []string{"https-sni", "http", "cdn-shared-ip", "https-sni", "sleep-burst"}
	type cell struct {
		p    time.Duration
		j, m float64
	}
	var cells []cell
	for _, p := range periods {
		for _, j := range jitters {
			for _, m := range misses {
				cells = append(cells, cell{p, j, m})
			}
		}
	}
	// A grid collapsed by knobs still gets every variant, with and
	// without size noise.
	n := max(len(cells), 2*len(variants))
	i := 0
	for ; i < n; i++ {
		c := cells[i%len(cells)]
		b := scBeacon{variant: variants[i%len(variants)], period: c.p, jitter: c.j, missed: c.m,
			cv: []float64{0, 0.25}[i/len(variants)%2], burst: 2 + i%3, host: pl.role(i), v6: i%7 == 0}
		b.from = int64(pl.r.float() * float64(pl.span/20))
		b.to = pl.span
		pl.beacon(b)
	}
	pl.beacon(scBeacon{variant: "long-lived", period: time.Minute, jitter: 0.05, host: pl.role(i), from: pl.span / 20, to: pl.span})
}

// exfil: a bulk upload of cfg.ExfilBytes within an hour, a low-and-slow
// upload every half hour, and DNS tunnels.
func (pl *scPlanner) exfil() {
	pl.exfilBulk(pl.role(7))
	pl.exfilLowSlow(pl.role(8))
	// DNS tunnels: TXT answers always, A answers too in the exfil profile.
	pl.dnsTunnel(pl.role(9), "t.example-tunnel.net", true, pl.span/2)
	if pl.cfg.prof.name == "exfil" {
		pl.dnsTunnel(pl.role(10), "d.example-tunnel.org", false, pl.span*3/10)
	}
}

func (pl *scPlanner) exfilName(i int) string {
	return fmt.Sprintf("%s.%s", scExfilTop[i%len(scExfilTop)], scC2TLD[pl.r.intn(len(scC2TLD))])
}

func (pl *scPlanner) webPort(p uint16) uint16 {
	if pl.proxy {
		return portProxy
	}
	return p
}

func (pl *scPlanner) exfilBulk(h *scHost) {
	r := &pl.r
	site := pl.newSite(pl.exfilName(r.intn(2)), false)
	act := pl.newAct(scAct{Activity: Activity{Kind: "exfil", Variant: "bulk", MITRE: []string{"T1048", "T1567.002"},
		Src: h.v4, DstPort: pl.webPort(443), Proto: "tcp", FQDN: site.name}})
	t := pl.span*6/10 + int64(r.float()*float64(pl.span/10))
	rate := int64(clampF(r.lognormal(4e6, 0.3), 1.5e6, 1.2e7))
	for left := pl.cfg.ExfilBytes; left > 0; {
		chunk := min(left, int64(float64(8<<20)*(0.7+0.6*r.float())))
		left -= chunk
		pl.at(t, func(t int64) {
			pl.web(t, webConn{h: h, site: site, tls: true, cert: 3100, rate: rate, act: act,
				pairs: []webPair{{req: int(chunk), resp: int(pl.r.between(200, 600))}}})
		})
		t += int64(float64(chunk)/float64(rate)*1e9) + secs(20+100*r.float())
	}
}

func (pl *scPlanner) exfilLowSlow(h *scHost) {
	r := &pl.r
	site := pl.newSite(pl.exfilName(2+r.intn(2)), false)
	act := pl.newAct(scAct{Activity: Activity{Kind: "exfil", Variant: "low-and-slow", MITRE: []string{"T1048", "T1029", "T1030"},
		Src: h.v4, DstPort: pl.webPort(443), Proto: "tcp", FQDN: site.name}})
	period := 30 * time.Minute
	if pl.span < int64(3*time.Hour) {
		period = time.Duration(pl.span / 6)
	}
	base := max(pl.cfg.ExfilBytes/24, 256<<10)
	for t := pl.span/10 + int64(r.float()*float64(period)); t < pl.span; t += int64(float64(period) * (1 + 0.1*(2*r.float()-1))) {
		size := int(clampF(r.lognormal(float64(base), 0.2), float64(base)/2, float64(base)*2))
		pl.at(t, func(t int64) {
			pl.web(t, webConn{h: h, site: site, tls: true, cert: 2900, act: act,
				rate:  int64(clampF(pl.r.lognormal(1.5e6, 0.4), 3e5, 6e6)),
				pairs: []webPair{{req: size, resp: int(pl.r.between(200, 500))}}})
		})
	}
}

// dnsTunnel sends data as long base32 labels under domain, one query a
// second or so for up to an hour, through the domain controller.
func (pl *scPlanner) dnsTunnel(h *scHost, domain string, txt bool, from int64) {
	r := &pl.r
	dc := pl.net.dc
	variant := "a"
	if txt {
		variant = "txt"
	}
	act := pl.newAct(scAct{Activity: Activity{Kind: "dns_exfil", Variant: variant, MITRE: []string{"T1071.004", "T1048.003"},
		Src: h.v4, Dsts: []netip.Addr{dc.v4}, DstPort: 53, Proto: "udp", FQDN: domain}})
	window := min(int64(time.Hour), pl.span*3/10)
	for t := from; t < from+window && t < pl.span; t += secs(clampF(r.exp(0.8), 0.05, 5)) {
		name := randomB32(r, 52) + "." + randomB32(r, 20+r.intn(33)) + "." + domain
		answer := randomB32(r, 16+r.intn(105))
		a4 := netip.AddrFrom4([4]byte{198, 18 + byte(r.intn(2)), byte(r.next()), byte(1 + r.intn(254))})
		pl.at(t, func(t int64) {
			r := &pl.r
			client, server := pl.ends(h, dc.v4, 53, ProtoUDP, dc.site)
			rtt := ms(clampF(r.lognormal(45, 0.5), 8, 400))
			id := uint16(r.next())
			if !txt {
				pl.addDNS(t, act, DNSQuery{Client: client, Server: server, ID: id, Name: name, Answer: a4, TTL: 1, RTT: rtt})
				return
			}
			pl.addX(t, act, &xconv{proto: ProtoUDP, ep: [2]Endpoint{client, server}, dgrams: []xdgram{
				{payload: appendDNSMsg(nil, id, false, name, dnsTypeTXT, 0, nil)},
				{fromResp: true, delay: rtt, payload: appendDNSMsg(nil, id, true, name, dnsTypeTXT, 1, [][]byte{txtRData(answer)})},
			}})
		})
	}
}

// lateral: PsExec-like fan-out, an RDP chain, WinRM and SSH fan-out, after
// the first two fifths of the scenario (baselines have formed by then).
func (pl *scPlanner) lateral() {
	t0 := pl.span*4/10 + int64(pl.r.float()*float64(pl.span/8))
	pl.lateralPsexec(pl.role(11), t0)
	a, b := pl.role(12), pl.role(13)
	if a == b {
		b = pl.role(14)
	}
	pl.lateralRDP(a, b, t0+mins(10+10*pl.r.float()))
	pl.lateralWinRM(pl.role(14), t0+mins(25+10*pl.r.float()))
	pl.lateralSSH(pl.role(15), t0+mins(40+10*pl.r.float()))
}

// lateralPsexec: SMB to ADMIN$, the endpoint mapper, then the service
// control manager on a dynamic port, on hosts p never used before.
func (pl *scPlanner) lateralPsexec(p *scHost, t int64) {
	r := &pl.r
	act := pl.newAct(scAct{Activity: Activity{Kind: "lateral_movement", Variant: "psexec",
		MITRE: []string{"T1021.002", "T1569.002", "T1570"}, Src: p.v4, DstPort: 445, Proto: "tcp"}})
	var peers []*scHost
	want := 5 + r.intn(4)
	for _, h := range pl.roles {
		if h != p && len(peers) < want {
			peers = append(peers, h)
		}
	}
	peers = append(peers, pl.net.apps[1])
	for _, peer := range peers {
		pl.at(t, func(t int64) { pl.psexec(p, peer, t, act) })
		t += secs(20 + 70*r.float())
	}
}

// lateralRDP: A → B, and from B's session B → C (the domain controller).
func (pl *scPlanner) lateralRDP(a, b *scHost, t int64) {
	r := &pl.r
	dc := pl.net.dc
	act := pl.newAct(scAct{Activity: Activity{Kind: "lateral_movement", Variant: "rdp-chain", MITRE: []string{"T1021.001"},
		Src: a.v4, DstPort: 3389, Proto: "tcp", Chain: []netip.Addr{a.v4, b.v4, dc.v4}}})
	pl.at(t, func(t int64) { pl.interactive(a, b, 3389, t, mins(15+10*pl.r.float()), act) })
	pl.at(t+mins(3+3*r.float()), func(t int64) { pl.interactive(b, dc, 3389, t, mins(8+4*pl.r.float()), act) })
}

// lateralWinRM: WinRM to every application server.
func (pl *scPlanner) lateralWinRM(w *scHost, t int64) {
	r := &pl.r
	act := pl.newAct(scAct{Activity: Activity{Kind: "lateral_movement", Variant: "winrm", MITRE: []string{"T1021.006"},
		Src: w.v4, DstPort: 5985, Proto: "tcp"}})
	for _, app := range pl.net.apps {
		for range 1 + r.intn(2) {
			pl.at(t, func(t int64) { pl.winrm(w, app, t, act) })
			t += secs(30 + 90*r.float())
		}
	}
}

// lateralSSH: SSH fan-out from a Linux workstation.
func (pl *scPlanner) lateralSSH(s *scHost, t int64) {
	r := &pl.r
	act := pl.newAct(scAct{Activity: Activity{Kind: "lateral_movement", Variant: "ssh", MITRE: []string{"T1021.004"},
		Src: s.v4, DstPort: 22, Proto: "tcp"}})
	targets := slices.Clone(pl.net.lnx)
	for _, h := range pl.roles {
		if h != s && len(targets) < len(pl.net.lnx)+3 {
			targets = append(targets, h)
		}
	}
	for _, dst := range targets {
		pl.at(t, func(t int64) { pl.sshSession(s, dst, t, act) })
		t += secs(5 + 35*r.float())
	}
}

func (pl *scPlanner) psexec(src, dst *scHost, t int64, act int32) {
	r := &pl.r
	addr, t := pl.lookup(src, dst.site, false, t)
	rtt := ms(clampF(r.lognormal(0.4, 0.3), 0.1, 3))
	rate := int64(clampF(r.lognormal(5e7, 0.3), 1e7, 1.1e8))
	small := func(req, resp int) []Message {
		return []Message{{Len: req, Delay: ms(0.2 + r.exp(1))}, {FromResp: true, Len: resp, Delay: rtt}}
	}
	// SMB: negotiate, two session setups, tree connect to ADMIN$, create,
	// the service binary in 64 KiB writes, close, disconnect, logoff.
	off := len(pl.arena)
	for _, m := range [][2]int{{252, 314}, {162, 293}, {684, 153}, {120, 84}, {372, 224}} {
		pl.arena = append(pl.arena, small(m[0], m[1])...)
	}
	for left := 381_000 + int(r.between(0, 9000)); left > 0; left -= 65536 {
		pl.arena = append(pl.arena, small(min(left, 65536)+116, 84)...)
	}
	for _, m := range [][2]int{{108, 128}, {88, 84}, {88, 84}} {
		pl.arena = append(pl.arena, small(m[0], m[1])...)
	}
	orig, resp := pl.ends(src, addr, 445, ProtoTCP, dst.site)
	pl.addTCP(t, act, TCPConv{Orig: orig, Resp: resp, RTT: rtt, Rate: rate,
		Messages: pl.arena[off:len(pl.arena):len(pl.arena)], CloseDelay: ms(5)})

	// DCE/RPC endpoint mapper: bind, map the SVCCTL interface.
	orig, resp = pl.ends(src, addr, 135, ProtoTCP, dst.site)
	pl.addTCP(t+secs(1.2+r.float()), act, TCPConv{Orig: orig, Resp: resp, RTT: rtt, Rate: rate,
		Messages: pl.msgs(append(small(116, 92), small(156, 152)...)...), CloseDelay: ms(2)})

	// SVCCTL on the dynamic port: bind, open the manager, create and start
	// the service.
	dyn := uint16(49664 + r.intn(40))
	orig, resp = pl.ends(src, addr, dyn, ProtoTCP, dst.site)
	off = len(pl.arena)
	for _, m := range [][2]int{{160, 108}, {104, 48}, {340, 56}, {60, 32}, {60, 32}} {
		pl.arena = append(pl.arena, small(m[0], m[1])...)
	}
	pl.addTCP(t+secs(2.5+r.float()), act, TCPConv{Orig: orig, Resp: resp, RTT: rtt, Rate: rate,
		Messages: pl.arena[off:len(pl.arena):len(pl.arena)], CloseDelay: ms(3)})
}

// winrm opens a WS-Management session: SOAP POSTs to /wsman, plain HTTP on
// 5985 as Windows does by default (the body is encrypted by the auth layer).
func (pl *scPlanner) winrm(src, dst *scHost, t int64, act int32) {
	r := &pl.r
	addr, t := pl.lookup(src, dst.site, false, t)
	orig, resp := pl.ends(src, addr, 5985, ProtoTCP, dst.site)
	x := &xconv{proto: ProtoTCP, ep: [2]Endpoint{orig, resp}, rtt: int64(ms(clampF(r.lognormal(0.4, 0.3), 0.1, 3))),
		rate: 50_000_000, name: dst.name + ":5985"}
	for i := range 4 + r.intn(5) {
		d := ms(50 + 2000*r.float())
		if i == 0 {
			d = ms(0.3)
		}
		x.msgs = append(x.msgs,
			xmsg{n: int(r.between(1500, 6000)), head: xheadPost, target: "/wsman", delay: d},
			xmsg{fromResp: true, n: int(r.between(800, 5000)), head: xheadResponse, delay: ms(5 + 200*r.float())})
	}
	pl.addX(t, act, x)
}

// sshSession logs in and runs a few commands.
func (pl *scPlanner) sshSession(src, dst *scHost, t int64, act int32) {
	r := &pl.r
	addr, t := pl.lookup(src, dst.site, false, t)
	orig, resp := pl.ends(src, addr, 22, ProtoTCP, dst.site)
	rtt := ms(clampF(r.lognormal(0.4, 0.3), 0.1, 3))
	off := len(pl.arena)
	for _, m := range [][2]int{{41, 39}, {1520, 1080}, {48, 564}, {16, 44}, {84, 52}, {612, 500}} {
		pl.arena = append(pl.arena, Message{Len: m[0], Delay: ms(0.3 + r.exp(2))}, Message{FromResp: true, Len: m[1], Delay: rtt})
	}
	for range 5 + r.intn(11) {
		pl.arena = append(pl.arena,
			Message{Len: int(clampF(r.lognormal(80, 0.5), 36, 400)), Delay: dur(clampF(r.exp(2.5), 0.1, 9.5))},
			Message{FromResp: true, Len: int(clampF(r.lognormal(600, 1.2), 36, 60000)), Delay: rtt + ms(r.exp(20))})
	}
	sshLens(pl.arena[off+12:])
	pl.addTCP(t, act, TCPConv{Orig: orig, Resp: resp, RTT: rtt, Rate: 30_000_000,
		Messages: pl.arena[off:len(pl.arena):len(pl.arena)], CloseDelay: ms(2)})
}

// portScan: a compromised workstation SYN-scans a few internal hosts on the
// common ports plus a few hundred of the first 1024.
func (pl *scPlanner) portScan() {
	r := &pl.r
	src := pl.role(16)
	act := pl.newAct(scAct{Activity: Activity{Kind: "scan", Variant: "syn", MITRE: []string{"T1046"}, Src: src.v4, Proto: "tcp"}})
	var targets []*scHost
	for _, h := range []*scHost{pl.net.backup, pl.role(17), pl.role(18)} {
		if h != src && !slices.Contains(targets, h) {
			targets = append(targets, h)
		}
	}
	t := pl.span * 35 / 100
	sport := uint16(r.between(40000, 60000))
	for _, dst := range targets {
		ports := slices.Clone(scScanPorts)
		for len(ports) < 300 {
			if p := uint16(1 + r.intn(1024)); !slices.Contains(ports, p) {
				ports = append(ports, p)
			}
		}
		for i := len(ports) - 1; i > 0; i-- {
			j := r.intn(i + 1)
			ports[i], ports[j] = ports[j], ports[i]
		}
		for _, port := range ports {
			pl.at(t, func(t int64) { pl.probe(src, dst, sport, port, t, act) })
			t += r.between(int64(300*time.Microsecond), int64(3*time.Millisecond))
		}
		t += secs(1 + 4*r.float())
	}
}
