package metrics

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/sinks"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestMetricsAndHealth(t *testing.T) {
	var cur atomic.Pointer[Snapshot]
	m := New("edge-01", "v1.2.3", 10*time.Second, cur.Load)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := Serve(ctx, "127.0.0.1:0", m.Handler(), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr.String()

	// Before the first snapshot: no pipeline metrics, and not healthy.
	code, body := get(t, base+"/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"status":"starting"`) {
		t.Errorf("/healthz before the first snapshot: %d %s", code, body)
	}
	if _, body = get(t, base+"/metrics"); strings.Contains(body, "flowhound_packets_total") {
		t.Errorf("packets reported before the first snapshot:\n%s", body)
	}

	s := &Snapshot{Heartbeat: time.Now(), SensorValid: true,
		Sensor:     capture.Stats{Packets: 42, Bytes: 4200, Table: capture.TableStats{Active: 7, Flows: 9, Records: 2, Interim: 1, Evicted: 3}},
		Interfaces: []Interface{{Name: "eth1", Packets: 50, Drops: 8, Freezes: 1}},
		Engine: detect.EngineStats{Records: 3, New: 2, Updates: 1,
			ByKind: map[detect.Kind]uint64{detect.KindBeacon: 2, detect.KindScan: 1}},
		Detectors: map[detect.Kind]detect.DetectorStats{detect.KindBeacon: {Keys: 5, Bytes: 1135, Evictions: 4}},
		Sinks: []Sink{{Name: "kafka findings", Stats: sinks.SinkStats{Sent: 10, Retried: 2, Dropped: 1, Errors: 3, Buffered: 6,
			LastError: "broker down", LastErrorTime: time.Now()}}},
		Reloads: Reloads{OK: 2, Failed: 1},
	}
	s.Sensor.DecodeErrors[capture.ErrTruncated] = 11
	cur.Store(s)

	code, body = get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		"flowhound_packets_total 42",
		"flowhound_bytes_total 4200",
		`flowhound_decode_errors_total{kind="` + capture.ErrTruncated.String() + `"} 11`,
		"flowhound_flows_active 7",
		"flowhound_flows_created_total 9",
		`flowhound_flow_records_total{final="true"} 2`,
		`flowhound_flow_records_total{final="false"} 1`,
		"flowhound_flows_evicted_total 3",
		`flowhound_kernel_packets_total{interface="eth1"} 50`,
		`flowhound_kernel_drops_total{interface="eth1"} 8`,
		`flowhound_findings_total{kind="beacon"} 2`,
		`flowhound_findings_total{kind="scan"} 1`,
		`flowhound_findings_total{kind="exfil"} 0`,
		"flowhound_findings_new_total 2",
		`flowhound_detector_state_bytes{detector="beacon"} 1135`,
		`flowhound_detector_evictions_total{detector="beacon"} 4`,
		`flowhound_sink_sent_total{sink="kafka findings"} 10`,
		`flowhound_sink_dropped_total{sink="kafka findings"} 1`,
		`flowhound_sink_buffered{sink="kafka findings"} 6`,
		`flowhound_config_reloads_total{result="failed"} 1`,
		`flowhound_build_info{sensor="edge-01",version="v1.2.3"} 1`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want+"\n") && !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	code, body = get(t, base+"/healthz")
	var h Health
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("/healthz body %q: %v", body, err)
	}
	if code != http.StatusOK || h.Status != "ok" || h.Packets != 42 || len(h.Sinks) != 1 || !h.Sinks[0].Failing {
		t.Errorf("/healthz with a fresh heartbeat: %d %+v", code, h)
	}

	// A pipeline that stopped making progress fails the probe.
	old := *s
	old.Heartbeat = time.Now().Add(-time.Minute)
	cur.Store(&old)
	if code, body = get(t, base+"/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"status":"stalled"`) {
		t.Errorf("/healthz with a stale heartbeat: %d %s", code, body)
	}

	// Packet counters that cannot be read during the run are left out,
	// not reported as zero.
	noSensor := *s
	noSensor.SensorValid = false
	cur.Store(&noSensor)
	if _, body = get(t, base+"/metrics"); strings.Contains(body, "flowhound_packets_total") {
		t.Errorf("packets reported from an unreadable packet path")
	}
	if code, _ = get(t, base+"/nothing"); code != http.StatusNotFound {
		t.Errorf("/nothing: %d, want 404", code)
	}

	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := http.Get(base + "/healthz"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server still serving after its context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeBadAddress(t *testing.T) {
	m := New("s", "v", time.Second, func() *Snapshot { return nil })
	_, err := Serve(context.Background(), "256.0.0.1:x", m.Handler(), slog.Default())
	if err == nil || !strings.Contains(err.Error(), "metrics listener") {
		t.Errorf("bad address: %v", err)
	}
}
