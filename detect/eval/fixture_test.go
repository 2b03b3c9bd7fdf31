package eval

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/flowhound/flowhound/capture/synth"
)

// Fixture addresses.
var (
	fxBeaconSrc = netip.MustParseAddr("10.0.0.5")
	fxC2        = netip.MustParseAddr("203.0.113.7")
	fxUpdSrc    = netip.MustParseAddr("10.0.0.6")
	fxUpdDst    = netip.MustParseAddr("198.51.100.9")
	fxWebSrc    = netip.MustParseAddr("10.0.0.7")
	fxExfilSrc  = netip.MustParseAddr("10.0.0.8")
	fxDrop      = netip.MustParseAddr("192.0.2.200")
	fxStart     = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
)

const (
	fxBeats       = 40
	fxPeriod      = time.Minute
	fxC2Name      = "c2.evil.example"
	fxExfilChunks = 6
	fxExfilChunk  = 200_000
)

// writeFixture writes a small scenario: a 60 s TLS beacon (40 beats), a
// periodic benign update check (trap), random web browsing, and an exfil
// of six 200 kB uploads one minute apart. It returns the directory and
// the truth.
func writeFixture(t testing.TB) (string, *synth.ScenarioTruth) {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "scenario.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pw, err := synth.NewPcapWriter(f, synth.LinkTypeEthernet, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	mx := synth.NewMixer(pw, 0)

	var convs []synth.TCPConv
	port := uint16(40000)
	tls := func(src, dst netip.Addr, at time.Time, name string, out, in int) {
		port++
		convs = append(convs, synth.TCPConv{
			Orig: synth.Endpoint{Addr: src, Port: port}, Resp: synth.Endpoint{Addr: dst, Port: 443},
			Start: at, App: synth.AppTLS, ServerName: name, Seed: uint64(port),
			Messages: []synth.Message{{Len: out}, {FromResp: true, Len: in, Delay: 20 * time.Millisecond}},
		})
	}
	truth := &synth.ScenarioTruth{Profile: "fixture", Seed: 1, Start: fxStart, HomeNets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Hosts: 4}

	beacon := synth.Activity{ID: "beacon-1", Kind: "beacon", Variant: "https-sni", Src: fxBeaconSrc, Dsts: []netip.Addr{fxC2},
		DstPort: 443, Proto: "tcp", FQDN: fxC2Name, Period: fxPeriod}
	for i := range fxBeats {
		at := fxStart.Add(30*time.Second + time.Duration(i)*fxPeriod)
		tls(fxBeaconSrc, fxC2, at, fxC2Name, 600, 400)
		beacon.Beats = append(beacon.Beats, at)
		beacon.BytesOut += 600
		beacon.BytesIn += 400
	}
	beacon.Start, beacon.End, beacon.Flows = beacon.Beats[0], beacon.Beats[fxBeats-1].Add(time.Second), fxBeats

	upd := synth.Activity{ID: "update_check-1", Kind: "update_check", Benign: true, Src: fxUpdSrc, Dsts: []netip.Addr{fxUpdDst},
		DstPort: 443, Proto: "tcp", FQDN: "update.vendor.example"}
	for i := range 9 {
		at := fxStart.Add(time.Minute + time.Duration(i)*5*time.Minute)
		tls(fxUpdSrc, fxUpdDst, at, "update.vendor.example", 700, 5000)
		upd.Beats = append(upd.Beats, at)
	}
	upd.Start, upd.End = upd.Beats[0], upd.Beats[len(upd.Beats)-1].Add(time.Second)

	r := rand.New(rand.NewPCG(1, 2))
	for i := range 30 {
		at := fxStart.Add(time.Duration(r.Int64N(int64(40 * time.Minute))))
		dst := netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i%10)})
		tls(fxWebSrc, dst, at, "", 500+r.IntN(2000), 2000+r.IntN(40000))
	}

	exfil := synth.Activity{ID: "exfil-1", Kind: "exfil", Src: fxExfilSrc, Dsts: []netip.Addr{fxDrop}, DstPort: 443, Proto: "tcp",
		Start: fxStart.Add(10 * time.Minute)}
	for i := range fxExfilChunks {
		tls(fxExfilSrc, fxDrop, exfil.Start.Add(time.Duration(i)*time.Minute), "", fxExfilChunk, 300)
		exfil.BytesOut += fxExfilChunk
	}
	exfil.End, exfil.Flows = exfil.Start.Add(fxExfilChunks*time.Minute), fxExfilChunks

	slices.SortStableFunc(convs, func(a, b synth.TCPConv) int { return a.Start.Compare(b.Start) })
	for i := range convs {
		if err := mx.AddTCP(&convs[i]); err != nil {
			t.Fatal(err)
		}
	}
	mt, err := mx.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	truth.End = mt.End
	truth.Packets = mt.Packets
	truth.Flows = len(mt.Flows)
	truth.BenignPairs = 1 + 10 // the update check and the web servers
	truth.Activities = []synth.Activity{beacon, upd, exfil}
	b, err := json.MarshalIndent(truth, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, TruthFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, truth
}
