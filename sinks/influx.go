package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	http2 "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/flowhound/flowhound/detect"
)

// InfluxConfig configures the InfluxDB sink (InfluxDB 2.x, or 1.8 and later
// with its v2-compatible /api/v2/write endpoint).
type InfluxConfig struct {
	// URL of the server, such as http://influxdb:8086.
	URL string `yaml:"url"`
	// Org is the organisation (ignored by InfluxDB 1.8).
	Org string `yaml:"org"`
	// Bucket receives the points; with InfluxDB 1.8 it is "database" or
	// "database/retention-policy", and the database must exist.
	Bucket string `yaml:"bucket"`
	// The API token (with InfluxDB 1.8 and auth on: "user:password"), from
	// at most one of Token, the environment variable TokenEnv or the file
	// TokenFile. None when authentication is off.
	Token     string `yaml:"token"`
	TokenEnv  string `yaml:"token_env"`
	TokenFile string `yaml:"token_file"`
	// Sensor is the sensor tag of every point; empty takes the finding's or
	// the counters' own Sensor.
	Sensor string `yaml:"sensor"`
	// FindingMeasurement and CountersMeasurement name the measurements.
	FindingMeasurement  string `yaml:"finding_measurement"`
	CountersMeasurement string `yaml:"counters_measurement"`
	// Timeout bounds one write request.
	Timeout  time.Duration `yaml:"timeout"`
	TLS      TLSConfig     `yaml:"tls"`
	Delivery Delivery      `yaml:",inline"`
}

// String describes the settings with the token masked.
func (c InfluxConfig) String() string {
	tok := "none"
	switch {
	case c.Token != "":
		tok = "***"
	case c.TokenEnv != "":
		tok = "env " + c.TokenEnv
	case c.TokenFile != "":
		tok = "file " + c.TokenFile
	}
	return fmt.Sprintf("{url=%s org=%s bucket=%s token=%s sensor=%s}", c.URL, c.Org, c.Bucket, tok, c.Sensor)
}

// Default InfluxDB measurement names.
const (
	DefaultFindingMeasurement  = "flowhound_finding"
	DefaultCountersMeasurement = "flowhound_sensor"
)

// DefaultInfluxDelivery returns the InfluxDB sink's Delivery default.
func DefaultInfluxDelivery() Delivery {
	return Delivery{
		Buffer: 10_000, MaxBatch: 5000, Linger: 100 * time.Millisecond,
		BackoffMin: 200 * time.Millisecond, BackoffMax: 10 * time.Second, CloseTimeout: 10 * time.Second,
	}
}

// Influx writes one point per finding and one per counters message; flow
// records are not written (they would be unbounded series).
//
// Finding points: tags sensor, kind, severity, proto — bounded sets only
// (unknown values become "other") so that series stay few; fields uid,
// status, score, score_<sub-score>, src, dst, dst_port, fqdn, bytes_out,
// bytes_in, connections. Counter points: tag sensor; fields packets, bytes,
// flows_active, decode_errors, drops and findings_<kind> for every kind.
//
// A point is identified by its series and time, so two findings of one
// series in the same microsecond would overwrite each other; finding points
// therefore carry the finding time truncated to the microsecond plus a
// nanosecond offset derived from the finding's uid. Updates of one finding
// at one time still overwrite, as they should.
//
// Batches are written with the client's blocking WriteAPI from the sink's
// own goroutine: Send never blocks, and every point is accounted for as
// sent, retried or dropped (the client's non-blocking WriteAPI discards
// batches with only a log line).
type Influx struct {
	*pipe
	drv *influxDriver
}

var _ Sink = (*Influx)(nil)

// NewInflux checks cfg and starts the sink; it does not contact the server.
func NewInflux(cfg InfluxConfig) (*Influx, error) {
	const name = "influxdb"
	cfg.Delivery = cfg.Delivery.withDefaults(DefaultInfluxDelivery())
	if err := cfg.Delivery.validate(name); err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, badSettingErr(name, "url", err, "cannot parse %q", cfg.URL)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, badSetting(name, "url", "want http://host:port or https://host:port, got %q", cfg.URL)
	}
	if cfg.Bucket == "" {
		return nil, badSetting(name, "bucket", "empty")
	}
	if cfg.FindingMeasurement == "" {
		cfg.FindingMeasurement = DefaultFindingMeasurement
	}
	if cfg.CountersMeasurement == "" {
		cfg.CountersMeasurement = DefaultCountersMeasurement
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Timeout < time.Second {
		return nil, badSetting(name, "timeout", "must be at least 1s, got %s", cfg.Timeout)
	}
	token := ""
	if cfg.Token != "" || cfg.TokenEnv != "" || cfg.TokenFile != "" {
		if token, err = readSecret(name, "token", cfg.Token, cfg.TokenEnv, cfg.TokenFile); err != nil {
			return nil, err
		}
	}
	tlsConf, err := buildTLS(name, cfg.TLS)
	if err != nil {
		return nil, err
	}
	opts := influxdb2.DefaultOptions().
		SetLogLevel(0).
		SetHTTPRequestTimeout(uint(cfg.Timeout / time.Second)).
		SetApplicationName("flowhound")
	if tlsConf != nil {
		opts.SetTLSConfig(tlsConf)
	}
	client := influxdb2.NewClientWithOptions(strings.TrimRight(cfg.URL, "/"), token, opts)
	d := &influxDriver{cfg: cfg, client: client, w: client.WriteAPIBlocking(cfg.Org, cfg.Bucket)}
	accept := func(t Topic) bool { return t == TopicFinding || t == TopicCounters }
	return &Influx{pipe: newPipe(name, cfg.Delivery, d, accept), drv: d}, nil
}

type influxDriver struct {
	cfg    InfluxConfig
	client influxdb2.Client
	w      api.WriteAPIBlocking
	points []*write.Point
}

func (d *influxDriver) deliver(ctx context.Context, batch []Message) result {
	var r result
	d.points = d.points[:0]
	var sent []Message // the messages behind d.points
	for i := range batch {
		p, err := d.point(&batch[i])
		if err != nil {
			r.dropped++
			r.permErr = err
			continue
		}
		d.points = append(d.points, p)
		sent = append(sent, batch[i])
	}
	if len(d.points) == 0 {
		return r
	}
	err := d.w.WritePoint(ctx, d.points...)
	clear(d.points)
	if err == nil {
		return r
	}
	var he *http2.Error
	status := 0
	if errors.As(err, &he) {
		status = he.StatusCode
	}
	switch {
	case status == 0 || status == http.StatusTooManyRequests || status >= 500:
		r.retry, r.err = sent, fmt.Errorf("influxdb: %s: %w", d.cfg.URL, err)
	case status == http.StatusNotFound:
		// Usually the database or bucket is missing; it may be created.
		r.retry, r.err = sent, fmt.Errorf("influxdb: bucket %q not found on %s (create the database): %w", d.cfg.Bucket, d.cfg.URL, err)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		r.dropped += len(sent)
		r.permErr = fmt.Errorf("influxdb: %s refused the credentials (HTTP %d)", d.cfg.URL, status)
	default:
		r.dropped += len(sent)
		r.permErr = fmt.Errorf("influxdb: %s refused the points (HTTP %d): %s", d.cfg.URL, status, firstLine(he.Message))
	}
	return r
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func (d *influxDriver) close() error {
	d.client.Close()
	return nil
}

func (d *influxDriver) point(m *Message) (*write.Point, error) {
	switch m.Topic {
	case TopicFinding:
		f := m.Finding
		if f == nil {
			f = new(detect.Finding)
			if err := f.UnmarshalJSON(m.Value); err != nil {
				return nil, fmt.Errorf("influxdb: undecodable finding: %w", err)
			}
		}
		return d.findingPoint(f), nil
	case TopicCounters:
		c := m.Counters
		if c == nil {
			c = new(Counters)
			if err := json.Unmarshal(m.Value, c); err != nil {
				return nil, fmt.Errorf("influxdb: undecodable counters: %w", err)
			}
		}
		return d.countersPoint(c), nil
	}
	return nil, fmt.Errorf("influxdb: cannot write %s messages", m.Topic)
}

func (d *influxDriver) sensor(own string) string {
	s := d.cfg.Sensor
	if s == "" {
		s = own
	}
	if s == "" {
		s = "unknown"
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

func (d *influxDriver) findingPoint(f *detect.Finding) *write.Point {
	tags := map[string]string{
		"sensor":   d.sensor(f.Sensor),
		"kind":     boundedKind(string(f.Kind)),
		"severity": boundedSeverity(f.Severity),
	}
	if f.Proto != "" {
		tags["proto"] = boundedProto(f.Proto)
	}
	fields := map[string]any{
		"uid":    f.UID,
		"status": string(f.Status),
		"score":  f.Score,
		"src":    f.Src.String(),
	}
	for _, s := range f.SubScores {
		fields["score_"+fieldName(s.Name)] = s.Value
	}
	if f.Dst.IsValid() {
		fields["dst"] = f.Dst.String()
	}
	if f.DstPort != 0 {
		fields["dst_port"] = int64(f.DstPort)
	}
	if f.FQDN != "" {
		fields["fqdn"] = f.FQDN
	}
	ev := &f.Evidence
	if ev.BytesOut != 0 {
		fields["bytes_out"] = clampInt(ev.BytesOut)
	}
	if ev.BytesIn != 0 {
		fields["bytes_in"] = clampInt(ev.BytesIn)
	}
	if ev.Connections != 0 {
		fields["connections"] = clampInt(ev.Connections)
	}
	t := f.Time
	if t.IsZero() {
		t = time.Now()
	}
	h := fnv.New32a()
	h.Write([]byte(f.UID))
	t = t.Truncate(time.Microsecond).Add(time.Duration(h.Sum32() % 1000))
	return write.NewPoint(d.cfg.FindingMeasurement, tags, fields, t)
}

func (d *influxDriver) countersPoint(c *Counters) *write.Point {
	fields := map[string]any{
		"packets":       clampInt(c.Packets),
		"bytes":         clampInt(c.Bytes),
		"flows_active":  clampInt(c.FlowsActive),
		"decode_errors": clampInt(c.DecodeErrors),
		"drops":         clampInt(c.Drops),
	}
	for _, k := range detect.Kinds {
		fields["findings_"+string(k)] = int64(0)
	}
	for k, n := range c.Findings {
		key := "findings_" + boundedKind(string(k))
		cur, _ := fields[key].(int64)
		fields[key] = cur + clampInt(n)
	}
	t := c.Time
	if t.IsZero() {
		t = time.Now()
	}
	return write.NewPoint(d.cfg.CountersMeasurement, map[string]string{"sensor": d.sensor(c.Sensor)}, fields, t)
}

// InfluxDB 1.x does not take unsigned integers; counts stay far below
// 2^63 anyway.
func clampInt(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}

func boundedKind(k string) string {
	for _, known := range detect.Kinds {
		if k == string(known) {
			return k
		}
	}
	return "other"
}

func boundedSeverity(s detect.Severity) string {
	switch s {
	case detect.SeverityLow, detect.SeverityMedium, detect.SeverityHigh, detect.SeverityCritical:
		return string(s)
	}
	return "other"
}

func boundedProto(p string) string {
	switch p {
	case "tcp", "udp", "icmp", "icmp6", "sctp":
		return p
	}
	return "other"
}

// fieldName keeps [a-z0-9_] so that sub-score names make plain field keys.
func fieldName(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}
