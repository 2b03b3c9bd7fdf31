package eval

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowhound/flowhound/capture/synth"
	"github.com/flowhound/flowhound/detect"
)

var (
	t0    = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	hostA = netip.MustParseAddr("10.1.0.10")
	hostB = netip.MustParseAddr("10.1.0.20")
	hostC = netip.MustParseAddr("10.1.0.30")
	c2IP  = netip.MustParseAddr("203.0.113.50")
	cdnIP = netip.MustParseAddr("198.51.100.80")
	ntpIP = netip.MustParseAddr("192.0.2.123")
	other = netip.MustParseAddr("192.0.2.99")
)

func at(min float64) time.Time { return t0.Add(time.Duration(min * float64(time.Minute))) }

// matchTruth is a hand-written truth: a beacon reached by IP and by name
// through a CDN, a lateral-movement chain A→B→C, a scan, and an NTP trap.
func matchTruth() []synth.Activity {
	return []synth.Activity{
		{ID: "beacon-1", Kind: "beacon", Src: hostA, Dsts: []netip.Addr{c2IP}, FQDN: "c2.evil.example", Start: at(0), End: at(60)},
		{ID: "lateral-1", Kind: "lateral_movement", Src: hostA, Dsts: []netip.Addr{hostB}, Chain: []netip.Addr{hostA, hostB, hostC}, Start: at(30), End: at(40)},
		{ID: "scan-1", Kind: "scan", Src: hostC, Dsts: []netip.Addr{hostA, hostB}, Start: at(50), End: at(55)},
		{ID: "ntp-1", Kind: "ntp", Benign: true, Src: hostB, Dsts: []netip.Addr{ntpIP}, Start: at(0), End: at(120)},
	}
}

func TestMatches(t *testing.T) {
	acts := matchTruth()
	slack := time.Minute
	fd := func(kind detect.Kind, src, dst netip.Addr, fqdn string, first, last float64) detect.Finding {
		return detect.Finding{Kind: kind, Src: src, Dst: dst, FQDN: fqdn, FirstSeen: at(first), LastSeen: at(last), Time: at(last)}
	}
	var zero netip.Addr
	tests := []struct {
		name  string
		f     detect.Finding
		class string
		ids   []string
	}{
		{"true positive by dst", fd(detect.KindBeacon, hostA, c2IP, "", 10, 20), ClassTP, []string{"beacon-1"}},
		{"FQDN equal through a CDN", fd(detect.KindBeacon, hostA, cdnIP, "c2.evil.example", 10, 20), ClassTP, []string{"beacon-1"}},
		{"FQDN subdomain, other case, trailing dot", fd(detect.KindBeacon, hostA, cdnIP, "X.C2.Evil.Example.", 10, 20), ClassTP, []string{"beacon-1"}},
		{"FQDN look-alike is not a subdomain", fd(detect.KindBeacon, hostA, cdnIP, "notc2.evil.example", 10, 20), ClassUnlabelled, nil},
		{"parent domain is not a match", fd(detect.KindBeacon, hostA, cdnIP, "evil.example", 10, 20), ClassUnlabelled, nil},
		{"wrong source", fd(detect.KindBeacon, hostB, c2IP, "", 10, 20), ClassUnlabelled, nil},
		{"FP on a trap, any kind", fd(detect.KindBeacon, hostB, ntpIP, "", 10, 20), ClassTrap, []string{"ntp-1"}},
		{"FP on a trap, long connection", fd(detect.KindLongConnection, hostB, ntpIP, "", 10, 20), ClassTrap, []string{"ntp-1"}},
		{"unlabelled FP", fd(detect.KindBeacon, hostA, other, "", 10, 20), ClassUnlabelled, nil},
		{"other kind on a malicious activity is related", fd(detect.KindLongConnection, hostA, c2IP, "", 10, 20), ClassRelated, []string{"beacon-1"}},
		{"overlaps the start", fd(detect.KindBeacon, hostA, c2IP, "", -30, 0.5), ClassTP, []string{"beacon-1"}},
		{"ends within the slack before the start", fd(detect.KindBeacon, hostA, c2IP, "", -30, -0.5), ClassTP, []string{"beacon-1"}},
		{"ends before the start beyond the slack", fd(detect.KindBeacon, hostA, c2IP, "", -30, -2), ClassUnlabelled, nil},
		{"starts after the end beyond the slack", fd(detect.KindBeacon, hostA, c2IP, "", 62, 70), ClassUnlabelled, nil},
		{"starts within the slack after the end", fd(detect.KindBeacon, hostA, c2IP, "", 60.5, 70), ClassTP, []string{"beacon-1"}},
		{"no first/last seen: time is used", detect.Finding{Kind: detect.KindBeacon, Src: hostA, Dst: c2IP, Time: at(59)}, ClassTP, []string{"beacon-1"}},
		{"lateral first hop", fd(detect.KindLateralMovement, hostA, hostB, "", 31, 32), ClassTP, []string{"lateral-1"}},
		{"lateral second hop of the chain", fd(detect.KindLateralMovement, hostB, hostC, "", 35, 36), ClassTP, []string{"lateral-1"}},
		{"lateral hop not in the chain", fd(detect.KindLateralMovement, hostC, hostA, "", 35, 36), ClassUnlabelled, nil},
		{"lateral fan-out with zero dst", fd(detect.KindLateralMovement, hostA, zero, "", 31, 39), ClassTP, []string{"lateral-1"}},
		{"lateral fan-out from a later hop", fd(detect.KindLateralMovement, hostB, zero, "", 35, 39), ClassTP, []string{"lateral-1"}},
		{"scan fan-out with zero dst", fd(detect.KindScan, hostC, zero, "", 50, 52), ClassTP, []string{"scan-1"}},
		{"scan fan-out outside the time", fd(detect.KindScan, hostC, zero, "", 80, 82), ClassUnlabelled, nil},
		{"beacon with zero dst does not fan out", fd(detect.KindBeacon, hostA, zero, "", 10, 20), ClassUnlabelled, nil},
		{"scan fan-out by a trap's source", fd(detect.KindScan, hostB, zero, "", 10, 12), ClassTrap, []string{"ntp-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			class, idx := classify(acts, &tc.f, slack)
			var ids []string
			for _, i := range idx {
				ids = append(ids, acts[i].ID)
			}
			if class != tc.class || !equalStrings(ids, tc.ids) {
				t.Errorf("classify = %s %v, want %s %v", class, ids, tc.class, tc.ids)
			}
			for _, i := range idx {
				if !Matches(&acts[i], &tc.f, slack) && class == ClassTP {
					t.Errorf("Matches(%s) false for a true positive", acts[i].ID)
				}
			}
		})
	}
}

func TestUnderDomain(t *testing.T) {
	for _, tc := range []struct {
		name, domain string
		want         bool
	}{
		{"a.example.com", "example.com", true},
		{"example.com", "example.com", true},
		{"EXAMPLE.com.", "example.COM", true},
		{"badexample.com", "example.com", false},
		{"example.com", "a.example.com", false},
		{"", "example.com", false},
		{"example.com", "", false},
	} {
		if got := UnderDomain(tc.name, tc.domain); got != tc.want {
			t.Errorf("UnderDomain(%q, %q) = %v", tc.name, tc.domain, got)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
