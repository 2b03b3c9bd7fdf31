package sinks

import (
	"strings"
	"testing"
	"time"

	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
	"github.com/flowhound/flowhound/internal/testservers"
)

func newTestInflux(t testing.TB, cfg InfluxConfig) *Influx {
	t.Helper()
	if cfg.Delivery.Logger == nil {
		cfg.Delivery.Logger = newLogger(&logBuffer{})
	}
	s, err := NewInflux(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Finding points and counters come back from a Flux query exactly, with
// bounded tags.
func TestInfluxFindingsAndCounters(t *testing.T) {
	t.Parallel()
	server := sharedInflux.URL(t)
	db := testservers.NewDatabase(t, server)
	bucket := db + "/autogen"
	s := newTestInflux(t, InfluxConfig{URL: server, Bucket: bucket})

	findings := makeFindings(60)
	odd := findings[59]
	odd.Kind, odd.Severity, odd.Proto, odd.Sensor = "made_up", "extreme", "gre", ""
	sendAll(t, s, findingMessages(t, findings))
	// Two findings of one series at the same instant must both survive.
	twin := *findings[0]
	twin.UID = "F-twin"
	sendAll(t, s, findingMessages(t, []*detect.Finding{&twin}))
	findings = append(findings, &twin)

	counters := []*Counters{
		{Time: testEpoch, Sensor: "sensor-1", Packets: 1000, Bytes: 1 << 40, FlowsActive: 12, DecodeErrors: 3, Drops: 1,
			Findings: map[detect.Kind]uint64{detect.KindBeacon: 4, detect.KindScan: 1}},
		{Time: testEpoch.Add(10 * time.Second), Sensor: "sensor-1", Packets: 2000, Bytes: 2 << 40, FlowsActive: 15,
			Findings: map[detect.Kind]uint64{detect.KindBeacon: 5, "new_kind": 2}},
	}
	for _, c := range counters {
		m, err := NewCountersMessage(c)
		if err != nil {
			t.Fatal(err)
		}
		sendAll(t, s, []Message{m})
	}
	sendAll(t, s, []Message{NewFlowMessage(makeFlows(1)[0])}) // not written to InfluxDB
	flush(t, s, 20*time.Second)
	if st := s.Stats(); st.Sent != uint64(len(findings)+len(counters)) || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}

	rows := testservers.FluxRows(t, server, bucket, DefaultFindingMeasurement)
	if len(rows) != len(findings) {
		t.Fatalf("%d finding points, want %d", len(rows), len(findings))
	}
	byUID := map[string]map[string]any{}
	for _, r := range rows {
		byUID[r["uid"].(string)] = r
	}
	for _, f := range findings {
		r := byUID[f.UID]
		if r == nil {
			t.Errorf("no point for %s", f.UID)
			continue
		}
		kind, sev, proto, sensor := string(f.Kind), string(f.Severity), f.Proto, f.Sensor
		if f == odd {
			kind, sev, proto, sensor = "other", "other", "other", "unknown"
		}
		want := map[string]any{
			"kind": kind, "severity": sev, "proto": proto, "sensor": sensor,
			"status": string(f.Status), "score": f.Score, "score_interval": 0.5, "score_size": 0.25,
			"src": f.Src.String(), "dst": f.Dst.String(), "dst_port": int64(f.DstPort), "fqdn": f.FQDN,
			"bytes_in": int64(f.Evidence.BytesIn), "connections": int64(f.Evidence.Connections),
		}
		if f.Evidence.BytesOut != 0 {
			want["bytes_out"] = int64(f.Evidence.BytesOut)
		}
		for k, v := range want {
			if r[k] != v {
				t.Errorf("%s: %s = %v (%T), want %v (%T)", f.UID, k, r[k], r[k], v, v)
			}
		}
		if tm := r["_time"].(time.Time); tm.Before(f.Time) || !tm.Before(f.Time.Add(time.Microsecond)) {
			t.Errorf("%s: time %s, want within a microsecond of %s", f.UID, tm, f.Time)
		}
	}

	crows := testservers.FluxRows(t, server, bucket, DefaultCountersMeasurement)
	if len(crows) != 2 {
		t.Fatalf("%d counter points, want 2", len(crows))
	}
	for i, want := range []map[string]any{
		{"sensor": "sensor-1", "packets": int64(1000), "bytes": int64(1 << 40), "flows_active": int64(12),
			"decode_errors": int64(3), "drops": int64(1), "findings_beacon": int64(4), "findings_scan": int64(1),
			"findings_exfil": int64(0)},
		{"packets": int64(2000), "findings_beacon": int64(5), "findings_other": int64(2), "findings_scan": int64(0)},
	} {
		for k, v := range want {
			if crows[i][k] != v {
				t.Errorf("counters %d: %s = %v, want %v", i, k, crows[i][k], v)
			}
		}
		if !crows[i]["_time"].(time.Time).Equal(counters[i].Time) {
			t.Errorf("counters %d: time %v", i, crows[i]["_time"])
		}
	}
}

// A missing database is reported as such; points wait and are written once
// it exists.
func TestInfluxMissingDatabase(t *testing.T) {
	server := sharedInflux.URL(t)
	db := strings.ReplaceAll(testservers.UniqueName("flowhound_later"), ".", "_")
	s := newTestInflux(t, InfluxConfig{URL: server, Bucket: db,
		Delivery: Delivery{BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond}})
	sendAll(t, s, findingMessages(t, makeFindings(3)))
	waitFor(t, 10*time.Second, func() bool { return s.Stats().Errors > 0 })
	if st := s.Stats(); !strings.Contains(st.LastError, "not found") || st.Buffered != 3 {
		t.Fatalf("stats %+v", st)
	}
	testservers.InfluxQL(t, server, "CREATE DATABASE "+db)
	flush(t, s, 10*time.Second)
	if n := len(testservers.FluxRows(t, server, db, DefaultFindingMeasurement)); n != 3 {
		t.Fatalf("%d points", n)
	}
}

// InfluxDB goes away for a while: nothing crashes or blocks, points are
// retried, and everything arrives once it is back.
func TestInfluxDown(t *testing.T) {
	t.Parallel()
	srv := testservers.StartInflux(t)
	testservers.InfluxQL(t, srv.URL(), "CREATE DATABASE fh")
	var logs logBuffer
	s := newTestInflux(t, InfluxConfig{URL: srv.URL(), Bucket: "fh", Timeout: 2 * time.Second,
		Delivery: Delivery{BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond, Logger: newLogger(&logs)}})
	findings := makeFindings(50)
	msgs := findingMessages(t, findings)
	sendAll(t, s, msgs[:20])
	flush(t, s, 10*time.Second)

	srv.Stop()
	start := time.Now()
	sendAll(t, s, msgs[20:])
	if d := time.Since(start); d > time.Second { // the write timeout is 2s
		t.Errorf("sends took %s with InfluxDB down", d)
	}
	waitFor(t, 10*time.Second, func() bool { return s.Stats().Retried > 0 })
	if st := s.Stats(); st.Buffered != 30 || st.Sent != 20 {
		t.Fatalf("while down: %+v", st)
	}
	srv.Start()
	flush(t, s, 30*time.Second)
	st := s.Stats()
	if st.Sent != 50 || st.Dropped != 0 || st.Buffered != 0 {
		t.Fatalf("after restart: %+v", st)
	}
	if logs.count("delivery recovered") != 1 {
		t.Errorf("logs:\n%s", logs.String())
	}
	if n := len(testservers.FluxRows(t, srv.URL(), "fh", DefaultFindingMeasurement)); n != 50 {
		t.Fatalf("%d points after the outage, want 50", n)
	}
}

var _ = flow.ProtoTCP
