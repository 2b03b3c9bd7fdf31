package detect

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// TestBeaconRealCaptures replays the shared real captures
// (../shared/pcaps, skipped when absent).
//
// test-cc-capture-1.pcap: a scripted curl to https://testing.com every
// ~2.2 s. Keyed by SNI, found at the sixth beat: intervals 2.2 s with no
// spread, constant sizes, score 0.96.
//
// Example-1-2021-01-06-Emotet-infection.pcap: the Emotet C2 10.1.6.206 →
// 5.2.136.90:80 (HTTP POST to the bare address, so keyed by address) has
// only seven check-ins, 949 s apart ±3 %, and POST bodies that vary from
// 7 to 36 kB. The intervals are so tight (timing statistic X ≈ 0.015) that
// they count about 1.9 per gap (see beaconEvidence); the sizes count
// against it (spread 0.6, at the −0.5 floor: −0.25 per gap). At the sixth
// beat (five gaps) the score is 0.79, at the seventh (six gaps, E = 10.0)
// 1 − e^(−10/4.7) = 0.88: above the 0.7 threshold from MinBeats on. Duty cycle 0.12
// (each POST session lasts ~115 s), one source, so no damping. The RSTR
// connections between check-ins carry no payload and do not count.
//
// The benign captures — and every other shared capture — raise nothing:
// the S7 capture's one-second PLC polling is internal, NTP_sync is NTP,
// the rest has no schedule.
func TestBeaconRealCaptures(t *testing.T) {
	dir := beaconPcapDir(t)
	if dir == "" {
		t.Skip("no shared captures")
	}
	run := func(t *testing.T, file, nets string) []Finding {
		t.Helper()
		path := filepath.Join(dir, file)
		if _, err := os.Stat(path); err != nil {
			t.Skipf("%s absent", file)
		}
		recs := beaconReplay(t, beaconNets(t, nets), path)
		return beaconRun(NewBeacon(DefaultConfig()), recs)
	}
	const rfc1918 = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"

	t.Run("test-cc", func(t *testing.T) {
		fs := beaconLatest(run(t, "test-cc-capture-1.pcap", "147.32.0.0/16"))
		if len(fs) != 1 {
			t.Fatalf("%d findings, want 1: %+v", len(fs), fs)
		}
		f := fs[0]
		if f.Src != netip.MustParseAddr("147.32.80.37") || f.FQDN != "testing.com" || f.DstPort != 443 || f.Score < 0.9 {
			t.Errorf("finding %+v", f)
		}
		if f.Evidence.IntervalMedian < 2 || f.Evidence.IntervalMedian > 2.5 {
			t.Errorf("interval %v", f.Evidence.IntervalMedian)
		}
		t.Logf("%v → %s:%d score %.3f %v first at %d beats", f.Src, f.FQDN, f.DstPort, f.Score, f.SubScores, f.Evidence.Count)
	})

	t.Run("emotet", func(t *testing.T) {
		all := run(t, "Example-1-2021-01-06-Emotet-infection.pcap", rfc1918)
		fs := beaconLatest(all)
		if len(fs) != 1 {
			t.Fatalf("%d findings, want 1: %+v", len(fs), fs)
		}
		f := fs[0]
		if f.Src != netip.MustParseAddr("10.1.6.206") || f.Dst != netip.MustParseAddr("5.2.136.90") || f.DstPort != 80 ||
			f.Score < DefaultConfig().Beacon.Threshold || f.Evidence.Count != 7 {
			t.Errorf("finding %+v", f)
		}
		first := all[0]
		if first.Evidence.Count != 6 || first.Score < 0.75 || f.Score < 0.85 {
			t.Errorf("first at %d beats with %.3f, last %.3f", first.Evidence.Count, first.Score, f.Score)
		}
		t.Logf("first at beat %d: %.3f; at beat %d: %.3f %v %+v", first.Evidence.Count, first.Score, f.Evidence.Count, f.Score, f.SubScores, f.Evidence)
	})

	for _, file := range []string{"smb2.pcap", "ssh.pcap", "NTP_sync.pcap", "http_espn.pcapng", "evidence03.pcap",
		"S7_TP1200_MW100_5s_MW102_10s_Timer_sync.pcapng", "2020-06-03-Dridex-infection-traffic.pcap"} {
		t.Run(file, func(t *testing.T) {
			for _, f := range beaconLatest(run(t, file, rfc1918)) {
				t.Errorf("benign capture flagged: %v → %v:%d %s %.3f %v", f.Src, f.Dst, f.DstPort, f.FQDN, f.Score, f.SubScores)
			}
		})
	}
}
