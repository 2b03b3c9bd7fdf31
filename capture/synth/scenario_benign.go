package synth

import (
	"net/netip"
	"slices"
	"time"
)

// The benign traps: traffic that looks periodic, bulky, scanning or
// administrative and that a detector must not flag. Each is labelled per
// source address (Activity.Benign).

// assignRoles picks, deterministically, the workstations that play a part:
// two admins first (never attackers), then the attackers' hosts.
func (pl *scPlanner) assignRoles() {
	ws := pl.net.ws
	rest := slices.Clone(ws[2:])
	for i := len(rest) - 1; i > 0; i-- {
		j := pl.r.intn(i + 1)
		rest[i], rest[j] = rest[j], rest[i]
	}
	pl.roles = rest
	// The SSH fan-out starts from a Linux workstation.
	s := pl.role(15)
	s.linux, s.ttl = true, 64
}

// role returns the i-th attacker host (wrapping around with few hosts).
func (pl *scPlanner) role(i int) *scHost { return pl.roles[i%len(pl.roles)] }

// ntp: every workstation polls one or two pool servers at a fixed poll
// interval of 64–1024 s, resolving the names once, as chrony does.
func (pl *scPlanner) ntp() {
	r := &pl.r
	polls := []int{6, 7, 8, 8, 9, 9, 10, 10, 10}
	for _, h := range pl.net.ws {
		poll := polls[r.intn(len(polls))]
		period := float64(int64(1)<<poll) * 1e9
		first := r.intn(len(pl.net.ntp))
		for k := range 1 + r.intn(2) {
			site := pl.net.ntp[(first+k)%len(pl.net.ntp)]
			var addr netip.Addr
			srtt := ms(clampF(r.lognormal(site.rtt, 0.3), 2, 300))
			t := int64(r.float()*period) + int64(k)*secs(2)
			for i := 0; t < pl.span; i++ {
				pl.at(t, func(t int64) {
					if !addr.IsValid() {
						addr, t = pl.lookup(h, site, false, t)
					}
					act := pl.benignAct("ntp", h.v4)
					client, server := pl.ends(h, addr, 123, ProtoUDP, site)
					rtt := pl.r.between(int64(srtt)*9/10, int64(srtt)*11/10)
					recv := t + rtt/2
					xmit := recv + pl.r.between(20_000, 90_000)
					pl.addX(t, act, &xconv{proto: ProtoUDP, ep: [2]Endpoint{client, server}, dgrams: []xdgram{
						{payload: ntpClient(pl.cfg.Start.UnixNano()+t, poll)},
						{fromResp: true, delay: time.Duration(xmit + rtt/2 - t), payload: ntpServer(
							pl.cfg.Start.UnixNano()+t, pl.cfg.Start.UnixNano()+recv, pl.cfg.Start.UnixNano()+xmit, poll,
							[4]byte{192, 0, 2, byte(1 + (i % 200))})},
					}})
				})
				t += int64(period * (1 + 0.02*(2*r.float()-1)))
			}
		}
	}
}

// monitoring: an agent on every host but the monitoring server reports to
// it every scMonitorPeriod, to the millisecond: the most periodic and most
// prevalent traffic of all.
func (pl *scPlanner) monitoring() {
	r := &pl.r
	mon := pl.net.mon
	hosts := append(slices.Clone(pl.net.ws), pl.net.servers...)
	for _, h := range hosts {
		if h == mon {
			continue
		}
		req := int(r.between(180, 900))
		period := float64(scMonitorPeriod)
		for t := int64(r.float() * period); t < pl.span; t += int64(period * (1 + 0.0005*(2*r.float()-1))) {
			pl.at(t, func(t int64) {
				r := &pl.r
				addr, t := pl.lookup(h, mon.site, false, t)
				orig, resp := pl.ends(h, addr, portMonitor, ProtoTCP, mon.site)
				rtt := ms(clampF(r.lognormal(0.3, 0.3), 0.1, 2))
				pl.addTCP(t, pl.benignAct("monitoring", h.v4), TCPConv{
					Orig: orig, Resp: resp, RTT: rtt, Rate: 50_000_000,
					Messages: pl.msgs(
						Message{Len: sizeNoise(r, req, 0.03), Delay: ms(0.3)},
						Message{FromResp: true, Len: int(r.between(40, 90)), Delay: rtt + ms(0.5)},
					),
					CloseDelay: ms(1),
				})
			})
		}
	}
}

// updateChecks: every workstation asks the OS vendor's update CDN about once
// an hour (±15 %).
func (pl *scPlanner) updateChecks() {
	r := &pl.r
	for _, h := range pl.net.ws {
		for t := int64(r.float() * float64(time.Hour)); t < pl.span; t += int64(float64(time.Hour) * (1 + 0.15*(2*r.float()-1))) {
			pl.at(t, func(t int64) {
				r := &pl.r
				pl.web(t, webConn{h: h, site: pl.net.updates, tls: true, cert: 3600,
					pairs:  []webPair{{req: int(r.between(600, 900)), resp: int(r.between(1200, 6000))}},
					actFor: func(src netip.Addr) int32 { return pl.benignAct("update_check", src) }})
			})
		}
	}
}

// browsing: people open pages now and then in office hours: a site, some of
// its resources from the shared CDN, a few requests each.
func (pl *scPlanner) browsing() {
	for _, h := range pl.net.ws {
		pl.poisson(0, pl.span, 20*time.Minute, func(t int64) {
			pl.at(t, func(t int64) { pl.browse(h, t) })
		})
	}
}

func (pl *scPlanner) browse(h *scHost, t int64) {
	r := &pl.r
	u := r.float()
	site := pl.net.popular[int(float64(len(pl.net.popular))*u*u)]
	sites := []*scSite{site}
	for range r.intn(4) {
		sites = append(sites, pl.net.cdn[r.intn(len(pl.net.cdn))])
	}
	if r.chance(0.3) {
		sites = append(sites, site)
	}
	actFor := func(src netip.Addr) int32 { return pl.benignAct("browsing", src) }
	for i, s := range sites {
		start := t
		if i > 0 {
			start += secs(0.05 + r.exp(0.4))
		}
		var pairs []webPair
		for k := 0; k == 0 || k < 8 && r.chance(0.5); k++ {
			pairs = append(pairs, webPair{
				req:   int(clampF(r.lognormal(450, 0.4), 120, 3000)),
				resp:  int(clampF(r.lognormal(2000, 1.2), 120, 1e6)),
				think: time.Duration(secs(r.exp(1.2))),
			})
		}
		close := CloseFIN
		if r.chance(0.3) {
			close = CloseFINResp
		}
		pl.web(start, webConn{h: h, site: s, tls: !s.plain, pairs: pairs, cert: int(r.between(2500, 4500)),
			close: close, actFor: actFor})
	}
}

// fileShares: workstations open the file server's shares in office hours,
// and refresh group policy from the domain controller's SYSVOL every 90
// minutes plus up to 30 (the Windows default).
func (pl *scPlanner) fileShares() {
	r := &pl.r
	for _, h := range pl.net.ws {
		if h.linux {
			continue
		}
		pl.poisson(0, pl.span, 90*time.Minute, func(t int64) {
			pl.at(t, func(t int64) { pl.smbSession(h, pl.net.files, t, 3+pl.r.intn(12), 64_000) })
		})
		for t := int64(r.float() * float64(90*time.Minute)); t < pl.span; t += mins(90 + 30*r.float()) {
			pl.at(t, func(t int64) { pl.smbSession(h, pl.net.dc, t, 6+pl.r.intn(7), 8000) })
		}
	}
}

func (pl *scPlanner) smbSession(h, srv *scHost, t int64, pairs, maxResp int) {
	r := &pl.r
	addr, t := pl.lookup(h, srv.site, false, t)
	orig, resp := pl.ends(h, addr, 445, ProtoTCP, srv.site)
	rtt := ms(clampF(r.lognormal(0.4, 0.3), 0.1, 3))
	off := len(pl.arena)
	for i := range pairs {
		think := ms(r.exp(3))
		if i > 3 {
			think = dur(r.exp(1.5))
		}
		pl.arena = append(pl.arena,
			Message{Len: int(clampF(r.lognormal(300, 0.6), 70, 1500)), Delay: think},
			Message{FromResp: true, Len: int(clampF(r.lognormal(2000, 1.4), 80, float64(maxResp))), Delay: rtt})
	}
	pl.addTCP(t, pl.benignAct("file_share", h.v4), TCPConv{Orig: orig, Resp: resp, RTT: rtt,
		Rate: int64(clampF(r.lognormal(4e7, 0.4), 5e6, 1.1e8)), Messages: pl.arena[off:len(pl.arena):len(pl.arena)],
		Close: CloseFIN, CloseDelay: dur(r.exp(2))})
}

// downloads: a few big downloads (installers, SDKs) in office hours, one
// per 180 host-hours; scenarios of fewer than 60 host-hours get smaller ones.
func (pl *scPlanner) downloads() {
	r := &pl.r
	hostHours := float64(pl.cfg.Hosts) * pl.cfg.Duration.Hours()
	n := max(1, int(hostHours/180+0.5))
	scale := clampF(hostHours/60, 0.1, 1)
	for range n {
		h := pl.net.ws[r.intn(len(pl.net.ws))]
		site := pl.net.downloads[r.intn(len(pl.net.downloads))]
		size := int(clampF(r.lognormal(8e6*scale, 0.5), 1e6, 40e6))
		t := int64(r.float() * float64(pl.span))
		for tries := 0; tries < 20 && !r.chance(pl.busy(t)); tries++ {
			t = int64(r.float() * float64(pl.span))
		}
		pl.at(t, func(t int64) {
			pl.web(t, webConn{h: h, site: site, tls: true, cert: 3800,
				pairs: []webPair{{req: 650, resp: size}}, rate: int64(clampF(r.lognormal(8e6, 0.4), 2e6, 3e7)),
				actFor: func(src netip.Addr) int32 { return pl.benignAct("download", src) }})
		})
	}
}

// backups: every night at 01:30 the file server and the domain controller
// upload to the backup server. A scenario that covers no 01:30 gets one run
// three quarters of the way through, so every profile holds the trap.
func (pl *scPlanner) backups() {
	times := pl.daily(1, 30)
	if len(times) == 0 {
		times = []int64{pl.span * 3 / 4}
	}
	big := int(clampF(float64(pl.cfg.Hosts)*0.25e6, 2e6, 60e6))
	for _, t := range times {
		for i, src := range []*scHost{pl.net.files, pl.net.dc} {
			size := big
			if i == 1 {
				size = big / 4
			}
			pl.at(t+mins(float64(i)*7)+secs(pl.r.float()*60), func(t int64) {
				r := &pl.r
				dst := pl.net.backup
				addr, t := pl.lookup(src, dst.site, false, t)
				orig, resp := pl.ends(src, addr, portBackup, ProtoTCP, dst.site)
				rtt := ms(0.3)
				pl.addTCP(t, pl.benignAct("backup", src.v4), TCPConv{Orig: orig, Resp: resp, RTT: rtt,
					Rate: int64(clampF(r.lognormal(6e7, 0.3), 2e7, 1.1e8)),
					Messages: pl.msgs(
						Message{Len: 220, Delay: ms(0.3)},
						Message{FromResp: true, Len: 96, Delay: rtt},
						Message{Len: 480, Delay: ms(1)},
						Message{FromResp: true, Len: 64, Delay: rtt},
						Message{Len: size, Delay: ms(2)},
						Message{FromResp: true, Len: 180, Delay: rtt + ms(20)},
					), CloseDelay: ms(5)})
			})
		}
	}
}

// pushChannels: a sixth of the workstations keep a chat push channel open,
// pinging every 45–60 s (the same interval per connection) and reconnecting
// every one to three hours.
func (pl *scPlanner) pushChannels() {
	r := &pl.r
	for i, h := range pl.net.ws {
		if i%6 != 5 {
			continue
		}
		site := pl.net.push[r.intn(len(pl.net.push))]
		for t := secs(r.float() * 300); t < pl.span; {
			life := min(mins(60+120*r.float()), pl.span-t)
			ping := 45 + 15*r.float()
			var pairs []webPair
			for e := secs(ping); e < life-secs(5); e += secs(ping) {
				p := webPair{req: int(r.between(38, 60)), resp: int(r.between(38, 60)), think: time.Duration(secs(ping))}
				if r.chance(0.08) { // a notification
					p.resp = int(clampF(r.lognormal(900, 0.8), 100, 20000))
				}
				pairs = append(pairs, p)
			}
			pl.at(t, func(t int64) {
				pl.web(t, webConn{h: h, site: site, tls: true, cert: 3300, pairs: pairs, long: true,
					actFor: func(src netip.Addr) int32 { return pl.benignAct("push_channel", src) }})
			})
			t += life + secs(1+4*r.float())
		}
	}
}

// adminJump: two admins open an RDP session to the jump host right at the
// start and every working day at about 08:30; from there they SSH to Linux
// servers and RDP to application servers. Baselines learn these edges.
func (pl *scPlanner) adminJump() {
	r := &pl.r
	starts := []int64{mins(2 + 8*r.float())}
	for _, t := range pl.daily(8, 30) {
		if t > starts[0]+int64(time.Hour) {
			starts = append(starts, t+mins(40*r.float()-20))
		}
	}
	for _, t0 := range starts {
		for a, admin := range pl.net.ws[:2] {
			t := t0 + mins(float64(a)*(3+10*r.float()))
			length := mins(20 + 25*r.float())
			pl.at(t, func(t int64) {
				pl.interactive(admin, pl.net.jump, 3389, t, length, pl.benignAct("admin_jump", admin.v4))
			})
			for k := range 2 + r.intn(3) {
				dst := pl.net.lnx[(a+k*2)%len(pl.net.lnx)]
				st := t + mins(3+float64(k)*6+4*r.float())
				pl.at(st, func(t int64) {
					pl.interactive(pl.net.jump, dst, 22, t, mins(3+9*pl.r.float()), pl.benignAct("admin_jump", pl.net.jump.v4))
				})
			}
			app := pl.net.apps[(a+int(t0/int64(time.Hour)))%len(pl.net.apps)]
			pl.at(t+mins(12+10*r.float()), func(t int64) {
				pl.interactive(pl.net.jump, app, 3389, t, mins(5+10*pl.r.float()), pl.benignAct("admin_jump", pl.net.jump.v4))
			})
		}
	}
}

// interactive adds a remote session (RDP or SSH) of about length: small
// inputs, larger screen updates or output, human pauses.
func (pl *scPlanner) interactive(h, dst *scHost, port uint16, t, length int64, act int32) {
	r := &pl.r
	addr, t := pl.lookup(h, dst.site, false, t)
	orig, resp := pl.ends(h, addr, port, ProtoTCP, dst.site)
	rtt := ms(clampF(r.lognormal(0.4, 0.3), 0.1, 3))
	length = max(min(length, pl.span-t-secs(10)), secs(20))
	off := len(pl.arena)
	pl.arena = append(pl.arena,
		Message{Len: int(r.between(40, 400)), Delay: ms(0.3)},
		Message{FromResp: true, Len: int(r.between(40, 1500)), Delay: rtt},
		Message{Len: int(r.between(300, 1800)), Delay: ms(2)},
		Message{FromResp: true, Len: int(r.between(1500, 5000)), Delay: rtt + ms(3)})
	for e := int64(0); e < length; {
		d := dur(clampF(r.exp(4), 0.05, 9.5))
		pl.arena = append(pl.arena,
			Message{Len: int(clampF(r.lognormal(90, 0.6), 36, 1200)), Delay: d},
			Message{FromResp: true, Len: int(clampF(r.lognormal(700, 1.4), 36, 200000)), Delay: rtt + ms(r.exp(8))})
		e += int64(d)
	}
	if port == 22 {
		sshLens(pl.arena[off:])
	}
	pl.addTCP(t, act, TCPConv{Orig: orig, Resp: resp, RTT: rtt, Rate: int64(clampF(r.lognormal(2e7, 0.4), 2e6, 1e8)),
		Messages: pl.arena[off:len(pl.arena):len(pl.arena)], Close: CloseFIN, CloseDelay: dur(r.exp(1))})
}

// sshLens rounds message lengths to what SSH sends after the key exchange
// (a 4-byte length, a multiple of 8 and a 16-byte tag) and keeps the last
// segment of each message long enough for dissectors to read its length.
func sshLens(msgs []Message) {
	for i := range msgs {
		n := 4 + (msgs[i].Len+7)&^7 + 16
		if tail := n % DefaultMSS4; tail > 0 && tail < 40 {
			n += 40
		}
		msgs[i].Len = n
	}
}

// scScanPorts are the ports the vulnerability scanner and the attacker's
// scan try first.
var scScanPorts = []uint16{21, 22, 23, 25, 53, 80, 88, 110, 111, 135, 139, 143, 389, 443, 445, 465, 587, 636,
	993, 995, 1433, 1521, 2049, 3128, 3268, 3306, 3389, 5432, 5900, 5985, 5986, 6379, 8000, 8080, 8443, 9100,
	9103, 9200, 10051, 27017}

// openPorts says which ports a host answers on.
func (pl *scPlanner) openPorts(h *scHost) []uint16 {
	n := &pl.net
	switch {
	case h == n.dc:
		return []uint16{53, 88, 135, 139, 389, 445, 636, 3268, 3389, 5985}
	case h == n.files:
		return []uint16{135, 139, 445, 3389, 5985}
	case h == n.backup:
		return []uint16{22, 443, 9103}
	case h == n.jump:
		return []uint16{22, 135, 445, 3389}
	case h == n.mon:
		return []uint16{22, 443, 10051}
	case h == n.proxy:
		return []uint16{22, 3128}
	case slices.Contains(n.apps, h):
		return []uint16{80, 135, 443, 445, 3389, 5985}
	case h.linux:
		return []uint16{22, 111}
	}
	return []uint16{135, 139, 445}
}

// probe adds one SYN probe: open ports answer SYN-ACK (and the prober
// resets), closed ports of servers and Linux hosts reset, Windows
// workstations' firewalls drop the rest.
func (pl *scPlanner) probe(src, dst *scHost, sport, port uint16, t int64, act int32) {
	r := &pl.r
	orig := Endpoint{Addr: src.v4, Port: sport, MAC: src.mac, TTL: src.ttl}
	resp := Endpoint{Addr: dst.v4, Port: port, MAC: dst.mac, TTL: dst.ttl}
	k := makeTupleKey(ProtoTCP, netip.AddrPortFrom(orig.Addr, sport), netip.AddrPortFrom(resp.Addr, port))
	if _, ok := pl.used[k]; ok {
		return
	}
	pl.used[k] = struct{}{}
	c := TCPConv{Orig: orig, Resp: resp, RTT: time.Duration(r.between(150_000, 700_000))}
	switch {
	case slices.Contains(pl.openPorts(dst), port):
		c.Setup = HalfOpen
	case dst.linux || slices.Contains(pl.net.servers, dst):
		c.Setup = Rejected
	default:
		c.Setup = Unanswered
		c.SYNRetries = r.intn(2)
	}
	pl.addTCP(t, act, c)
}

// vulnScanner: the allowlisted scanner sweeps every internal host once a
// day, a fifth of the way into the scenario's first day.
func (pl *scPlanner) vulnScanner() {
	r := &pl.r
	sc := pl.net.scanner
	act := pl.benignAct("vuln_scanner", sc.v4)
	first := min(pl.span, int64(24*time.Hour)) / 5
	for day := int64(0); first+day < pl.span; day += int64(24 * time.Hour) {
		targets := append(slices.Clone(pl.net.ws), pl.net.servers...)
		targets = slices.DeleteFunc(targets, func(h *scHost) bool { return h == sc })
		for i := len(targets) - 1; i > 0; i-- {
			j := r.intn(i + 1)
			targets[i], targets[j] = targets[j], targets[i]
		}
		t := first + day
		for _, dst := range targets {
			ports := slices.Clone(scScanPorts)
			for i := len(ports) - 1; i > 0; i-- {
				j := r.intn(i + 1)
				ports[i], ports[j] = ports[j], ports[i]
			}
			sport := uint16(r.between(40000, 60000))
			for _, port := range ports {
				pl.at(t, func(t int64) { pl.probe(sc, dst, sport, port, t, act) })
				t += r.between(int64(time.Millisecond), int64(6*time.Millisecond))
			}
			t += r.between(int64(20*time.Millisecond), int64(300*time.Millisecond))
		}
	}
}
