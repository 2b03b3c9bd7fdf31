package detect

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/flow"
)

// lmSharedPcaps returns ../shared/pcaps beside the repository, skipping the
// test when it is absent.
func lmSharedPcaps(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	dir := filepath.Join(root, "..", "shared", "pcaps")
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST.md")); err != nil {
		t.Skipf("shared captures not found: %v", err)
	}
	return dir
}

// lmReplay runs a capture through the sensor and an engine with the
// given detectors, ticking every 10 s of packet time, and returns every
// emitted finding.
func lmReplay(t testing.TB, path string, homeNets []netip.Prefix, dets ...Detector) []Finding {
	t.Helper()
	src, err := pcapfile.OpenSource([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var col lmCollector
	eng := NewEngine("test", col.add, dets...)
	tcfg := capture.DefaultTableConfig()
	if homeNets != nil {
		tcfg.HomeNets = flow.NewNetworks(homeNets)
	}
	tcfg.Seed = 1
	sensor := capture.NewSensor(capture.Config{Table: tcfg}, eng.Record)
	if err := sensor.Run(context.Background(), &lmTickSource{src: src, eng: eng}); err != nil {
		var inc *capture.IncompleteError
		if !errors.As(err, &inc) {
			t.Fatal(err)
		}
	}
	if st := sensor.Stats(); !st.Last.IsZero() {
		eng.Tick(st.Last)
	}
	return col.fs
}

type lmTickSource struct {
	src  capture.PacketSource
	eng  *Engine
	next int64
}

func (s *lmTickSource) Next(p *pcapfile.Packet) error {
	err := s.src.Next(p)
	const every = int64(10 * time.Second)
	if err == nil && p.Timestamp >= s.next {
		if s.next != 0 {
			s.eng.Tick(time.Unix(0, p.Timestamp))
		}
		s.next = (p.Timestamp/every + 1) * every
	}
	return err
}

// lmExpect is one finding a capture must raise.
type lmExpect struct {
	kind     Kind
	src, dst string // dst empty: any
}

func TestRealCapturesLateralScan(t *testing.T) {
	dir := lmSharedPcaps(t)
	ctu := []netip.Prefix{netip.MustParsePrefix("147.32.0.0/16")}
	cases := []struct {
		file string
		nets []netip.Prefix
		want []lmExpect
		// allowed are findings that are neither required nor false
		// positives (src→dst pairs).
		allowed [][2]string
	}{
		{file: "LM_psexec_smb_dcerpc_epm_svcctl.pcapng", want: []lmExpect{{KindLateralMovement, "172.16.66.1", "172.16.66.36"}}},
		{file: "LM_WMI_ProcessCallCreate.pcapng", want: []lmExpect{{KindLateralMovement, "172.16.66.1", "172.16.66.36"}}},
		{file: "LM_rdp_sharprdp.pcapng", want: []lmExpect{{KindLateralMovement, "192.168.56.1", "192.168.56.101"}}},
		{file: "DCSync_krbtgt_dcerpc_smb.pcapng", want: []lmExpect{{KindLateralMovement, "172.16.66.1", "172.16.66.36"}},
			allowed: [][2]string{{"172.16.66.36", "172.16.66.1"}}},
		{file: "Discovery_dcerp_srvsvc_NetShareEnum.pcapng", allowed: [][2]string{{"172.16.66.1", "172.16.66.36"}}},
		{file: "evidence04.pcap", want: []lmExpect{
			{KindScan, "10.42.42.253", "10.42.42.50"}, {KindScan, "10.42.42.253", "10.42.42.56"}, {KindScan, "10.42.42.253", "10.42.42.25"}}},
		{file: "synscan.pcapng", want: []lmExpect{{KindScan, "172.16.0.8", "64.13.134.52"}}},
		{file: "malicious-ssh-bruteforce.pcap", nets: ctu, want: []lmExpect{{KindLateralMovement, "147.32.80.40", "147.32.80.37"}}},
		{file: "smb2.pcap"},
		{file: "ssh.pcap"},
		{file: "evidence03.pcap"},
		{file: "http_espn.pcapng"},
		{file: "test-cc-capture-1.pcap", nets: ctu},
		{file: "Example-1-2021-01-06-Emotet-infection.pcap"},
		{file: "2020-06-03-Dridex-infection-traffic.pcap"},
		{file: "S7_TP1200_MW100_5s_MW102_10s_Timer_sync.pcapng"},
		{file: "icmp-tunnel.pcap"},
		{file: "dns_exfiltration.pcap"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join(dir, c.file)
			if _, err := os.Stat(path); err != nil {
				t.Skip(err)
			}
			cfg := DefaultConfig()
			fs := lmReplay(t, path, c.nets, NewLateral(cfg), NewScan(cfg))
			for _, f := range fs {
				t.Logf("%s %s %s→%s:%d score %.2f %v subs %v peers %v notes %q",
					f.Status, f.Kind, f.Src, f.Dst, f.DstPort, f.Score, f.MITRE, f.SubScores, f.Evidence.Peers, f.Evidence.Notes)
			}
			for _, w := range c.want {
				if !slices.ContainsFunc(fs, func(f Finding) bool { return lmMatch(f, w) }) {
					t.Errorf("no %s finding %s → %s", w.kind, w.src, w.dst)
				}
			}
			for _, f := range fs {
				ok := slices.ContainsFunc(c.want, func(w lmExpect) bool { return lmMatch(f, w) }) ||
					slices.ContainsFunc(c.allowed, func(p [2]string) bool {
						return f.Src.String() == p[0] && (!f.Dst.IsValid() || f.Dst.String() == p[1])
					})
				if !ok {
					t.Errorf("unexpected %s finding %s → %s:%d score %.2f", f.Kind, f.Src, f.Dst, f.DstPort, f.Score)
				}
			}
		})
	}
}

func lmMatch(f Finding, w lmExpect) bool {
	return f.Kind == w.kind && f.Src.String() == w.src && (w.dst == "" || !f.Dst.IsValid() || f.Dst.String() == w.dst ||
		slices.ContainsFunc(f.Evidence.Peers, func(a netip.Addr) bool { return a.String() == w.dst }))
}

// lmCollector keeps deep copies of emitted findings.
type lmCollector struct{ fs []Finding }

func (c *lmCollector) add(f *Finding) {
	g := *f
	g.SubScores = slices.Clone(f.SubScores)
	g.MITRE = slices.Clone(f.MITRE)
	g.Evidence.Peers = slices.Clone(f.Evidence.Peers)
	g.Evidence.Ports = slices.Clone(f.Evidence.Ports)
	g.Evidence.Notes = slices.Clone(f.Evidence.Notes)
	c.fs = append(c.fs, g)
}
