// Package metrics serves a running sensor's counters to Prometheus
// (/metrics) and its liveness (/healthz) over HTTP.
//
// The counters live where they are counted — the packet path, the
// detection engine, the sinks — and are not safe to read from another
// goroutine while they change. The commands therefore copy them into a
// Snapshot on the goroutine that owns them, about once a second, and the
// collector here turns the latest snapshot into metrics at scrape time: the
// hot paths pay nothing per packet, and a scrape never blocks them.
package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/sinks"
)

// Snapshot is the state of a running pipeline at one moment.
type Snapshot struct {
	// Heartbeat is the wall time the pipeline last showed it was alive:
	// it read a packet, or, when no packet came, its clock ticked.
	Heartbeat time.Time
	// Sensor is the packet path. SensorValid is false while the packet
	// path cannot be read during the run (replay with several workers);
	// its metrics are then left out rather than reported as zero.
	Sensor      capture.Stats
	SensorValid bool
	// Interfaces are the kernel's counters of a live capture.
	Interfaces []Interface
	Engine     detect.EngineStats
	Detectors  map[detect.Kind]detect.DetectorStats
	// Sinks are the outputs' counters, one per destination and kind.
	Sinks   []Sink
	Reloads Reloads
}

// Interface is one live interface's kernel counters.
type Interface struct {
	Name    string
	Packets uint64 // frames the kernel passed to the capture sockets
	Drops   uint64 // frames it dropped because a ring was full
	Freezes uint64 // times a ring was full
}

// Sink is one sink's delivery counters.
type Sink struct {
	Name  string // "kafka findings"
	Stats sinks.SinkStats
}

// Reloads counts configuration reloads (SIGHUP).
type Reloads struct {
	OK, Failed uint64
	Last       time.Time // wall time of the last successful reload
}

// Metrics is a Prometheus registry of its own (not the process-wide
// default) holding flowhound's collector, the Go runtime's and the
// process's.
type Metrics struct {
	reg      *prometheus.Registry
	snap     func() *Snapshot
	staleAge time.Duration
}

// New returns the metrics of the pipeline whose latest snapshot snap
// returns (nil before the first). sensor and version label
// flowhound_build_info. /healthz fails once the heartbeat is older than
// staleAge.
func New(sensor, version string, staleAge time.Duration, snap func() *Snapshot) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), snap: snap, staleAge: staleAge}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&collector{snap: snap},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "flowhound_build_info",
			Help:        "Always 1; the labels name the sensor and its version.",
			ConstLabels: prometheus.Labels{"sensor": sensor, "version": version},
		}, func() float64 { return 1 }),
	)
	return m
}

// Registry returns the registry, for tests and for embedding.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves /metrics and /healthz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("/healthz", m.healthz)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "flowhound: /metrics (Prometheus), /healthz")
	})
	return mux
}

// Health is the body of /healthz.
type Health struct {
	Status string `json:"status"` // "ok" or "stalled"
	// HeartbeatAge is how long ago the pipeline last showed progress.
	HeartbeatAge float64      `json:"heartbeat_age_seconds"`
	Packets      uint64       `json:"packets,omitempty"`
	Findings     uint64       `json:"findings"`
	Sinks        []SinkHealth `json:"sinks,omitempty"`
}

// sinkErrorRecent is how long after its last error a sink counts as
// failing in /healthz.
const sinkErrorRecent = 30 * time.Second

// SinkHealth tells whether a sink is delivering. A failing sink does not
// make the sensor unhealthy — restarting it would not bring a broker back
// and would lose its state — but it is reported here and in the metrics.
type SinkHealth struct {
	Name      string `json:"name"`
	Failing   bool   `json:"failing"` // an error within the last 30 s
	LastError string `json:"last_error,omitempty"`
	Buffered  int    `json:"buffered"`
}

// healthz answers 200 while the pipeline's heartbeat is recent, 503 when
// it has stalled (or has not started yet).
func (m *Metrics) healthz(w http.ResponseWriter, _ *http.Request) {
	h := m.Health(time.Now())
	w.Header().Set("Content-Type", "application/json")
	if h.Status != "ok" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(h)
}

// Health returns the health as of now.
func (m *Metrics) Health(now time.Time) Health {
	s := m.snap()
	if s == nil || s.Heartbeat.IsZero() {
		return Health{Status: "starting"}
	}
	h := Health{Status: "ok", HeartbeatAge: now.Sub(s.Heartbeat).Seconds(), Findings: s.Engine.New}
	if now.Sub(s.Heartbeat) > m.staleAge {
		h.Status = "stalled"
	}
	if s.SensorValid {
		h.Packets = s.Sensor.Packets
	}
	for _, k := range s.Sinks {
		st := &k.Stats
		failing := !st.LastErrorTime.IsZero() && now.Sub(st.LastErrorTime) < sinkErrorRecent
		h.Sinks = append(h.Sinks, SinkHealth{Name: k.Name, Failing: failing, LastError: st.LastError, Buffered: st.Buffered})
	}
	return h
}

// Serve serves h on addr (host:port) until ctx is done. It returns once
// the listener is open, with its address (the port is chosen when addr
// ends in :0), so that a bad address or a port in use fails the command at
// start; errors after that go to log.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(c)
	}()
	return ln.Addr(), nil
}

// collector turns the latest snapshot into metrics at scrape time.
type collector struct {
	snap func() *Snapshot
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("flowhound_"+name, help, labels, nil)
}

var (
	descPackets     = desc("packets_total", "Frames read by the packet path.")
	descBytes       = desc("bytes_total", "Wire bytes of the frames read (original length, not the captured length).")
	descDuplicates  = desc("duplicate_frames_total", "Frames dropped by de-duplication (capture.dedup).")
	descDecodeErrs  = desc("decode_errors_total", "Frames with a decode problem, by kind; they still count into a flow when their IP header was readable.", "kind")
	descFlowsActive = desc("flows_active", "Flows tracked in the flow tables now.")
	descFlows       = desc("flows_created_total", "Flows created in the flow tables.")
	descRecords     = desc("flow_records_total", "Flow records emitted; final=\"false\" are interim records of long-lived flows.", "final")
	descEvicted     = desc("flows_evicted_total", "Flows emitted early because the flow table was full (capture.flow_table.max_flows).")
	descFragments   = desc("fragments_total", "Non-first IP fragments seen.")
	descFragOrphans = desc("fragment_orphans_total", "Non-first IP fragments whose first fragment never came.")
	descLastPacket  = desc("last_packet_timestamp_seconds", "Packet time of the last frame read (event time: a replay's clock).")
	descKernPackets = desc("kernel_packets_total", "Frames the kernel passed to the capture sockets of an interface.", "interface")
	descKernDrops   = desc("kernel_drops_total", "Frames the kernel dropped because a capture ring was full.", "interface")
	descKernFreezes = desc("kernel_ring_full_total", "Times a capture ring of the interface was full.", "interface")
	descEngRecords  = desc("detect_records_total", "Flow records fed to the detection engine.")
	descFindings    = desc("findings_total", "Findings emitted (new and updated), by kind.", "kind")
	descFindingNew  = desc("findings_new_total", "Findings emitted for the first time.")
	descFindingUpd  = desc("finding_updates_total", "Updates of findings already emitted (score or severity moved).")
	descDetKeys     = desc("detector_keys", "Keys (pairs, hosts, domains) a detector tracks.", "detector")
	descDetBytes    = desc("detector_state_bytes", "Bytes of state a detector holds, as it accounts them.", "detector")
	descDetEvict    = desc("detector_evictions_total", "Keys a detector dropped because its state was full.", "detector")
	descSinkSent    = desc("sink_sent_total", "Messages a sink delivered.", "sink")
	descSinkRetried = desc("sink_retried_total", "Delivery attempts a sink retried.", "sink")
	descSinkDropped = desc("sink_dropped_total", "Messages a sink dropped (buffer full, undeliverable, or left at shutdown).", "sink")
	descSinkErrors  = desc("sink_errors_total", "Failed delivery attempts of a sink.", "sink")
	descSinkBuf     = desc("sink_buffered", "Messages waiting in a sink's buffer.", "sink")
	descSinkErrTime = desc("sink_last_error_timestamp_seconds", "Wall time of a sink's last error (0: none).", "sink")
	descReloads     = desc("config_reloads_total", "Configuration reloads (SIGHUP), by result.", "result")
	descReloadTime  = desc("config_last_reload_success_timestamp_seconds", "Wall time of the last successful reload (0: none).")
	descHeartbeat   = desc("heartbeat_timestamp_seconds", "Wall time the pipeline last showed progress (a packet read, or its clock ticked).")
)

var allDescs = []*prometheus.Desc{
	descPackets, descBytes, descDuplicates, descDecodeErrs, descFlowsActive, descFlows, descRecords,
	descEvicted, descFragments, descFragOrphans, descLastPacket, descKernPackets, descKernDrops,
	descKernFreezes, descEngRecords, descFindings, descFindingNew, descFindingUpd, descDetKeys,
	descDetBytes, descDetEvict, descSinkSent, descSinkRetried, descSinkDropped, descSinkErrors, descSinkBuf,
	descSinkErrTime, descReloads, descReloadTime, descHeartbeat,
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	if s == nil {
		return
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}

	gauge(descHeartbeat, unix(s.Heartbeat))
	if s.SensorValid {
		st := &s.Sensor
		counter(descPackets, st.Packets)
		counter(descBytes, st.Bytes)
		counter(descDuplicates, st.Duplicates)
		for k, n := range st.DecodeErrors {
			counter(descDecodeErrs, n, capture.ErrorKind(k).String())
		}
		t := &st.Table
		gauge(descFlowsActive, float64(max(t.Active, 0)))
		counter(descFlows, t.Flows)
		counter(descRecords, t.Records, "true")
		counter(descRecords, t.Interim, "false")
		counter(descEvicted, t.Evicted)
		counter(descFragments, t.Fragments)
		counter(descFragOrphans, t.FragOrphans)
		gauge(descLastPacket, unix(st.Last))
	}
	for _, i := range s.Interfaces {
		counter(descKernPackets, i.Packets, i.Name)
		counter(descKernDrops, i.Drops, i.Name)
		counter(descKernFreezes, i.Freezes, i.Name)
	}

	counter(descEngRecords, s.Engine.Records)
	counter(descFindingNew, s.Engine.New)
	counter(descFindingUpd, s.Engine.Updates)
	for _, k := range detect.Kinds {
		counter(descFindings, s.Engine.ByKind[k], string(k))
	}
	kinds := make([]detect.Kind, 0, len(s.Detectors))
	for k := range s.Detectors {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i] < kinds[j] })
	for _, k := range kinds {
		d := s.Detectors[k]
		gauge(descDetKeys, float64(d.Keys), string(k))
		gauge(descDetBytes, float64(d.Bytes), string(k))
		counter(descDetEvict, d.Evictions, string(k))
	}

	for _, k := range s.Sinks {
		st := &k.Stats
		counter(descSinkSent, st.Sent, k.Name)
		counter(descSinkRetried, st.Retried, k.Name)
		counter(descSinkDropped, st.Dropped, k.Name)
		counter(descSinkErrors, st.Errors, k.Name)
		gauge(descSinkBuf, float64(st.Buffered), k.Name)
		gauge(descSinkErrTime, unix(st.LastErrorTime), k.Name)
	}

	counter(descReloads, s.Reloads.OK, "ok")
	counter(descReloads, s.Reloads.Failed, "failed")
	gauge(descReloadTime, unix(s.Reloads.Last))
}
