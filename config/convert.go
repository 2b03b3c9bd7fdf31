package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
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
