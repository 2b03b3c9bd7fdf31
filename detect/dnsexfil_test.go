package detect

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowhound/flowhound/flow"
)

const xtDC = "10.1.0.10"

// xtDNS is one DNS flow from src to the resolver with the given names.
func xtDNS(src, resolver string, at time.Time, qtype uint16, queries uint32, names ...string) *flow.Record {
	r := xtRec(src, resolver, 53, at, at.Add(30*time.Millisecond), uint64(40*len(names)), uint64(90*len(names)), true, "")
	r.Proto, r.OrigPort = flow.ProtoUDP, uint16(1024+at.UnixNano()%60000)
	r.App = &flow.App{DNSQuery: names[0], DNSQType: qtype, DNSQueries: queries, DNSNames: names}
	return r
}

func xtB32(r *rand.Rand, n int) string {
	const a = "abcdefghijklmnopqrstuvwxyz234567"
	b := make([]byte, n)
	for i := range b {
		b[i] = a[r.IntN(len(a))]
	}
	return string(b)
}

func xtHex(r *rand.Rand, n int) string {
	const a = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = a[r.IntN(len(a))]
	}
	return string(b)
}

func TestDNSExfilTunnel(t *testing.T) {
	for _, qtype := range []uint16{16, 1} {
		t.Run(fmt.Sprintf("qtype=%d", qtype), func(t *testing.T) {
			x := xtEngine(NewDNSExfil(DefaultConfig()))
			r := rand.New(rand.NewPCG(9, 9))
			xtBrowseDNS(x, "10.10.0.9", 0, 120, 1)
			sent := 0
			for s := 0.0; s < 600; s += 0.8 {
				name := xtB32(r, 52) + "." + xtB32(r, 20+r.IntN(33)) + ".t.example-tunnel.net"
				n := len(x.fs)
				x.feed(xtDNS("10.10.0.9", xtDC, xtMin(120+s/60), qtype, 1, name))
				sent++
				if n == 0 && len(x.fs) > 0 {
					t.Logf("first finding after %d queries (%.0f s): %s score %.2f subs %v", sent, s, x.fs[0].FQDN, x.fs[0].Score, x.fs[0].SubScores)
				}
			}
			fs := x.kind(KindDNSExfil)
			if len(fs) == 0 {
				t.Fatal("no finding")
			}
			f := fs[len(fs)-1]
			if f.FQDN != "example-tunnel.net" || f.Dst != netip.MustParseAddr(xtDC) || f.DstPort != 53 || f.Src != netip.MustParseAddr("10.10.0.9") {
				t.Errorf("finding about %v -> %v:%d %q", f.Src, f.Dst, f.DstPort, f.FQDN)
			}
			if f.Evidence.Count < 300 || len(f.Evidence.Names) == 0 {
				t.Errorf("evidence %+v", f.Evidence)
			}
			t.Logf("last: score %.2f %s, %d names, subs %v, extra %v", f.Score, f.Severity, f.Evidence.Count, f.SubScores, f.Evidence.Extra)
			if qtype == 16 && f.Score < 0.75 {
				t.Errorf("TXT tunnel scores %.2f, want high", f.Score)
			}
		})
	}
}

// TestDNSExfilOneFlow: one socket carries the whole tunnel (as dnscat2
// does): the record names 8 queries and counts 150.
func TestDNSExfilOneFlow(t *testing.T) {
	for _, suffix := range []string{".tun.example.org", ""} {
		t.Run("suffix="+suffix, func(t *testing.T) {
			x := xtEngine(NewDNSExfil(DefaultConfig()))
			r := rand.New(rand.NewPCG(3, 3))
			var names []string
			for range flow.MaxDNSNames {
				names = append(names, "dnscat."+xtHex(r, 60)+"."+xtHex(r, 40)+suffix)
			}
			rec := xtDNS("10.10.0.21", "10.1.0.99", xtMin(0), 15, 150, names...)
			rec.End = xtMin(1)
			x.feed(rec)
			fs := x.kind(KindDNSExfil)
			if len(fs) != 1 {
				t.Fatalf("%d findings", len(fs))
			}
			f := fs[0]
			want := strings.TrimPrefix(suffix, ".tun.")
			if f.FQDN != want || f.Evidence.Count != 150 || f.Dst.String() != "10.1.0.99" {
				t.Errorf("fqdn %q count %d dst %v", f.FQDN, f.Evidence.Count, f.Dst)
			}
			t.Logf("score %.2f %s subs %v", f.Score, f.Severity, f.SubScores)
		})
	}
	// The same socket with 8 names under 8 domains (a forwarder's
	// socket): the unsampled queries are not attributed.
	x := xtEngine(NewDNSExfil(DefaultConfig()))
	r := rand.New(rand.NewPCG(4, 4))
	var names []string
	for i := range flow.MaxDNSNames {
		names = append(names, xtHex(r, 40)+fmt.Sprintf(".d%d.example", i))
	}
	x.feed(xtDNS("10.10.0.22", xtDC, xtMin(0), 1, 150, names...))
	if len(x.fs) != 0 {
		t.Errorf("mixed-domain socket raised %d findings", len(x.fs))
	}
}

// xtBrowsingNames are names browsing asks for: ordinary ones, CDN and
// cloud names with hashed or numbered labels, ad and video hosts, reverse
// lookups.
func xtBrowsingName(r *rand.Rand) (string, uint16) {
	alnum := func(n int) string {
		const a = "abcdefghijklmnopqrstuvwxyz0123456789"
		b := make([]byte, n)
		for i := range b {
			b[i] = a[r.IntN(len(a))]
		}
		return string(b)
	}
	switch r.IntN(14) {
	case 0:
		return fmt.Sprintf("e%d.dscb.akamaiedge.net", r.IntN(9999)), 1
	case 1:
		return fmt.Sprintf("r%d---sn-%s.googlevideo.com", 1+r.IntN(8), alnum(8)), 1
	case 2:
		return "d" + alnum(13) + ".cloudfront.net", 1
	case 3:
		return fmt.Sprintf("prod-api-lb-%d.eu-west-1.elb.amazonaws.com", r.IntN(1e9)), 1
	case 4:
		return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa", r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(256)), 12
	case 5:
		return fmt.Sprintf("a%d.w10.akamai.net", r.IntN(2000)), 28
	case 6:
		return fmt.Sprintf("img%d.wikia.nocookie.net", r.IntN(20)), 1
	case 7:
		return fmt.Sprintf("%s.safeframe.googlesyndication.com", xtHex(r, 32)), 1
	case 8:
		return fmt.Sprintf("www.site%d.example.com", r.IntN(300)), 1
	case 9:
		return "safebrowsing-cache.google.com", 1
	case 10:
		return fmt.Sprintf("star-mini.c10r.facebook.com"), 28
	case 11:
		return fmt.Sprintf("%s-%d.trafficmanager.net", []string{"outlook-emea", "teams-prod", "onedrive-eu"}[r.IntN(3)], r.IntN(40)), 5
	case 12:
		return fmt.Sprintf("fonts.gstatic.com"), 1
	}
	return fmt.Sprintf("cdn%d.jsdelivr.net", r.IntN(4)), 1
}

// xtBrowseDNS: src asks its resolver for browsing names about twice a
// minute, one query per flow.
func xtBrowseDNS(x *xtRun, src string, from, to float64, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 5))
	for m := from; m < to; m += r.ExpFloat64() * 0.5 {
		name, qt := xtBrowsingName(r)
		x.feed(xtDNS(src, xtDC, xtMin(m), qt, 1, name))
	}
}

func TestDNSExfilBenign(t *testing.T) {
	x := xtEngine(NewDNSExfil(DefaultConfig()))
	// 30 hosts browse for 6 hours (one after another: each key's order is
	// what matters).
	for h := range 30 {
		xtBrowseDNS(x, fmt.Sprintf("10.10.0.%d", 30+h), 0, 360, uint64(h))
	}
	// The internal DNS trap: domain-joined hosts ask the DC for the
	// domain's services and hosts.
	r := rand.New(rand.NewPCG(7, 7))
	internal := []string{"_ldap._tcp.default-first-site-name._sites.dc._msdcs.corp.example", "_kerberos._tcp.corp.example",
		"dc01.corp.example", "files01.corp.example", "wpad.corp.example", "_ldap._tcp.pdc._msdcs.corp.example",
		"_gc._tcp.default-first-site-name._sites.corp.example", "mon01.corp.example", "isatap", "wpad"}
	for m := 0.0; m < 360; m += 0.05 {
		src := fmt.Sprintf("10.10.1.%d", 1+r.IntN(60))
		x.feed(xtDNS(src, xtDC, xtMin(m), 33, 1, internal[r.IntN(len(internal))]))
	}
	// A monitoring server resolving 400 internal hosts every 5 minutes.
	for m := 0.0; m < 360; m += 5 {
		for i := range 400 {
			x.feed(xtDNS("10.1.0.50", xtDC, xtMin(m+float64(i)/1000), 1, 1, fmt.Sprintf("ws%04d.corp.example", i)))
		}
	}
	if fs := x.kind(KindDNSExfil); len(fs) > 0 {
		for _, f := range fs[:min(len(fs), 5)] {
			t.Errorf("false positive: %v %q score %.2f %v", f.Src, f.FQDN, f.Score, f.Evidence)
		}
	}
	st := x.e.DetectorStats()[KindDNSExfil]
	t.Logf("state after %d records: %+v", x.e.Stats().Records, st)
}

func TestDNSExfilNameInfo(t *testing.T) {
	d := NewDNSExfil(DefaultConfig()).(*DNSExfil)
	src, res := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.53")
	for _, tc := range []struct {
		name   string
		domain string
		qual   bool
		skip   bool
	}{
		{"e1234.dscb.akamaiedge.net", "akamaiedge.net", false, false},
		{"r3---sn-4g5e6nsz.googlevideo.com", "googlevideo.com", false, false},
		{"d2c8v52ll5s99u.cloudfront.net", "cloudfront.net", false, false},
		{"_ldap._tcp.default-first-site-name._sites.dc._msdcs.corp.example", "corp.example", false, false},
		{"ogz2gvzaovrwk43uob2gk3tuebqw4zbamfzhs5dimfzgk3lfnruw4zzanj2xg5dbmzxw.a.t.example-tunnel.net", "example-tunnel.net", true, false},
		{"dnscat.546b03f50000000000a6023ed4df184d6ac5c2628b47714fdee584fed739.5a03b5b1e1aa8f8fdb1bbe8d5e04952141f7d4f82c7e3b06dcc8b87fad7a.19e4d098dc8c618f8d81cfeb02", "", true, false},
		{"4k2h9x7q1m3b5v8n.evil.example", "evil.example", true, false}, // 16 random alnum
		{"DNSCAT.F97C01F5006C798B8D6E990002E3772BC8.example.COM", "example.COM", true, false},
		{"1.0.0.127.in-addr.arpa", "", false, true},
		{"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa.", "", false, true},
		{"a.b", "", false, true},
	} {
		var in dnsNameInfo
		d.nameInfo(&in, tc.name, src, res)
		if in.domain != tc.domain || in.qual != tc.qual || in.skip != tc.skip {
			t.Errorf("%s: domain %q qual %v skip %v (label %d entropy %.2f), want %q %v %v",
				tc.name, in.domain, in.qual, in.skip, in.label, in.entropy, tc.domain, tc.qual, tc.skip)
		}
	}
	// Case does not split a domain.
	var a, b dnsNameInfo
	d.nameInfo(&a, "x.Example.COM", src, res)
	d.nameInfo(&b, "y.example.com.", src, res)
	if a.group != b.group {
		t.Error("group depends on case")
	}
}

func TestDNSDistinct(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	for _, n := range []int{10, 50, 150, 500} {
		var a, b dnsBitmap
		for i := range n {
			h := dnsNameHash(xtHex(r, 30))
			if i%2 == 0 {
				a.set(h)
			} else {
				b.set(h)
			}
			a.set(h) // a repeat changes nothing
		}
		est := dnsDistinct(&a, &b)
		if e := (est - float64(n)) / float64(n); e < -0.25 || e > 0.25 {
			t.Errorf("%d names estimated %.0f", n, est)
		}
		t.Logf("%d distinct names: estimate %.1f", n, est)
	}
}

func TestDNSExfilAllowlist(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Allow = &Allowlist{Domains: []string{"*.example-tunnel.net"}}
	x := xtEngine(NewDNSExfil(cfg))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		x.feed(xtDNS("10.10.0.9", xtDC, xtMin(float64(i)/60), 16, 1, xtB32(r, 60)+".t.example-tunnel.net"))
	}
	// The domain is what is allowed: nothing (the finding's domain is the
	// registered domain, and "*.example-tunnel.net" covers it).
	if len(x.fs) != 0 {
		t.Errorf("allowlisted domain raised %d findings", len(x.fs))
	}
}

func TestDNSExfilMemoryBound(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DNSExfil.MaxKeys = 512
	d := NewDNSExfil(cfg).(*DNSExfil)
	r := rand.New(rand.NewPCG(5, 5))
	prop := func(*Finding) {}
	for i := range 50000 {
		src := fmt.Sprintf("10.10.%d.%d", i%7, i%250+1)
		d.Observe(xtDNS(src, xtDC, xtMin(float64(i)/200), 1, 1, xtHex(r, 30)+fmt.Sprintf(".dom%d.example", i%3000)), prop)
	}
	st := d.Stats()
	if d.keys.len() > 512 || d.hosts.len() > 128 || st.Evictions == 0 {
		t.Errorf("keys %d hosts %d evictions %d", d.keys.len(), d.hosts.len(), st.Evictions)
	}
	t.Logf("stats %+v: %d bytes per key", st, st.Bytes/max(st.Keys, 1))
	d.Tick(xtMin(3*24*60), prop)
	if st := d.Stats(); st.Keys != 0 || d.domains.held != 0 || d.exts != 0 || d.sampleBytes != 0 {
		t.Errorf("after expiry %+v, %d domain bytes, %d extensions with %d sample bytes", st, d.domains.held, d.exts, d.sampleBytes)
	}
}

// BenchmarkDNSExfilObserve: the steady path: hosts asking for browsing
// names (no state but the host's) and one host's tunnel (an existing key).
func BenchmarkDNSExfilObserve(b *testing.B) {
	d := NewDNSExfil(DefaultConfig())
	r := rand.New(rand.NewPCG(1, 1))
	rs := make([]*flow.Record, 4096)
	for i := range rs {
		src := fmt.Sprintf("10.10.%d.%d", i%4, i%250+1)
		name, qt := xtBrowsingName(r)
		if i%8 == 0 {
			src, name, qt = "10.10.9.9", xtB32(r, 52)+"."+xtB32(r, 30)+".t.example-tunnel.net", 16
		}
		rs[i] = xtDNS(src, xtDC, xtMin(float64(i)/1000), qt, 1, name)
	}
	prop := func(*Finding) {}
	for _, rec := range rs {
		d.Observe(rec, prop)
	}
	base := rs[len(rs)-1].End
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := rs[i%len(rs)]
		rec.End = base.Add(time.Duration(i) * time.Millisecond)
		rec.Start = rec.End.Add(-30 * time.Millisecond)
		d.Observe(rec, prop)
	}
	b.StopTimer()
	st := d.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(st.Bytes)/float64(max(st.Keys, 1)), "B/key")
}

// charEntropy is the definition labelStats computes in one pass: the
// counts first, then the fixed-point terms of the distinct characters.
func charEntropy(s string) float64 {
	if len(s) >= len(kLog2) {
		s = s[:len(kLog2)-1]
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[lowerASCII(s[i])]++
	}
	var sum uint64
	for _, k := range counts {
		sum += kLog2kFixed[k]
	}
	return kLog2[len(s)] - float64(sum)/(1<<kLog2kShift)/float64(len(s))
}

// TestLabelStatsExact checks the one-pass entropy against its definition
// bit for bit (an entropy off by one ulp could move a name across
// MinEntropy), the definition against the plain floating-point formula
// within 10⁻⁹, and the digits against a plain count, labels over 63 bytes
// included. A label that should sit exactly on a threshold (eight
// characters four times each: 3 bits) does.
func TestLabelStatsExact(t *testing.T) {
	if e, _ := labelStats("aaaabbbbccccddddeeeeffffgggghhhh"); e != 3 {
		t.Fatalf("eight characters four times each: entropy %v, want exactly 3", e)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	const alphabet = "0123456789abcdefXYZ.-_"
	for range 200000 {
		b := make([]byte, 1+rng.IntN(120))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		label := string(b)
		wantDigits := 0
		for _, c := range []byte(label) {
			if '0' <= c && c <= '9' {
				wantDigits++
			}
		}
		e, digits := labelStats(label)
		if want := charEntropy(label); e != want || digits != wantDigits {
			t.Fatalf("labelStats(%q) = %v, %d; want %v, %d", label, e, digits, want, wantDigits)
		}
		lt := strings.ToLower(label[:min(len(label), 63)])
		var counts [256]int
		for _, c := range []byte(lt) {
			counts[c]++
		}
		var fl float64
		for _, k := range counts {
			if k > 0 {
				fl -= float64(k) / float64(len(lt)) * math.Log2(float64(k)/float64(len(lt)))
			}
		}
		if math.Abs(e-fl) > 1e-9 {
			t.Fatalf("labelStats(%q) = %v, the plain formula %v", label, e, fl)
		}
		if n := countDigits(label); n != wantDigits {
			t.Fatalf("countDigits(%q) = %d, want %d", label, n, wantDigits)
		}
	}
}
