package detect

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/flowhound/flowhound/flow"
)

func TestScanProbeStates(t *testing.T) {
	for _, c := range []struct {
		state   string
		out, in uint64
		want    bool
	}{
		{"S0", 0, 0, true}, {"REJ", 0, 0, true}, {"RSTOS0", 0, 0, true}, {"RSTRH", 0, 0, true}, {"SH", 0, 0, true},
		{"RSTO", 0, 0, true},    // half-open probe of an open port: SYN, SYN-ACK, RST
		{"RSTR", 0, 22, true},   // a banner, then the server resets
		{"RSTR", 24, 22, false}, // the client spoke: a session
		{"OTH", 0, 0, true}, {"OTH", 10, 0, false},
		{"SF", 0, 0, false}, {"SF", 300, 4000, false}, {"S1", 0, 0, false},
	} {
		r := lmState(lmRec(0, time.Millisecond, "10.10.1.5", "10.10.1.6", 80, c.out, c.in), c.state)
		if got := scanProbe(r); got != c.want {
			t.Errorf("%s %d/%d: probe %v, want %v", c.state, c.out, c.in, got, c.want)
		}
	}
	udp := lmRec(0, 0, "10.10.1.5", "10.10.1.6", 161, 0, 0)
	udp.Proto = flow.ProtoUDP
	if scanProbe(udp) {
		t.Error("UDP counted")
	}
}

func TestScanVertical(t *testing.T) {
	run := newLmRun(t, NewScan(DefaultConfig()))
	for p := range 1000 {
		state := "REJ"
		if p%3 == 0 {
			state = "S0"
		}
		run.feed(lmState(lmRec(time.Duration(p)*10*time.Millisecond, time.Millisecond, "10.42.42.253", "10.42.42.50", uint16(1+p), 0, 0), state))
	}
	fs := run.byUID()
	if len(fs) != 1 {
		t.Fatalf("%d findings, want 1", len(fs))
	}
	f := fs[0]
	if f.Kind != KindScan || f.Dst != netip.MustParseAddr("10.42.42.50") || !slices.Contains(f.MITRE, "T1046") {
		t.Errorf("finding %s → %s %v", f.Kind, f.Dst, f.MITRE)
	}
	if f.Evidence.Count < 700 || f.Evidence.Count > 1150 || f.Score < 0.8 {
		t.Errorf("count %d score %.2f", f.Evidence.Count, f.Score)
	}
	// The first emission comes at the threshold.
	if first := run.col.fs[0]; first.Evidence.Count < 50 || first.Evidence.Count > 60 || first.Score < 0.55 {
		t.Errorf("first emission count %d score %.2f", first.Evidence.Count, first.Score)
	}
}

func TestScanHorizontal(t *testing.T) {
	run := newLmRun(t, NewScan(DefaultConfig()))
	for i := range 50 {
		dst := netip.AddrFrom4([4]byte{10, 10, 4, byte(i + 1)}).String()
		run.feed(lmRec(time.Duration(i)*200*time.Millisecond, 3*time.Second, "10.10.1.16", dst, 445, 0, 0))
	}
	fs := run.byUID()
	if len(fs) != 1 {
		t.Fatalf("%d findings, want 1", len(fs))
	}
	f := fs[0]
	if f.Dst.IsValid() || f.DstPort != 445 || f.Evidence.Count < 30 || len(f.Evidence.Peers) == 0 {
		t.Errorf("dst %v port %d count %d peers %v", f.Dst, f.DstPort, f.Evidence.Count, f.Evidence.Peers)
	}
}

// TestScanSlow: 80 ports at one every 12 s spans two windows; the previous
// window's bitmap keeps the count.
func TestScanSlow(t *testing.T) {
	run := newLmRun(t, NewScan(DefaultConfig()))
	for p := range 80 {
		run.feed(lmState(lmRec(time.Duration(p)*12*time.Second, time.Millisecond, "10.10.1.16", "10.10.1.17", uint16(1000+p), 0, 0), "REJ"))
	}
	if len(run.byUID()) != 1 {
		t.Errorf("slow vertical scan missed")
	}
}

func TestScanBusyClient(t *testing.T) {
	run := newLmRun(t, NewScan(DefaultConfig()))
	for i := range 20000 {
		dst := netip.AddrFrom4([4]byte{10, 1, byte(i % 7), byte(i % 250)}).String()
		ext := netip.AddrFrom4([4]byte{93, 184, byte(i % 200), byte(i % 97)}).String()
		at := time.Duration(i) * 30 * time.Millisecond
		run.feed(lmRec(at, time.Second, "10.10.1.5", dst, uint16(8000+i%40), 400, 9000))
		run.feed(lmRec(at, time.Second, "10.10.1.5", ext, 443, 900, 40000))
		if i%1000 == 0 { // a few failures: a dead server, a blocked port
			run.feed(lmRec(at, 3*time.Second, "10.10.1.5", "10.1.9.9", uint16(8000+i/1000), 0, 0))
			run.feed(lmRec(at, 3*time.Second, "10.10.1.5", ext, 8443, 0, 0))
		}
	}
	run.none()
}

func TestScanAllowlisted(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Allow = &Allowlist{Nets: flow.NewNetworks([]netip.Prefix{netip.MustParsePrefix("10.1.0.60/32")})}
	run := newLmRun(t, NewScan(cfg))
	for i := range 60 {
		dst := netip.AddrFrom4([4]byte{10, 10, 1, byte(i + 1)}).String()
		for p := range 60 {
			run.feed(lmState(lmRec(time.Duration(i*60+p)*time.Millisecond, time.Millisecond, "10.1.0.60", dst, uint16(p+1), 0, 0), "REJ"))
		}
	}
	run.none()
}

func TestScanExternal(t *testing.T) {
	// Vertical to one Internet host (synscan.pcapng): reported.
	run := newLmRun(t, NewScan(DefaultConfig()))
	for p := range 200 {
		run.feed(lmRec(time.Duration(p)*time.Millisecond, 0, "172.16.0.8", "64.13.134.52", uint16(p+1), 0, 0))
	}
	if len(run.byUID()) != 1 {
		t.Errorf("external vertical scan missed")
	}
	// Unanswered SYNs to 60 Internet hosts on 443 (blocked egress): not
	// yet; 150: a sweep.
	for _, c := range []struct {
		hosts int
		want  int
	}{{60, 0}, {150, 1}} {
		run := newLmRun(t, NewScan(DefaultConfig()))
		for i := range c.hosts {
			dst := netip.AddrFrom4([4]byte{93, 184, byte(i / 200), byte(i%200 + 1)}).String()
			run.feed(lmRec(time.Duration(i)*100*time.Millisecond, 0, "10.10.1.5", dst, 443, 0, 0))
		}
		if got := len(run.byUID()); got != c.want {
			t.Errorf("%d external hosts: %d findings, want %d", c.hosts, got, c.want)
		}
	}
	// Inbound scans from the Internet are not reported.
	run = newLmRun(t, NewScan(DefaultConfig()))
	for p := range 500 {
		run.feed(lmRec(time.Duration(p)*time.Millisecond, 0, "45.33.32.156", "10.10.1.5", uint16(p+1), 0, 0))
	}
	run.none()
}

func TestScanMemoryBound(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Scan.MaxHosts = 32
	d := NewScan(cfg)
	run := newLmRun(t, d)
	for i := range 1000 {
		src := netip.AddrFrom4([4]byte{10, 20, byte(i >> 8), byte(i)}).String()
		for k := range 10 {
			dst := netip.AddrFrom4([4]byte{10, 30, byte(k), byte(i)}).String()
			run.feed(lmRec(time.Duration(i*10+k)*time.Millisecond, 0, src, dst, uint16(1+k), 0, 0))
		}
	}
	st := d.Stats()
	if st.Keys > 32 || st.Evictions < 1000-32 {
		t.Errorf("stats %+v", st)
	}
	if st.Bytes > 32*4<<10 {
		t.Errorf("%d bytes for 32 sources", st.Bytes)
	}
	t.Logf("stats after 1000 sources at MaxHosts 32: %+v", st)
	run.none()
}
