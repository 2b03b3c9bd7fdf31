package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
)

// Validate checks every setting and returns all problems, one per line.
// Each names the setting's path and, when known, the file and line (or the
// environment variable) the value came from. Files the enabled sinks need
// (CA, client certificate, secret files) must be readable; capture files
// must exist.
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.sensor()
	v.capture()
	for i, s := range c.HomeNets {
		v.network(fmt.Sprintf("home_nets[%d]", i), s)
	}
	v.allowlist()
	v.detect()
	v.jsonl()
	v.kafka()
	v.influxDB()
	v.metrics()
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
	return errors.Join(v.errs...)
}

type validator struct {
	c    *Config
	errs []error
}

func (v *validator) fail(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Where: v.c.meta.where(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) between(path string, n, lo, hi int) bool {
	if n < lo || n > hi {
		v.fail(path, "must be between %d and %d, got %d", lo, hi, n)
		return false
	}
	return true
}

func (v *validator) atLeast(path string, n, lo int) bool {
	if n < lo {
		v.fail(path, "must be at least %d, got %d", lo, n)
		return false
	}
	return true
}

func (v *validator) positive(path string, d time.Duration) bool {
	if d <= 0 {
		v.fail(path, "must be positive, got %s", formatDuration(d))
		return false
	}
	return true
}

func (v *validator) oneOf(path, s string, choices ...string) {
	for _, c := range choices {
		if s == c {
			return
		}
	}
	v.fail(path, "want one of %s, got %q", strings.Join(choices, ", "), s)
}

func (v *validator) notEmpty(path, s string) bool {
	if s == "" {
		v.fail(path, "must not be empty")
		return false
	}
	return true
}

func (v *validator) sensor() {
	id := v.c.Sensor.ID
	switch {
	case id == "":
		v.fail("sensor.id", "must not be empty (leave it out to use the host name)")
	case len(id) > 253:
		v.fail("sensor.id", "must be at most 253 bytes, got %d", len(id))
	case strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		v.fail("sensor.id", "must not contain spaces or control characters, got %q", id)
	}
}

func (v *validator) capture() {
	c := &v.c.Capture
	seen := map[string]int{}
	for i, in := range c.Interfaces {
		p := fmt.Sprintf("capture.interfaces[%d]", i)
		switch {
		case in.Name == "":
			v.fail(p+".name", "must not be empty")
		case len(in.Name) > 15 || strings.ContainsAny(in.Name, "/: \t") || in.Name == "." || in.Name == "..":
			v.fail(p+".name", "not a network interface name: %q", in.Name)
		default:
			if j, dup := seen[in.Name]; dup {
				v.fail(p+".name", "%q is already listed as capture.interfaces[%d]", in.Name, j)
			}
			seen[in.Name] = i
		}
		if in.RingSize < 1<<20 {
			v.fail(p+".ring_size", "must be at least 1MiB, got %s", in.RingSize)
		}
		v.between(p+".snaplen", in.Snaplen, 64, 262144)
		v.between(p+".fanout_workers", in.FanoutWorkers, 1, 256)
	}
	for i, f := range c.Files {
		p := fmt.Sprintf("capture.files[%d]", i)
		if v.notEmpty(p, f) && f != "-" {
			if _, err := os.Stat(f); err != nil {
				v.fail(p, "%v", readError(f, err))
			}
		}
	}
	t := &c.FlowTable
	// The table indexes flows with 32 bits.
	v.between("capture.flow_table.max_flows", t.MaxFlows, 1, math.MaxInt32)
	v.positive("capture.flow_table.tcp_timeout", t.TCPTimeout)
	v.positive("capture.flow_table.tcp_attempt_timeout", t.TCPAttemptTimeout)
	v.positive("capture.flow_table.tcp_close_grace", t.TCPCloseGrace)
	v.positive("capture.flow_table.udp_timeout", t.UDPTimeout)
	v.positive("capture.flow_table.icmp_timeout", t.ICMPTimeout)
	v.positive("capture.flow_table.other_timeout", t.OtherTimeout)
	v.positive("capture.flow_table.active_timeout", t.ActiveTimeout)
	if c.Dedup < 0 || c.Dedup > time.Second {
		v.fail("capture.dedup", "must be between 0 and 1s, got %s", formatDuration(c.Dedup))
	}
	v.between("capture.workers", c.Workers, 1, 256)
}

// network checks one CIDR (or bare address) of a list.
func (v *validator) network(path, s string) {
	if strings.ContainsAny(s, ", \t\n") {
		v.fail(path, "want one CIDR per item, got %q", s)
		return
	}
	if n, err := flow.ParseNetworks(s); err != nil || len(n.Prefixes()) == 0 {
		v.fail(path, "want a CIDR such as 10.0.0.0/8 or an address, got %q", s)
	}
}

func (v *validator) allowlist() {
	a := &v.c.Allowlist
	for i, s := range a.CIDRs {
		v.network(fmt.Sprintf("allowlist.cidrs[%d]", i), s)
	}
	for i, d := range a.Domains {
		if _, err := detect.ParseDomains([]string{d}); err != nil {
			v.fail(fmt.Sprintf("allowlist.domains[%d]", i), "want a name or *.name, got %q", d)
		}
	}
	for i, p := range a.Pairs {
		path := fmt.Sprintf("allowlist.pairs[%d]", i)
		v.addr(path+".src", p.Src)
		v.addr(path+".dst", p.Dst)
	}
}

func (v *validator) addr(path, s string) {
	if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" {
		v.fail(path, "want an IP address, got %q", s)
	}
}

func (v *validator) detect() {
	d := &v.c.Detect
	b := &d.Beacon
	v.atLeast("detect.beacon.min_beats", b.MinBeats, 3)
	if v.positive("detect.beacon.min_period", b.MinPeriod) && b.MaxPeriod <= b.MinPeriod {
		v.fail("detect.beacon.max_period", "must be longer than min_period (%s), got %s",
			formatDuration(b.MinPeriod), formatDuration(b.MaxPeriod))
	}
	if !(b.Threshold > 0 && b.Threshold <= 1) {
		v.fail("detect.beacon.threshold", "must be in (0,1], got %s", formatFloat(b.Threshold))
	}
	v.atLeast("detect.beacon.max_pairs", b.MaxPairs, 1)
	v.atLeast("detect.beacon.max_prevalence", b.MaxPrevalence, 1)

	l := &d.LongConnection
	v.positive("detect.long_connection.min_total", l.MinTotal)
	v.atLeast("detect.long_connection.max_pairs", l.MaxPairs, 1)

	e := &d.Exfil
	if e.MinBytes == 0 {
		v.fail("detect.exfil.min_bytes", "must be positive")
	}
	v.positive("detect.exfil.window", e.Window)
	if e.SlowBytes == 0 {
		v.fail("detect.exfil.slow_bytes", "must be positive")
	}
	v.positive("detect.exfil.slow_window", e.SlowWindow)
	if !(e.MinPCR >= -1 && e.MinPCR <= 1) {
		v.fail("detect.exfil.min_pcr", "must be in [-1,1], got %s", formatFloat(e.MinPCR))
	}
	v.atLeast("detect.exfil.max_keys", e.MaxKeys, 1)

	n := &d.DNSExfil
	v.atLeast("detect.dns_exfil.min_names", n.MinNames, 1)
	v.between("detect.dns_exfil.min_label_len", n.MinLabelLen, 1, 63) // a DNS label has at most 63 bytes
	if !(n.MinEntropy > 0 && n.MinEntropy <= 8) {
		v.fail("detect.dns_exfil.min_entropy", "must be in (0,8] bits per character, got %s", formatFloat(n.MinEntropy))
	}
	v.positive("detect.dns_exfil.window", n.Window)
	v.atLeast("detect.dns_exfil.max_keys", n.MaxKeys, 1)

	m := &d.LateralMovement
	seen := map[uint16]bool{}
	for i, p := range m.AdminPorts {
		path := fmt.Sprintf("detect.lateral_movement.admin_ports[%d]", i)
		switch {
		case p == 0:
			v.fail(path, "must be between 1 and 65535, got 0")
		case seen[p]:
			v.fail(path, "port %d is listed twice", p)
		}
		seen[p] = true
	}
	if m.Learning < 0 {
		v.fail("detect.lateral_movement.learning", "must not be negative, got %s", formatDuration(m.Learning))
	}
	v.atLeast("detect.lateral_movement.fan_out", m.FanOut, 1)
	v.positive("detect.lateral_movement.window", m.Window)
	v.positive("detect.lateral_movement.chain_gap", m.ChainGap)
	v.atLeast("detect.lateral_movement.max_hosts", m.MaxHosts, 1)

	s := &d.Scan
	v.atLeast("detect.scan.vertical", s.Vertical, 2)
	v.atLeast("detect.scan.horizontal", s.Horizontal, 2)
	v.positive("detect.scan.window", s.Window)
	v.atLeast("detect.scan.max_hosts", s.MaxHosts, 1)
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func (v *validator) jsonl() {
	j := &v.c.Sinks.JSONL
	switch j.Path {
	case "":
	case "-":
		if j.RotateSize != 0 {
			v.fail("sinks.jsonl.rotate_size", "standard output cannot be rotated; set 0 or a file path")
		}
	default:
		if fi, err := os.Stat(j.Path); err == nil && fi.IsDir() {
			v.fail("sinks.jsonl.path", "%s is a directory", j.Path)
		} else if dir := filepath.Dir(j.Path); !isDir(dir) {
			v.fail("sinks.jsonl.path", "directory %s does not exist", dir)
		}
	}
	if j.RotateSize > 0 {
		v.atLeast("sinks.jsonl.rotate_keep", j.RotateKeep, 1)
	} else {
		v.atLeast("sinks.jsonl.rotate_keep", j.RotateKeep, 0)
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func (v *validator) kafka() {
	k := &v.c.Sinks.Kafka
	const p = "sinks.kafka."
	for i, b := range k.Brokers {
		v.hostPort(fmt.Sprintf(p+"brokers[%d]", i), b, "")
	}
	v.topic(p+"findings_topic", k.FindingsTopic)
	if k.FlowsTopic != "" {
		v.topic(p+"flows_topic", k.FlowsTopic)
		if k.FlowsTopic == k.FindingsTopic {
			v.fail(p+"flows_topic", "must differ from findings_topic, got %q", k.FlowsTopic)
		}
	}
	v.oneOf(p+"compression", k.Compression, "none", "gzip", "snappy", "lz4", "zstd")
	if v.between(p+"batch_size", k.BatchSize, 1, 1000000) && k.Buffer < k.BatchSize {
		v.fail(p+"buffer", "must be at least batch_size (%d), got %d", k.BatchSize, k.Buffer)
	}
	v.positive(p+"batch_timeout", k.BatchTimeout)
	v.oneOf(p+"required_acks", k.RequiredAcks, "none", "one", "all")
	v.tls(p+"tls.", &k.TLS, k.Enabled())
	v.sasl(p+"sasl.", &k.SASL, k.Enabled())
}

// hostPort checks a host:port address; empty means disabled when
// disabled is not "".
func (v *validator) hostPort(path, s, disabled string) {
	if s == "" && disabled != "" {
		return
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || (host == "" && disabled == "") {
		v.fail(path, "want host:port%s, got %q", disabled, s)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.fail(path, "want a port number between 1 and 65535, got %q", port)
	}
}

// topic checks a Kafka topic name as the broker would.
func (v *validator) topic(path, t string) {
	switch {
	case t == "":
		v.fail(path, "must not be empty")
	case len(t) > 249 || t == "." || t == ".." || strings.Trim(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "":
		v.fail(path, "not a Kafka topic name (at most 249 letters, digits, '.', '_' and '-'), got %q", t)
	}
}

func (v *validator) tls(p string, t *TLS, used bool) {
	if !t.Enabled {
		v.unused(p, "enabled is false", "ca_file", t.CAFile != "", "cert_file", t.CertFile != "",
			"key_file", t.KeyFile != "", "insecure_skip_verify", t.InsecureSkipVerify)
		return
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		if t.CertFile == "" {
			v.fail(p+"cert_file", "required when key_file is set")
		} else {
			v.fail(p+"key_file", "required when cert_file is set")
		}
		return
	}
	if !used {
		return
	}
	if t.CAFile != "" {
		if pem, err := os.ReadFile(t.CAFile); err != nil {
			v.fail(p+"ca_file", "%v", readError(t.CAFile, err))
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			v.fail(p+"ca_file", "no PEM certificate in %s", t.CAFile)
		}
	}
	if t.CertFile != "" {
		if _, err := os.Stat(t.CertFile); err != nil {
			v.fail(p+"cert_file", "%v", readError(t.CertFile, err))
		} else if _, err := os.Stat(t.KeyFile); err != nil {
			v.fail(p+"key_file", "%v", readError(t.KeyFile, err))
		} else if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			v.fail(p+"cert_file", "not a key pair with key_file: %v", err)
		}
	}
}

// unused reports each set setting of a section that is off; pairs are
// key, set.
func (v *validator) unused(p, why string, pairs ...any) {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1].(bool) {
			v.fail(p+pairs[i].(string), "set, but %s%s", p, why)
		}
	}
}

// secret checks a secret given inline or in a file.
func (v *validator) secret(p, inlineKey string, inline Secret, fileKey, file string, used bool) {
	if inline == Redacted {
		v.fail(p+inlineKey, "is the %s placeholder of printed output; set the real value or use %s", Redacted, fileKey)
	}
	if inline != "" && file != "" {
		v.fail(p+fileKey, "%s and %s are both set; use one", inlineKey, fileKey)
		return
	}
	if file != "" && used {
		if _, err := readSecret("", file); err != nil {
			v.fail(p+fileKey, "%v", err)
		}
	}
}

func (v *validator) sasl(p string, s *SASL, used bool) {
	if s.Mechanism == "" {
		v.unused(p, "mechanism is empty", "username", s.Username != "", "password", s.Password != "",
			"password_file", s.PasswordFile != "")
		return
	}
	v.oneOf(p+"mechanism", s.Mechanism, "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
	if s.Username == "" {
		v.fail(p+"username", "required when mechanism is set")
	}
	if s.Password == "" && s.PasswordFile == "" {
		v.fail(p+"password", "required when mechanism is set (or set password_file)")
	}
	v.secret(p, "password", s.Password, "password_file", s.PasswordFile, used)
}

func (v *validator) influxDB() {
	x := &v.c.Sinks.InfluxDB
	const p = "sinks.influxdb."
	if x.URL != "" {
		// The URL is not quoted in messages: it might hold credentials.
		u, err := url.Parse(x.URL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			v.fail(p+"url", "want an http:// or https:// URL such as http://influxdb:8086")
		case u.User != nil:
			v.fail(p+"url", "must not contain credentials; use token or token_file")
		case u.RawQuery != "" || u.Fragment != "":
			v.fail(p+"url", "must not have a query or fragment")
		}
		v.notEmpty(p+"bucket", x.Bucket)
	}
	v.secret(p, "token", x.Token, "token_file", x.TokenFile, x.Enabled())
	v.positive(p+"interval", x.Interval)
	v.atLeast(p+"buffer", x.Buffer, 1)
}

func (v *validator) metrics() {
	v.hostPort("metrics.listen", v.c.Metrics.Listen, ` (or "" to disable)`)
}
