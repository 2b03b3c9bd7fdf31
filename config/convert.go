package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"strings"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
	"github.com/flowhound/flowhound/sinks"
)

// The conversions below assume a valid configuration (see Validate): items
// that do not parse are skipped.

// HomeNetworks returns home_nets as a set.
func (c *Config) HomeNetworks() *flow.Networks { return networks(c.HomeNets) }

// TableConfig returns the flow table settings. The hash seed is left zero,
// so each table picks its own.
func (c *Config) TableConfig() capture.TableConfig {
	t := &c.Capture.FlowTable
	return capture.TableConfig{
		MaxFlows:          t.MaxFlows,
		TCPTimeout:        t.TCPTimeout,
		TCPAttemptTimeout: t.TCPAttemptTimeout,
		TCPCloseGrace:     t.TCPCloseGrace,
		UDPTimeout:        t.UDPTimeout,
		ICMPTimeout:       t.ICMPTimeout,
		OtherTimeout:      t.OtherTimeout,
		ActiveTimeout:     t.ActiveTimeout,
		HomeNets:          c.HomeNetworks(),
	}
}

// CaptureConfig returns the packet path's settings. The number of workers
// is Capture.Workers.
func (c *Config) CaptureConfig() capture.Config {
	return capture.Config{Table: c.TableConfig(), Dedup: c.Capture.Dedup}
}

// DetectConfig returns the detectors' settings, the home networks and the
// allowlist.
func (c *Config) DetectConfig() detect.Config {
	d := &c.Detect
	allow := &detect.Allowlist{Nets: networks(c.Allowlist.CIDRs), Pairs: map[[2]netip.Addr]bool{}}
	allow.Domains, _ = detect.ParseDomains(c.Allowlist.Domains)
	for _, p := range c.Allowlist.Pairs {
		src, err1 := netip.ParseAddr(p.Src)
		dst, err2 := netip.ParseAddr(p.Dst)
		if err1 == nil && err2 == nil {
			allow.Pairs[[2]netip.Addr{src.Unmap(), dst.Unmap()}] = true
		}
	}
	return detect.Config{
		Sensor:   c.Sensor.ID,
		HomeNets: c.HomeNetworks(),
		Allow:    allow,
		Beacon: detect.BeaconConfig{
			Enabled: d.Beacon.Enabled, MinBeats: d.Beacon.MinBeats, MinPeriod: d.Beacon.MinPeriod,
			MaxPeriod: d.Beacon.MaxPeriod, Threshold: d.Beacon.Threshold, MaxPairs: d.Beacon.MaxPairs,
			MaxPrevalence: d.Beacon.MaxPrevalence,
		},
		LongConn: detect.LongConnConfig{
			Enabled: d.LongConnection.Enabled, MinTotal: d.LongConnection.MinTotal, MaxPairs: d.LongConnection.MaxPairs,
		},
		Exfil: detect.ExfilConfig{
			Enabled: d.Exfil.Enabled, MinBytes: uint64(d.Exfil.MinBytes), Window: d.Exfil.Window,
			SlowBytes: uint64(d.Exfil.SlowBytes), SlowWindow: d.Exfil.SlowWindow, MinPCR: d.Exfil.MinPCR,
			MaxKeys: d.Exfil.MaxKeys,
		},
		DNSExfil: detect.DNSExfilConfig{
			Enabled: d.DNSExfil.Enabled, MinNames: d.DNSExfil.MinNames, MinLabelLen: d.DNSExfil.MinLabelLen,
			MinEntropy: d.DNSExfil.MinEntropy, Window: d.DNSExfil.Window, MaxKeys: d.DNSExfil.MaxKeys,
		},
		Lateral: detect.LateralConfig{
			Enabled: d.LateralMovement.Enabled, AdminPorts: append([]uint16{}, d.LateralMovement.AdminPorts...),
			Learning: d.LateralMovement.Learning, FanOut: d.LateralMovement.FanOut, Window: d.LateralMovement.Window,
			ChainGap: d.LateralMovement.ChainGap, MaxHosts: d.LateralMovement.MaxHosts,
		},
		Scan: detect.ScanConfig{
			Enabled: d.Scan.Enabled, Vertical: d.Scan.Vertical, Horizontal: d.Scan.Horizontal,
			Window: d.Scan.Window, MaxHosts: d.Scan.MaxHosts,
		},
	}
}

// SlogLevel returns log.level as a slog level.
func (l *Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Config builds the client TLS configuration, reading the CA and the
// client key pair. It returns nil when TLS is not enabled.
func (t *TLS) Config() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, readError(t.CAFile, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no PEM certificate in %s", t.CAFile)
		}
	}
	if t.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

func networks(list []string) *flow.Networks {
	var ps []netip.Prefix
	for _, s := range list {
		if n, err := flow.ParseNetworks(strings.TrimSpace(s)); err == nil {
			ps = append(ps, n.Prefixes()...)
		}
	}
	return flow.NewNetworks(ps)
}

// prefixStrings lists a set's canonical prefixes.
func prefixStrings(n *flow.Networks) []string {
	out := []string{}
	for _, p := range n.Prefixes() {
		out = append(out, p.String())
	}
	return out
}

// The sink conversions below are where the configuration file's settings
// meet package sinks. The file stays the user-facing source of truth; where
// the two disagree, the file's name and value win:
//
//   - sinks.jsonl.path "" disables the sink (the sinks package reads "" as
//     standard output), so JSONLConfig reports it as not enabled.
//   - sinks.kafka.batch_size is the most messages in one produce request
//     (KafkaConfig.BatchSize); batch_timeout is how long a batch waits for
//     more messages (Delivery.Linger); buffer is Delivery.Buffer.
//   - Secrets are passed as the file has them, inline or as a file name;
//     the sinks read the file. A secret from the environment
//     (FLOWHOUND_SINKS_KAFKA_SASL_PASSWORD) has already replaced the inline
//     value, so the sinks' own *_env indirection is never used.
//
// Settings the file does not have keep the sinks' defaults. The Delivery
// logger is left nil for the caller to set.

// JSONLConfig returns the JSON-lines sink's settings and whether the sink is
// enabled. It writes findings only.
func (c *Config) JSONLConfig() (sinks.JSONLConfig, bool) {
	j := &c.Sinks.JSONL
	if !j.Enabled() {
		return sinks.JSONLConfig{}, false
	}
	return sinks.JSONLConfig{
		Path:       j.Path,
		RotateSize: int64(min(uint64(j.RotateSize), math.MaxInt64)),
		RotateKeep: j.RotateKeep,
		Topics:     []sinks.Topic{sinks.TopicFinding},
	}, true
}

// KafkaConfig returns the Kafka sink's settings and whether the sink is
// enabled (brokers are listed). Counters are not published to Kafka: the
// file has no topic for them.
func (c *Config) KafkaConfig() (sinks.KafkaConfig, bool) {
	k := &c.Sinks.Kafka
	if !k.Enabled() {
		return sinks.KafkaConfig{}, false
	}
	return sinks.KafkaConfig{
		Brokers:          append([]string(nil), k.Brokers...),
		FindingsTopic:    k.FindingsTopic,
		FlowsTopic:       k.FlowsTopic,
		Compression:      k.Compression,
		BatchSize:        k.BatchSize,
		RequiredAcks:     k.RequiredAcks,
		AutoCreateTopics: k.AutoCreateTopics,
		TLS:              k.TLS.sinksConfig(),
		SASL: sinks.SASLConfig{
			Mechanism:    k.SASL.Mechanism,
			Username:     k.SASL.Username,
			Password:     string(k.SASL.Password),
			PasswordFile: k.SASL.PasswordFile,
		},
		Delivery: sinks.Delivery{Buffer: k.Buffer, Linger: k.BatchTimeout},
	}, true
}

// InfluxConfig returns the InfluxDB sink's settings and whether the sink is
// enabled (url is set). The counters interval, sinks.influxdb.interval, is
// not a sink setting: the caller publishes counters that often.
func (c *Config) InfluxConfig() (sinks.InfluxConfig, bool) {
	x := &c.Sinks.InfluxDB
	if !x.Enabled() {
		return sinks.InfluxConfig{}, false
	}
	return sinks.InfluxConfig{
		URL:       x.URL,
		Org:       x.Org,
		Bucket:    x.Bucket,
		Token:     string(x.Token),
		TokenFile: x.TokenFile,
		Delivery:  sinks.Delivery{Buffer: x.Buffer},
	}, true
}

func (t *TLS) sinksConfig() sinks.TLSConfig {
	return sinks.TLSConfig{
		Enabled:            t.Enabled,
		CAFile:             t.CAFile,
		CertFile:           t.CertFile,
		KeyFile:            t.KeyFile,
		InsecureSkipVerify: t.InsecureSkipVerify,
	}
}
