package detect

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"
)

func TestRegisteredDomain(t *testing.T) {
	for in, want := range map[string]string{
		"a.b.t.example-tunnel.net": "example-tunnel.net",
		"www.bbc.co.uk":            "bbc.co.uk",
		"dnscat.546b03.f5":         "546b03.f5",
		"localhost":                "localhost",
		"x.example.com.":           "example.com",
		"foo.com.au":               "foo.com.au",
		"a.foo.com.au":             "foo.com.au",
	} {
		if got := RegisteredDomain(in); got != want {
			t.Errorf("RegisteredDomain(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAllowlist(t *testing.T) {
	doms, err := ParseDomains([]string{"*.windowsupdate.com", "ntp.example.org."})
	if err != nil {
		t.Fatal(err)
	}
	a := &Allowlist{Domains: doms}
	for name, want := range map[string]bool{
		"windowsupdate.com": true, "fe2.update.windowsupdate.com": true, "evilwindowsupdate.com": false,
		"ntp.example.org": true, "x.ntp.example.org": false, "": false,
	} {
		if got := a.AllowedName(name); got != want {
			t.Errorf("AllowedName(%q) = %v, want %v", name, got, want)
		}
	}
	if _, err := ParseDomains([]string{"*."}); err == nil {
		t.Error("empty pattern accepted")
	}
	var nilList *Allowlist
	if nilList.AllowedName("x") || nilList.AllowedPair(netip.Addr{}, netip.Addr{}) {
		t.Error("nil allowlist allows")
	}
}

func TestFindingUIDStable(t *testing.T) {
	a := FindingUID(KindBeacon, "10.0.0.1", "1.2.3.4", "443")
	if a != FindingUID(KindBeacon, "10.0.0.1", "1.2.3.4", "443") || a == FindingUID(KindBeacon, "10.0.0.1", "1.2.3.44", "43") {
		t.Fatal("uid not a function of its parts")
	}
}

func TestFindingJSONRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	f := Finding{UID: "Fabc", Time: t0, Kind: KindBeacon, Status: StatusNew, Score: 0.8123, Severity: SeverityHigh,
		Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("203.0.113.5"), DstPort: 443, Proto: "tcp",
		FQDN: "c2.example", Evidence: Evidence{Connections: 12, IntervalMedian: 60}, MITRE: []string{"T1071.001"},
		FirstSeen: t0.Add(-time.Hour), LastSeen: t0, Sensor: "s1", SubScores: []SubScore{{"interval", 0.9}}}
	b, err := json.Marshal(&f)
	if err != nil {
		t.Fatal(err)
	}
	var back Finding
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.UID != f.UID || back.Score != 0.812 || back.Dst != f.Dst || back.Evidence.Connections != 12 || !back.FirstSeen.Equal(f.FirstSeen) {
		t.Fatalf("round trip: %s -> %+v", b, back)
	}
}

func TestPrevalence(t *testing.T) {
	p := NewPrevalence(3, 2)
	a, b, c, d := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.4")
	p.Observe("x", a)
	p.Observe("x", a)
	p.Observe("x", b)
	if n := p.Observe("x", c); n != 3 {
		t.Fatalf("count %d", n)
	}
	if n := p.Observe("x", d); n != 3 {
		t.Fatalf("count beyond cap %d", n)
	}
	p.Observe("y", a)
	p.Observe("z", a) // over maxKeys: relearn
	if p.Len() > 2 {
		t.Fatalf("len %d", p.Len())
	}
}
