package capture

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowhound/flowhound/flow"
)

// pkt is one packet of a scripted conversation between client c (10.0.0.1)
// and server s (192.0.2.9:443).
type pkt struct {
	at      time.Duration // since the start of the script
	fromC   bool          // sent by the client
	flags   uint8
	seq     uint32
	payload int
}

func clientPkt(at time.Duration, flags uint8, seq uint32, n int) pkt {
	return pkt{at, true, flags, seq, n}
}
func serverPkt(at time.Duration, flags uint8, seq uint32, n int) pkt {
	return pkt{at, false, flags, seq, n}
}

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

type recorder struct{ recs []flow.Record }

func (r *recorder) emit(rec *flow.Record) { r.recs = append(r.recs, *rec) }

func runScript(t *testing.T, cfg TableConfig, script []pkt) []flow.Record {
	t.Helper()
	var rec recorder
	tbl := NewTable(cfg, rec.emit)
	dec := NewDecoder()
	for _, p := range script {
		var frame []byte
		if p.fromC {
			frame = ether(0x0800, ipv4("10.0.0.1", "192.0.2.9", 6, tcp(40000, 443, p.seq, 1, p.flags, fill(p.payload))))
		} else {
			frame = ether(0x0800, ipv4("192.0.2.9", "10.0.0.1", 6, tcp(443, 40000, p.seq, 1, p.flags, fill(p.payload))))
		}
		d, err := dec.Decode(frame, linkEthernet, len(frame))
		if err != nil {
			t.Fatal(err)
		}
		tbl.Add(d, t0.Add(p.at).UnixNano(), len(frame))
	}
	tbl.Flush()
	return rec.recs
}

const (
	S  = flagSYN
	SA = flagSYN | flagACK
	A  = flagACK
	PA = flagPSH | flagACK
	FA = flagFIN | flagACK
	R  = flagRST
	RA = flagRST | flagACK
)

func TestConnStateAndHistory(t *testing.T) {
	ms := time.Millisecond
	handshake := []pkt{clientPkt(0, S, 999, 0), serverPkt(ms, SA, 4999, 0), clientPkt(2*ms, A, 1000, 0)}
	tests := []struct {
		name    string
		script  []pkt
		state   string
		history string
		origIsC bool
		ob, rb  uint64
	}{
		{"normal close", append(append([]pkt{}, handshake...),
			clientPkt(3*ms, PA, 1000, 100), serverPkt(4*ms, PA, 5000, 300), clientPkt(5*ms, FA, 1100, 0),
			serverPkt(6*ms, FA, 5300, 0), clientPkt(7*ms, A, 1101, 0)),
			"SF", "ShADdFf", true, 100, 300},
		{"SYN unanswered", []pkt{clientPkt(0, S, 1, 0), clientPkt(time.Second, S, 1, 0)}, "S0", "S", true, 0, 0},
		{"rejected", []pkt{clientPkt(0, S, 1, 0), serverPkt(ms, RA, 0, 0)}, "REJ", "Sr", true, 0, 0},
		{"established, not closed", append(append([]pkt{}, handshake...), clientPkt(3*ms, PA, 1000, 10)), "S1", "ShAD", true, 10, 0},
		{"originator aborts", append(append([]pkt{}, handshake...), clientPkt(3*ms, PA, 1000, 10), clientPkt(4*ms, R, 1010, 0)), "RSTO", "ShADR", true, 10, 0},
		{"responder aborts", append(append([]pkt{}, handshake...), clientPkt(3*ms, PA, 1000, 10), serverPkt(4*ms, RA, 5000, 0)), "RSTR", "ShADr", true, 10, 0},
		{"SYN then own RST", []pkt{clientPkt(0, S, 1, 0), clientPkt(ms, R, 2, 0)}, "RSTOS0", "SR", true, 0, 0},
		{"SYN then FIN, no answer", []pkt{clientPkt(0, S, 1, 0), clientPkt(ms, FA, 2, 0)}, "SH", "SF", true, 0, 0},
		{"originator half close", append(append([]pkt{}, handshake...), clientPkt(3*ms, FA, 1000, 0)), "S2", "ShAF", true, 0, 0},
		{"responder half close", append(append([]pkt{}, handshake...), serverPkt(3*ms, FA, 5000, 0)), "S3", "ShAf", true, 0, 0},
		{"mid-stream", []pkt{clientPkt(0, PA, 500, 50), serverPkt(ms, PA, 900, 70), clientPkt(2*ms, A, 550, 0)}, "OTH", "DdA", true, 50, 70},
		{"first packet is the SYN-ACK", []pkt{serverPkt(0, SA, 4999, 0), clientPkt(ms, A, 1000, 0), clientPkt(2*ms, PA, 1000, 20)}, "OTH", "^hAD", true, 20, 0},
		{"retransmission counted once", append(append([]pkt{}, handshake...),
			clientPkt(3*ms, PA, 1000, 100), clientPkt(300*ms, PA, 1000, 100), clientPkt(400*ms, PA, 1100, 50)),
			"S1", "ShADT", true, 150, 0},
		{"gap is missed bytes but still counted", append(append([]pkt{}, handshake...),
			clientPkt(3*ms, PA, 1000, 100), clientPkt(5*ms, PA, 1300, 100)),
			"S1", "ShADG", true, 400, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs := runScript(t, TableConfig{}, tc.script)
			if len(recs) != 1 {
				t.Fatalf("got %d records, want 1: %+v", len(recs), recs)
			}
			r := recs[0]
			if r.ConnState != tc.state || r.History != tc.history {
				t.Errorf("conn_state/history = %s/%s, want %s/%s", r.ConnState, r.History, tc.state, tc.history)
			}
			wantOrig := netip.MustParseAddr("10.0.0.1")
			if !tc.origIsC {
				wantOrig = netip.MustParseAddr("192.0.2.9")
			}
			if r.OrigAddr != wantOrig {
				t.Errorf("originator = %v, want %v", r.OrigAddr, wantOrig)
			}
			if r.OrigBytes != tc.ob || r.RespBytes != tc.rb {
				t.Errorf("bytes = %d/%d, want %d/%d", r.OrigBytes, r.RespBytes, tc.ob, tc.rb)
			}
			var cp, sp uint64
			for _, p := range tc.script {
				if p.fromC {
					cp++
				} else {
					sp++
				}
			}
			if r.OrigPkts != cp || r.RespPkts != sp {
				t.Errorf("packets = %d/%d, want %d/%d", r.OrigPkts, r.RespPkts, cp, sp)
			}
			if !r.Final {
				t.Errorf("record not final")
			}
		})
	}
}

func TestGapMissedBytes(t *testing.T) {
	ms := time.Millisecond
	script := []pkt{clientPkt(0, S, 999, 0), serverPkt(ms, SA, 4999, 0), clientPkt(2*ms, A, 1000, 0),
		clientPkt(3*ms, PA, 1000, 100), clientPkt(5*ms, PA, 1300, 100)}
	r := runScript(t, TableConfig{}, script)[0]
	if r.MissedBytes != 200 {
		t.Fatalf("missed = %d, want 200", r.MissedBytes)
	}
	// A reordered segment that fills the hole is not missed.
	script = append(script, clientPkt(6*ms, PA, 1100, 200))
	r = runScript(t, TableConfig{}, script)[0]
	if r.MissedBytes != 0 || r.OrigBytes != 400 {
		t.Fatalf("missed = %d bytes = %d, want 0 and 400", r.MissedBytes, r.OrigBytes)
	}
}

func TestSequenceWrap(t *testing.T) {
	ms := time.Millisecond
	isn := uint32(0xffffff00)
	script := []pkt{clientPkt(0, S, isn, 0), serverPkt(ms, SA, 7, 0), clientPkt(2*ms, A, isn+1, 0)}
	seq := isn + 1
	for i := 0; i < 10; i++ {
		script = append(script, clientPkt(time.Duration(3+i)*ms, PA, seq, 1000))
		seq += 1000
	}
	r := runScript(t, TableConfig{}, script)[0]
	if r.OrigBytes != 10000 || r.MissedBytes != 0 {
		t.Fatalf("bytes = %d missed = %d across the wrap, want 10000 and 0", r.OrigBytes, r.MissedBytes)
	}
}

func TestTimeouts(t *testing.T) {
	cfg := TableConfig{TCPTimeout: time.Minute, ActiveTimeout: 10 * time.Minute}
	// Two bursts 2 minutes apart: the idle timeout splits them.
	script := []pkt{clientPkt(0, PA, 1, 10), serverPkt(time.Second, PA, 1, 10),
		clientPkt(3*time.Minute, PA, 11, 10)}
	recs := runScript(t, cfg, script)
	if len(recs) != 2 || recs[0].OrigPkts+recs[0].RespPkts != 2 || recs[1].OrigPkts != 1 {
		t.Fatalf("idle split: got %+v", recs)
	}

	// A connection alive for 35 minutes with a heartbeat every 30 s gets an
	// interim record every 10 minutes, carrying cumulative counts.
	var hb []pkt
	for i := 0; i <= 70; i++ {
		hb = append(hb, clientPkt(time.Duration(i)*30*time.Second, PA, uint32(1+i*10), 10))
	}
	recs = runScript(t, cfg, hb)
	var interim []flow.Record
	for _, r := range recs {
		if !r.Final {
			interim = append(interim, r)
		}
	}
	if len(interim) != 3 || len(recs) != 4 {
		t.Fatalf("got %d records (%d interim), want 4 (3 interim)", len(recs), len(interim))
	}
	if interim[0].UID != recs[3].UID {
		t.Errorf("interim and final uid differ: %s %s", interim[0].UID, recs[3].UID)
	}
	if !(interim[0].OrigPkts < interim[1].OrigPkts && interim[1].OrigPkts < interim[2].OrigPkts && recs[3].OrigPkts == 71) {
		t.Errorf("interim counts not cumulative: %d %d %d final %d", interim[0].OrigPkts, interim[1].OrigPkts, interim[2].OrigPkts, recs[3].OrigPkts)
	}
	if got := interim[0].End.Sub(interim[0].Start); got < 10*time.Minute-30*time.Second || got > 10*time.Minute {
		t.Errorf("first interim covers %v, want about 10m", got)
	}
}

func TestPortReuseAfterClose(t *testing.T) {
	ms := time.Millisecond
	conn := func(at time.Duration) []pkt {
		return []pkt{clientPkt(at, S, 1, 0), serverPkt(at+ms, SA, 1, 0), clientPkt(at+2*ms, A, 2, 0),
			clientPkt(at+3*ms, FA, 2, 0), serverPkt(at+4*ms, FA, 2, 0), clientPkt(at+5*ms, A, 3, 0)}
	}
	recs := runScript(t, TableConfig{}, append(conn(0), conn(time.Second)...))
	if len(recs) != 2 || recs[0].ConnState != "SF" || recs[1].ConnState != "SF" || recs[0].UID == recs[1].UID {
		t.Fatalf("want two SF connections with distinct uids, got %+v", recs)
	}
}

func TestEvictionWhenFull(t *testing.T) {
	var rec recorder
	tbl := NewTable(TableConfig{MaxFlows: 100}, rec.emit)
	dec := NewDecoder()
	for i := 0; i < 1000; i++ {
		frame := ether(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(uint16(1000+i), 53, fill(20))))
		d, _ := dec.Decode(frame, linkEthernet, len(frame))
		tbl.Add(d, t0.Add(time.Duration(i)*time.Millisecond).UnixNano(), len(frame))
		if a := tbl.Stats().Active; a > 100 {
			t.Fatalf("table holds %d flows, limit 100", a)
		}
	}
	tbl.Flush()
	st := tbl.Stats()
	if st.Evicted != 900 || len(rec.recs) != 1000 {
		t.Fatalf("evicted %d, records %d; want 900 and 1000", st.Evicted, len(rec.recs))
	}
	// The least recently active flows go first.
	if rec.recs[0].OrigPort != 1000 || rec.recs[899].OrigPort != 1899 {
		t.Fatalf("eviction order: first %d, 900th %d", rec.recs[0].OrigPort, rec.recs[899].OrigPort)
	}
}

func TestFragmentsCountedToTheirFlow(t *testing.T) {
	var rec recorder
	tbl := NewTable(TableConfig{}, rec.emit)
	dec := NewDecoder()
	add := func(i int, frame []byte) {
		d, err := dec.Decode(frame, linkEthernet, len(frame))
		if err != nil {
			t.Fatal(err)
		}
		tbl.Add(d, t0.Add(time.Duration(i)*time.Millisecond).UnixNano(), len(frame))
	}
	// Datagram 7 arrives in order; datagram 8 has its last fragment first.
	add(0, ether(0x0800, ipv4Frag("10.0.0.1", "10.0.0.2", 17, 7, 0, true, udp(1000, 2000, fill(1472)))))
	add(1, ether(0x0800, ipv4Frag("10.0.0.1", "10.0.0.2", 17, 7, 1480, false, fill(500))))
	add(2, ether(0x0800, ipv4Frag("10.0.0.1", "10.0.0.2", 17, 8, 1480, false, fill(300))))
	add(3, ether(0x0800, ipv4Frag("10.0.0.1", "10.0.0.2", 17, 8, 0, true, udp(1000, 2000, fill(1472)))))
	// A fragment whose first fragment never comes.
	add(4, ether(0x0800, ipv4Frag("10.0.0.1", "10.0.0.2", 17, 9, 1480, false, fill(100))))
	tbl.Flush()
	if len(rec.recs) != 2 {
		t.Fatalf("got %d records, want the UDP flow and one portless orphan: %+v", len(rec.recs), rec.recs)
	}
	var udpRec, orphan flow.Record
	for _, r := range rec.recs {
		if r.OrigPort == 1000 {
			udpRec = r
		} else {
			orphan = r
		}
	}
	if udpRec.OrigPkts != 4 || udpRec.OrigBytes != 1472+500+1472+300 {
		t.Errorf("udp flow: %d packets %d bytes, want 4 and %d", udpRec.OrigPkts, udpRec.OrigBytes, 1472+500+1472+300)
	}
	if orphan.OrigPkts != 1 || orphan.OrigPort != 0 || orphan.OrigBytes != 100 {
		t.Errorf("orphan: %+v", orphan)
	}
	if st := tbl.Stats(); st.Packets != 5 || st.Fragments != 3 {
		t.Errorf("stats: %+v", st)
	}
}

func TestICMPEchoIsOneFlow(t *testing.T) {
	var rec recorder
	tbl := NewTable(TableConfig{}, rec.emit)
	dec := NewDecoder()
	for i, fr := range [][]byte{
		ether(0x0800, ipv4("10.0.0.1", "8.8.8.8", 1, icmpMsg(8, 0, fill(56)))),
		ether(0x0800, ipv4("8.8.8.8", "10.0.0.1", 1, icmpMsg(0, 0, fill(56)))),
		ether(0x0800, ipv4("10.0.0.1", "8.8.8.8", 1, icmpMsg(3, 3, fill(28)))),
	} {
		d, _ := dec.Decode(fr, linkEthernet, len(fr))
		tbl.Add(d, t0.Add(time.Duration(i)*time.Millisecond).UnixNano(), len(fr))
	}
	tbl.Flush()
	if len(rec.recs) != 2 {
		t.Fatalf("got %d records, want echo flow + unreachable flow", len(rec.recs))
	}
	e := rec.recs[0]
	if e.OrigPkts != 1 || e.RespPkts != 1 || e.OrigPort != 8 || e.RespPort != 0 || e.OrigAddr.String() != "10.0.0.1" {
		t.Errorf("echo flow: %+v", e)
	}
	if u := rec.recs[1]; u.OrigPort != 3 || u.RespPort != 3 {
		t.Errorf("unreachable flow: %+v", u)
	}
}

func TestLocality(t *testing.T) {
	nets, err := flow.ParseNetworks("147.32.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	r := runScript(t, TableConfig{HomeNets: nets}, []pkt{clientPkt(0, S, 1, 0)})[0]
	if r.LocalOrig || r.LocalResp {
		t.Errorf("10.0.0.1 is not in 147.32/16: %v %v", r.LocalOrig, r.LocalResp)
	}
	r = runScript(t, TableConfig{}, []pkt{clientPkt(0, S, 1, 0)})[0]
	if !r.LocalOrig || r.LocalResp {
		t.Errorf("default home nets: local_orig=%v local_resp=%v", r.LocalOrig, r.LocalResp)
	}
}

// A tunnel whose outer packets were fragmented: the later outer fragments
// carry only the outer header and must still count to the inner flow.
func TestOuterFragmentsCountToInnerFlow(t *testing.T) {
	var rec recorder
	tbl := NewTable(TableConfig{}, rec.emit)
	dec := NewDecoder()
	inner := ipv4("10.1.1.1", "10.2.2.2", 6, tcp(80, 5000, 1, 1, PA, fill(2000)))
	tunnelled := gre(0x0800, nil, nil, inner)
	first := ether(0x0800, ipv4Frag("1.1.1.1", "2.2.2.2", 47, 9, 0, true, tunnelled[:1480]))
	second := ether(0x0800, ipv4Frag("1.1.1.1", "2.2.2.2", 47, 9, 1480, false, tunnelled[1480:]))
	for i, fr := range [][]byte{first, second} {
		d, err := dec.Decode(fr, linkEthernet, len(fr))
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		tbl.Add(d, t0.Add(time.Duration(i)*time.Millisecond).UnixNano(), len(fr))
	}
	tbl.Flush()
	if len(rec.recs) != 1 {
		t.Fatalf("got %d records, want 1: %+v", len(rec.recs), rec.recs)
	}
	r := rec.recs[0]
	if r.OrigPort != 80 || r.OrigPkts != 2 || r.OrigFrameBytes != uint64(len(first)+len(second)) || r.Encap == nil || r.Encap.Tunnel != "gre" {
		t.Fatalf("record: %+v", r)
	}
	if st := tbl.Stats(); st.FragOrphans != 0 {
		t.Fatalf("%d orphans", st.FragOrphans)
	}
}
