package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/flow"
)

// recorder keeps the flow records a capture emits.
type recorder struct {
	mu    sync.Mutex
	recs  []flow.Record
	ticks int
}

func (r *recorder) emit(rec *flow.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := *rec
	if rec.Encap != nil {
		e := *rec.Encap
		c.Encap = &e
	}
	r.recs = append(r.recs, c)
}

func (r *recorder) tick(time.Time) {
	r.mu.Lock()
	r.ticks++
	r.mu.Unlock()
}

// byClientPort indexes the records by originator port; it fails on a flow
// that was split into two records.
func (r *recorder) byClientPort(t *testing.T, name string) map[uint16]*flow.Record {
	t.Helper()
	m := map[uint16]*flow.Record{}
	for i := range r.recs {
		rec := &r.recs[i]
		if prev, dup := m[rec.OrigPort]; dup {
			t.Errorf("%s: two records for client port %d (a flow split between workers?):\n  %+v\n  %+v", name, rec.OrigPort, *prev, *rec)
		}
		m[rec.OrigPort] = rec
	}
	return m
}

type testCapture struct {
	name string
	cfg  Config
	rec  *recorder
	c    *Capture
	st   Stats
}

// TestCaptureVeth captures known traffic on a veth pair three ways at once
// (one socket; a fanout group of two; one socket with a tcpdump filter) and
// checks every flow against what the client sockets counted, and the kernel
// counters against the sensors'.
func TestCaptureVeth(t *testing.T) {
	tn := newTestNet(t)
	startServer(t, tn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	base := Config{Interface: tn.ifA, RingSize: 4 << 20, Promiscuous: true, BlockTimeout: 10 * time.Millisecond}
	caps := []*testCapture{{name: "one socket", cfg: base}, {name: "fanout of 2", cfg: base}}
	caps[1].cfg.Workers = 2
	var filtered *testCapture
	if _, err := exec.LookPath("tcpdump"); err == nil {
		filtered = &testCapture{name: "filter", cfg: base}
		caps = append(caps, filtered)
	} else {
		t.Log("tcpdump not installed (Debian package tcpdump): the capture filter is not tested")
	}
	err := inNetns(tn.nsA, func() error {
		if filtered != nil {
			f, err := CompileFilter(ctx, tn.ifA, 0, fmt.Sprintf("tcp port %d", beaconPort))
			if err != nil {
				return err
			}
			filtered.cfg.Filter = f
		}
		for _, tc := range caps {
			tc.rec = &recorder{}
			c, err := Open(Options{
				Interfaces: []Config{tc.cfg},
				Sensor:     capture.Config{Table: capture.DefaultTableConfig()},
				Emit:       tc.rec.emit,
				Tick:       tc.rec.tick,
				TickEvery:  500 * time.Millisecond,
			})
			if err != nil {
				return err
			}
			tc.c = c
			t.Cleanup(func() { c.Close() })
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	runErrs := make([]error, len(caps))
	var wg sync.WaitGroup
	for i, tc := range caps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runErrs[i] = tc.c.Run(runCtx)
		}()
	}
	began := time.Now()
	truth := traffic(t, tn)
	// Let the last ring blocks time out and reach the readers.
	for _, tc := range caps {
		waitDrained(t, tc.c)
	}
	stop()
	wg.Wait()
	t.Logf("traffic and capture took %v", time.Since(began).Round(time.Millisecond))
	if err := errors.Join(runErrs...); err != nil {
		t.Fatal(err)
	}
	for _, tc := range caps {
		if tc.st, err = tc.c.Stats(); err != nil {
			t.Fatal(err)
		}
		if tc.rec.ticks == 0 {
			t.Errorf("%s: Tick was never called", tc.name)
		}
	}

	var beacons []sent
	for _, s := range truth {
		if s.dst.Port() == beaconPort {
			beacons = append(beacons, s)
		}
	}
	for _, tc := range caps {
		want := truth
		if tc == filtered {
			want = beacons
		}
		checkFlows(t, tc, want)
		checkCounters(t, tc)
	}

	// The fanout group saw what the single socket saw, split between its
	// members.
	one, two := caps[0].st, caps[1].st
	if one.Kernel.Packets != two.Kernel.Packets {
		t.Errorf("fanout of 2: kernel counted %d packets, the single socket %d", two.Kernel.Packets, one.Kernel.Packets)
	}
	for i, w := range two.Interfaces[0].Workers {
		t.Logf("fanout of 2: worker %d read %d packets", i, w.Received)
	}
}

// checkFlows compares a capture's records with the senders' ground truth.
func checkFlows(t *testing.T, tc *testCapture, want []sent) {
	t.Helper()
	got := tc.rec.byClientPort(t, tc.name)
	allowance := tc.st.Kernel.Drops
	if len(tc.rec.recs) != len(want) {
		t.Errorf("%s: %d flow records, want %d", tc.name, len(tc.rec.recs), len(want))
	}
	for _, s := range want {
		r := got[s.src.Port()]
		if r == nil {
			t.Errorf("%s: no record for %v", tc.name, s)
			continue
		}
		var problems []string
		check := func(what string, got, want any) {
			if got != want {
				problems = append(problems, fmt.Sprintf("%s %v, want %v", what, got, want))
			}
		}
		check("proto", r.Proto, s.proto)
		check("orig", netip.AddrPortFrom(r.OrigAddr, r.OrigPort), s.src)
		check("resp", netip.AddrPortFrom(r.RespAddr, r.RespPort), s.dst)
		check("orig_bytes", r.OrigBytes, s.origBytes)
		check("resp_bytes", r.RespBytes, s.respBytes)
		// A frame the kernel reports as dropped (possible when CI loads the
		// machine) is the only excuse for a packet missing from a flow.
		checkPkts := func(what string, got, want uint64) {
			if got > want || want-got > allowance {
				problems = append(problems, fmt.Sprintf("%s %v, want %v (kernel drops left to explain: %d)", what, got, want, allowance))
				return
			}
			allowance -= want - got
		}
		checkPkts("orig_pkts", r.OrigPkts, s.origPkts)
		checkPkts("resp_pkts", r.RespPkts, s.respPkts)
		check("conn_state", r.ConnState, s.state)
		check("missed_bytes", r.MissedBytes, uint64(0))
		check("final", r.Final, true)
		var vlans []uint16
		if r.Encap != nil {
			vlans = r.Encap.VLANs
		}
		check("vlan", fmt.Sprint(vlans), fmt.Sprint(s.vlans))
		if len(problems) > 0 {
			t.Errorf("%s: flow %v: %v (history %s)", tc.name, s, problems, r.History)
		}
	}
}

// checkCounters compares the kernel's counters with what the sensors read:
// the test link carries nothing but the test's TCP flows.
func checkCounters(t *testing.T, tc *testCapture) {
	t.Helper()
	st := tc.st
	var flowPkts uint64
	for _, r := range tc.rec.recs {
		flowPkts += r.OrigPkts + r.RespPkts
	}
	if st.Kernel.Drops != 0 || st.Kernel.Freezes != 0 {
		t.Logf("%s: kernel dropped %d packets (%d ring freezes): the machine is loaded", tc.name, st.Kernel.Drops, st.Kernel.Freezes)
	}
	// The kernel's packet count includes what it dropped.
	if st.Kernel.Packets != st.Sensor.Packets+st.Kernel.Drops || st.Sensor.Packets != flowPkts {
		t.Errorf("%s: kernel counted %d packets, the sensors read %d, the flows hold %d", tc.name, st.Kernel.Packets, st.Sensor.Packets, flowPkts)
	}
	if n := st.Sensor.DecodeErrorTotal(); n != 0 {
		t.Errorf("%s: %d decode errors: %v", tc.name, n, st.Sensor.DecodeErrorsByKind())
	}
	for i, w := range st.Interfaces[0].Workers {
		if w.Kernel.Packets != w.Sensor.Packets+w.Kernel.Drops || uint64(w.Received) != w.Sensor.Packets {
			t.Errorf("%s: worker %d: kernel counted %d packets, the ring gave %d, the sensor read %d", tc.name, i, w.Kernel.Packets, w.Received, w.Sensor.Packets)
		}
	}
	t.Logf("%s: %d packets, %d flows; kernel %+v", tc.name, st.Sensor.Packets, len(tc.rec.recs), st.Kernel)
}

// waitDrained waits until the readers have read every frame the kernel
// counted: the last ring blocks are handed over on their timeout.
func waitDrained(t *testing.T, c *Capture) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		var read int64
		for _, w := range st.Interfaces[0].Workers {
			read += w.Received
		}
		if uint64(read) == st.Kernel.Packets || time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStopReadsLastBlock stops a source while its last frames sit in the
// block the kernel is still filling: Next must wait for that block to be
// handed over (its timeout) and return them before io.EOF.
func TestStopReadsLastBlock(t *testing.T) {
	tn := newTestNet(t)
	var srcs []*Source
	err := inNetns(tn.nsA, func() (err error) {
		srcs, err = OpenInterface(Config{Interface: tn.ifA, RingSize: 2 << 20, BlockTimeout: 300 * time.Millisecond}, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	src := srcs[0]
	defer src.Close()
	if _, err := injectVLAN(tn, []uint16{7}, 6000, 6001, 5, 100); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	src.Stop()
	var p pcapfile.Packet
	n := 0
	for {
		err := src.Next(&p)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 5 {
		t.Errorf("read %d frames after Stop, want the 5 sent before it", n)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Stop took %v to end Next, want about the block timeout (300ms)", d)
	}
	if st, err := src.Stats(); err != nil || st.Packets != 5 {
		t.Errorf("kernel stats %+v, %v; want 5 packets", st, err)
	}
}
