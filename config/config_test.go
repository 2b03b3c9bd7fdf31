package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/detect"
)

// sameConfig reports whether a and b hold the same settings, ignoring
// where they came from.
func sameConfig(a, b *Config) bool {
	x, y := *a, *b
	x.meta, y.meta = meta{}, meta{}
	return reflect.DeepEqual(x, y)
}

// firstDiff returns the first line where the printed forms differ.
func firstDiff(a, b *Config) string {
	al, bl := strings.Split(a.String(), "\n"), strings.Split(b.String(), "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return "line " + al[i] + " != " + bl[i]
		}
	}
	return "lengths differ"
}

func goodFiles(t testing.TB) []string {
	files, err := filepath.Glob("testdata/*.good.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good files: %v", err)
	}
	return files
}

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if h, err := os.Hostname(); err == nil && h != "" && c.Sensor.ID != h {
		t.Errorf("sensor.id = %q, want the host name %q", c.Sensor.ID, h)
	}
}

func TestGoodFiles(t *testing.T) {
	for _, f := range goodFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			// Round trip: the printed configuration parses back to the
			// same settings, secrets apart.
			back, err := parse([]byte(c.String()), f)
			if err != nil {
				t.Fatalf("parsing String() output: %v\n%s", err, c)
			}
			want := *c
			redact(&want)
			if !sameConfig(&want, back) {
				t.Errorf("round trip differs: %s", firstDiff(&want, back))
			}
		})
	}
}

// redact replaces set secrets with the placeholder, as String prints them.
func redact(c *Config) {
	for _, s := range []*Secret{&c.Sinks.Kafka.SASL.Password, &c.Sinks.InfluxDB.Token} {
		if *s != "" {
			*s = Redacted
		}
	}
	c.Sinks.InfluxDB.URL = redactURL(c.Sinks.InfluxDB.URL)
}

func TestEmptyFileIsDefault(t *testing.T) {
	c, err := Load("testdata/empty.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !sameConfig(c, Default()) {
		t.Errorf("empty file differs from Default: %s", firstDiff(c, Default()))
	}
}

func TestMinimalFile(t *testing.T) {
	c, err := Load("testdata/minimal.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata")
	if c.Sensor.ID != "edge-01" {
		t.Errorf("sensor.id = %q", c.Sensor.ID)
	}
	if got := c.HomeNetworks().String(); got != "10.0.0.0/8, 147.32.0.0/16" {
		t.Errorf("home networks = %s", got)
	}
	if want := filepath.Join(dir, "out", "findings.jsonl"); c.Sinks.JSONL.Path != want {
		t.Errorf("jsonl path = %q, want %q (resolved against the file's directory)", c.Sinks.JSONL.Path, want)
	}
	if c.Sinks.JSONL.RotateSize != 100e6 {
		t.Errorf("rotate_size = %d, want 100MB = 100000000", c.Sinks.JSONL.RotateSize)
	}
	// What the file leaves out keeps its default.
	if !reflect.DeepEqual(c.Detect, Default().Detect) {
		t.Errorf("detect settings changed though the file does not set them")
	}
}

func TestFullFile(t *testing.T) {
	c, err := Load("testdata/full.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata")

	in := c.Capture.Interfaces
	if len(in) != 2 || in[0] != DefaultInterface("eth1") || in[1].Name != "eth2" || in[1].RingSize != 256<<20 ||
		in[1].Snaplen != 9216 || in[1].FanoutWorkers != 4 || in[1].BPF != "not port 22" || in[1].Promiscuous {
		t.Errorf("interfaces = %+v", in)
	}
	wantFiles := []string{filepath.Join(dir, "..", "..", "testdata", "test-cc-capture-1.pcap.gz"), "-"}
	if !reflect.DeepEqual(c.Capture.Files, wantFiles) {
		t.Errorf("files = %q, want %q", c.Capture.Files, wantFiles)
	}

	tc := c.TableConfig()
	wantTable := capture.TableConfig{MaxFlows: 2000000, TCPTimeout: 10 * time.Minute, TCPAttemptTimeout: time.Minute,
		TCPCloseGrace: 2 * time.Second, UDPTimeout: 2 * time.Minute, ICMPTimeout: 30 * time.Second,
		OtherTimeout: 45 * time.Second, ActiveTimeout: 90 * time.Minute}
	if got := tc.HomeNets.String(); got != "147.32.0.0/16, 192.0.2.1/32, 2001:db8::/32" {
		t.Errorf("table home nets = %s", got)
	}
	tc.HomeNets = nil
	if tc != wantTable {
		t.Errorf("TableConfig() = %+v, want %+v", tc, wantTable)
	}
	if cc := c.CaptureConfig(); cc.Dedup != 5*time.Millisecond || cc.Table.MaxFlows != 2000000 {
		t.Errorf("CaptureConfig() = %+v", cc)
	}

	dc := c.DetectConfig()
	if dc.Sensor != "dc1-span-07" {
		t.Errorf("detect sensor = %q", dc.Sensor)
	}
	if !reflect.DeepEqual(dc.Allow.Domains, []string{"*.windowsupdate.com", "ntp.example.org"}) {
		t.Errorf("allow domains = %q", dc.Allow.Domains)
	}
	if got := dc.Allow.Nets.String(); got != "203.0.113.0/24" {
		t.Errorf("allow nets = %s", got)
	}
	if !dc.Allow.AllowedPair(mustAddr("10.0.0.5"), mustAddr("198.51.100.7")) || dc.Allow.AllowedPair(mustAddr("198.51.100.7"), mustAddr("10.0.0.5")) {
		t.Errorf("allow pairs = %v", dc.Allow.Pairs)
	}
	wantBeacon := detect.BeaconConfig{Enabled: true, MinBeats: 10, MinPeriod: 5 * time.Second, MaxPeriod: 12 * time.Hour,
		Threshold: 0.8, MaxPairs: 500000, MaxPrevalence: 20}
	if dc.Beacon != wantBeacon {
		t.Errorf("beacon = %+v, want %+v", dc.Beacon, wantBeacon)
	}
	if dc.LongConn.Enabled || dc.LongConn.MinTotal != time.Hour {
		t.Errorf("long connection = %+v", dc.LongConn)
	}
	wantExfil := detect.ExfilConfig{Enabled: true, MinBytes: 1e9, Window: 2 * time.Hour, SlowBytes: 50 << 20,
		SlowWindow: 48 * time.Hour, MinPCR: 0.5, MaxKeys: 1000}
	if dc.Exfil != wantExfil {
		t.Errorf("exfil = %+v, want %+v", dc.Exfil, wantExfil)
	}
	if dc.DNSExfil.MinEntropy != 4 || dc.DNSExfil.Window != 30*time.Minute {
		t.Errorf("dns exfil = %+v", dc.DNSExfil)
	}
	if !reflect.DeepEqual(dc.Lateral.AdminPorts, []uint16{22, 445, 3389}) || dc.Lateral.Learning != 0 || dc.Lateral.ChainGap != time.Hour {
		t.Errorf("lateral = %+v", dc.Lateral)
	}
	if dc.Scan.Vertical != 100 || dc.Scan.MaxHosts != 4000 {
		t.Errorf("scan = %+v", dc.Scan)
	}

	k := &c.Sinks.Kafka
	if !k.Enabled() || c.Sinks.JSONL.Enabled() || !c.Sinks.InfluxDB.Enabled() {
		t.Errorf("enabled sinks: jsonl %v kafka %v influxdb %v", c.Sinks.JSONL.Enabled(), k.Enabled(), c.Sinks.InfluxDB.Enabled())
	}
	if pw, err := k.SASL.PasswordValue(); err != nil || pw != "kafka-secret-from-file" {
		t.Errorf("PasswordValue() = %q, %v", pw, err)
	}
	if tok, err := c.Sinks.InfluxDB.TokenValue(); err != nil || tok != "influx-token-from-file" {
		t.Errorf("TokenValue() = %q, %v", tok, err)
	}
	tlsCfg, err := k.TLS.Config()
	if err != nil || tlsCfg == nil || tlsCfg.RootCAs == nil || len(tlsCfg.Certificates) != 1 {
		t.Errorf("TLS.Config() = %v, %v", tlsCfg, err)
	}
	if c.Metrics.Listen != "" || c.Log.SlogLevel().String() != "DEBUG" || c.Log.Format != "json" {
		t.Errorf("metrics/log = %+v %+v", c.Metrics, c.Log)
	}
}

func TestAnchorsAndNulls(t *testing.T) {
	c, err := Load("testdata/anchors.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	ft := c.Capture.FlowTable
	if ft.TCPTimeout != 7*time.Minute || ft.UDPTimeout != 7*time.Minute || ft.ICMPTimeout != time.Minute {
		t.Errorf("flow table = %+v", ft)
	}
	if c.Detect.LateralMovement.Window != 15*time.Minute {
		t.Errorf("lateral window = %v", c.Detect.LateralMovement.Window)
	}
	if !reflect.DeepEqual(c.Sinks.Kafka, Default().Sinks.Kafka) {
		t.Errorf("kafka: ~ changed the defaults: %+v", c.Sinks.Kafka)
	}
}

func TestDefaultsMatchRuntime(t *testing.T) {
	c := Default()
	tc := c.TableConfig()
	want := capture.DefaultTableConfig()
	if tc.HomeNets.String() != detect.DefaultConfig().HomeNets.String() {
		t.Errorf("home nets = %s", tc.HomeNets)
	}
	tc.HomeNets = nil
	if tc != want {
		t.Errorf("TableConfig() = %+v, want capture.DefaultTableConfig() %+v", tc, want)
	}
	dc, wd := c.DetectConfig(), detect.DefaultConfig()
	dc.Sensor, dc.HomeNets, dc.Allow = "", nil, nil
	wd.HomeNets, wd.Allow = nil, nil
	if !reflect.DeepEqual(dc, wd) {
		t.Errorf("DetectConfig() = %+v\nwant detect.DefaultConfig() %+v", dc, wd)
	}
	if cc := c.CaptureConfig(); cc.Dedup != 0 {
		t.Errorf("dedup = %v", cc.Dedup)
	}
}

// TestExample checks flowhound.example.yaml: it is valid, it is Default,
// and it spells out every setting.
func TestExample(t *testing.T) {
	const name = "../flowhound.example.yaml"
	c, err := Load(name)
	if err != nil {
		t.Fatal(err)
	}
	if !sameConfig(c, Default()) {
		t.Errorf("the example differs from Default: %s", firstDiff(c, Default()))
	}
	// sensor.id is commented out: its default is the machine's host name.
	optional := map[string]bool{"sensor.id": true}
	var missing []string
	for _, s := range envSettings() {
		if _, ok := c.meta.origins[s.path]; !ok && !optional[s.path] {
			missing = append(missing, s.path)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the example does not show %s", strings.Join(missing, ", "))
	}
}

func TestBadFiles(t *testing.T) {
	// Each bad file with the full text of its error ($DIR is the absolute
	// testdata directory).
	tests := map[string]string{
		"unknown-top.bad.yml":          `unknown-top.bad.yml:3: sinkz: unknown setting (did you mean sinks?)`,
		"unknown-nested.bad.yml":       `unknown-nested.bad.yml:4: capture.flow_table.max_flow: unknown setting (did you mean max_flows?)`,
		"wrong-type.bad.yml":           `wrong-type.bad.yml:3: capture.flow_table.max_flows: want an integer, got "lots"`,
		"wrong-type-list.bad.yml":      `wrong-type-list.bad.yml:1: home_nets: want a list, got "10.0.0.0/8"`,
		"wrong-type-mapping.bad.yml":   `wrong-type-mapping.bad.yml:1: sensor: want a mapping of settings, got "edge-01"`,
		"bad-bool.bad.yml":             `bad-bool.bad.yml:3: detect.scan.enabled: want true or false, got "yes"`,
		"bad-duration.bad.yml":         `bad-duration.bad.yml:3: capture.flow_table.tcp_timeout: want a duration such as 30s, 10m or 1h30m, got "5 minutes"`,
		"bare-number-duration.bad.yml": `bare-number-duration.bad.yml:3: capture.flow_table.udp_timeout: want a duration such as 30s, 10m or 1h30m, got "60"`,
		"bad-bytes.bad.yml":            `bad-bytes.bad.yml:3: detect.exfil.min_bytes: want a byte size such as 100MB, 20MiB or 1048576, got "100 MBs"`,
		"fractional-bytes.bad.yml":     `fractional-bytes.bad.yml:3: detect.exfil.slow_bytes: "0.1KiB" is not a whole number of bytes`,
		"port-range.bad.yml":           `port-range.bad.yml:3: detect.lateral_movement.admin_ports[1]: want an integer between 0 and 65535, got "70000"`,
		"bad-cidr.bad.yml":             `bad-cidr.bad.yml:3: home_nets[1]: want a CIDR such as 10.0.0.0/8 or an address, got "10.0.0.0/33"`,
		"two-cidrs-in-one.bad.yml":     `two-cidrs-in-one.bad.yml:3: allowlist.cidrs[0]: want one CIDR per item, got "10.0.0.0/8, 192.168.0.0/16"`,
		"bad-domain.bad.yml":           `bad-domain.bad.yml:2: allowlist.domains[1]: want a name or *.name, got "*.*.example.org"`,
		"bad-pair.bad.yml":             `bad-pair.bad.yml:4: allowlist.pairs[0].dst: want an IP address, got "198.51.100.0/24"`,
		"threshold.bad.yml":            `threshold.bad.yml:3: detect.beacon.threshold: must be in (0,1], got 1.5`,
		"max-period.bad.yml":           `max-period.bad.yml:4: detect.beacon.max_period: must be longer than min_period (10m), got 5m`,
		"negative-max-flows.bad.yml":   `negative-max-flows.bad.yml:3: capture.flow_table.max_flows: must be between 1 and 2147483647, got -5`,
		"zero-timeout.bad.yml":         `zero-timeout.bad.yml:3: capture.flow_table.active_timeout: must be positive, got 0s`,
		"dedup.bad.yml":                `dedup.bad.yml:2: capture.dedup: must be between 0 and 1s, got 2s`,
		"workers.bad.yml":              `workers.bad.yml:2: capture.workers: must be between 1 and 256, got 0`,
		"interface.bad.yml": `interface.bad.yml:4: capture.interfaces[1].name: "eth0" is already listed as capture.interfaces[0]
interface.bad.yml:5: capture.interfaces[1].ring_size: must be at least 1MiB, got 4KiB`,
		"missing-capture-file.bad.yml":  `missing-capture-file.bad.yml:2: capture.files[0]: cannot read $DIR/no-such.pcap: no such file or directory`,
		"compression.bad.yml":           `compression.bad.yml:4: sinks.kafka.compression: want one of none, gzip, snappy, lz4, zstd, got "brotli"`,
		"broker.bad.yml":                `broker.bad.yml:5: sinks.kafka.brokers[1]: want host:port, got "kafka-2"`,
		"broker-port.bad.yml":           `broker-port.bad.yml:3: sinks.kafka.brokers[0]: want a port number between 1 and 65535, got "kafka"`,
		"missing-ca.bad.yml":            `missing-ca.bad.yml:6: sinks.kafka.tls.ca_file: cannot read $DIR/no-such-ca.pem: no such file or directory`,
		"not-a-ca.bad.yml":              `not-a-ca.bad.yml:6: sinks.kafka.tls.ca_file: no PEM certificate in $DIR/kafka-password`,
		"tls-disabled.bad.yml":          `tls-disabled.bad.yml:5: sinks.kafka.tls.ca_file: set, but sinks.kafka.tls.enabled is false`,
		"cert-without-key.bad.yml":      `cert-without-key.bad.yml:5: sinks.kafka.tls.key_file: required when cert_file is set`,
		"empty-topic.bad.yml":           `empty-topic.bad.yml:4: sinks.kafka.findings_topic: must not be empty`,
		"bad-topic.bad.yml":             `bad-topic.bad.yml:3: sinks.kafka.flows_topic: not a Kafka topic name (at most 249 letters, digits, '.', '_' and '-'), got "flowhound/flows"`,
		"same-topic.bad.yml":            `same-topic.bad.yml:3: sinks.kafka.flows_topic: must differ from findings_topic, got "flowhound.findings.v1"`,
		"acks.bad.yml":                  `acks.bad.yml:3: sinks.kafka.required_acks: want one of none, one, all, got "1"`,
		"buffer.bad.yml":                `buffer.bad.yml:4: sinks.kafka.buffer: must be at least batch_size (500), got 100`,
		"sasl-mechanism.bad.yml":        `sasl-mechanism.bad.yml:4: sinks.kafka.sasl.mechanism: want one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, got "scram-sha-256"`,
		"sasl-no-password.bad.yml":      `sasl-no-password.bad.yml:5: sinks.kafka.sasl.password: required when mechanism is set (or set password_file)`,
		"sasl-both.bad.yml":             `sasl-both.bad.yml:7: sinks.kafka.sasl.password_file: password and password_file are both set; use one`,
		"sasl-off.bad.yml":              `sasl-off.bad.yml:4: sinks.kafka.sasl.username: set, but sinks.kafka.sasl.mechanism is empty`,
		"missing-password-file.bad.yml": `missing-password-file.bad.yml:7: sinks.kafka.sasl.password_file: cannot read $DIR/secrets/kafka: no such file or directory`,
		"redacted-password.bad.yml":     `redacted-password.bad.yml:6: sinks.kafka.sasl.password: is the <redacted> placeholder of printed output; set the real value or use password_file`,
		"influx-url.bad.yml":            `influx-url.bad.yml:3: sinks.influxdb.url: want an http:// or https:// URL such as http://influxdb:8086`,
		"influx-credentials.bad.yml":    `influx-credentials.bad.yml:3: sinks.influxdb.url: must not contain credentials; use token or token_file`,
		"influx-bucket.bad.yml":         `influx-bucket.bad.yml:4: sinks.influxdb.bucket: must not be empty`,
		"rotate-stdout.bad.yml":         `rotate-stdout.bad.yml:4: sinks.jsonl.rotate_size: standard output cannot be rotated; set 0 or a file path`,
		"jsonl-dir.bad.yml":             `jsonl-dir.bad.yml:3: sinks.jsonl.path: directory $DIR/no-such-dir does not exist`,
		"metrics-listen.bad.yml":        `metrics-listen.bad.yml:2: metrics.listen: want host:port (or "" to disable), got "localhost"`,
		"log-level.bad.yml":             `log-level.bad.yml:2: log.level: want one of debug, info, warn, error, got "verbose"`,
		"log-format.bad.yml":            `log-format.bad.yml:2: log.format: want one of text, json, got "logfmt"`,
		"sensor-id.bad.yml":             `sensor-id.bad.yml:2: sensor.id: must not contain spaces or control characters, got "edge 01"`,
		"empty-sensor-id.bad.yml":       `empty-sensor-id.bad.yml:2: sensor.id: must not be empty (leave it out to use the host name)`,
		"duplicate-key.bad.yml":         `duplicate-key.bad.yml:4: log.level: set twice (first at line 2)`,
		"merge-key.bad.yml":             `merge-key.bad.yml:5: detect.lateral_movement: merge keys (<<) are not supported`,
		"two-documents.bad.yml":         `two-documents.bad.yml:3: only one YAML document is allowed`,
		"syntax.bad.yml":                `syntax.bad.yml:3: mapping values are not allowed in this context`,
		"not-a-mapping.bad.yml":         `not-a-mapping.bad.yml:1: want a mapping of settings, got a list`,
		"multiple.bad.yml": `multiple.bad.yml:2: capture.workers: must be between 1 and 256, got 999
multiple.bad.yml:5: detect.beacon.threshold: must be in (0,1], got 0
multiple.bad.yml:7: detect.scan.horizontal: must be at least 2, got 1
multiple.bad.yml:10: sinks.kafka.compression: want one of none, gzip, snappy, lz4, zstd, got "brotli"`,
		"multiple-decode.bad.yml": `multiple-decode.bad.yml:2: sensor.name: unknown setting
multiple-decode.bad.yml:4: capture.workers: want an integer, got "many"`,
	}
	files, _ := filepath.Glob("testdata/*.bad.yml")
	for _, f := range files {
		if _, ok := tests[filepath.Base(f)]; !ok {
			t.Errorf("%s has no expected error in the table", f)
		}
	}
	// Load from inside testdata so that messages carry the bare file name.
	t.Chdir("testdata")
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range tests {
		t.Run(file, func(t *testing.T) {
			want = strings.ReplaceAll(want, "$DIR", dir)
			_, err := Load(file)
			if err == nil {
				t.Fatalf("Load(%s) succeeded, want %s", file, want)
			}
			if err.Error() != want {
				t.Errorf("Load(%s) error:\n%s\nwant:\n%s", file, err, want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/no-such.yml")
	if err == nil || err.Error() != "cannot read testdata/no-such.yml: no such file or directory" {
		t.Errorf("Load(missing) = %v", err)
	}
}

func TestRelativePaths(t *testing.T) {
	root := t.TempDir()
	sub := filepath.Join(root, "etc", "flowhound")
	if err := os.MkdirAll(filepath.Join(sub, "tls"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.pem", "client.pem", "client-key.pem"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, "tls", f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sub, "kafka.pw"), []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "token"), []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := `
capture:
  files: ["-", ` + filepath.Join(root, "etc") + `]
sinks:
  jsonl: {path: findings.jsonl}
  kafka:
    brokers: [k:9092]
    tls: {enabled: true, ca_file: tls/ca.pem, cert_file: ./tls/client.pem, key_file: tls/../tls/client-key.pem}
    sasl: {mechanism: PLAIN, username: u, password_file: kafka.pw}
  influxdb: {url: "http://i:8086", token_file: ../../token}
`
	if err := os.WriteFile(filepath.Join(sub, "flowhound.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// Started from elsewhere, with a relative name for the file.
	t.Chdir(root)
	c, err := Load("etc/flowhound/flowhound.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"capture.files[0]":          {c.Capture.Files[0], "-"},
		"capture.files[1]":          {c.Capture.Files[1], filepath.Join(root, "etc")},
		"sinks.jsonl.path":          {c.Sinks.JSONL.Path, filepath.Join(sub, "findings.jsonl")},
		"tls.ca_file":               {c.Sinks.Kafka.TLS.CAFile, filepath.Join(sub, "tls", "ca.pem")},
		"tls.cert_file":             {c.Sinks.Kafka.TLS.CertFile, filepath.Join(sub, "tls", "client.pem")},
		"tls.key_file":              {c.Sinks.Kafka.TLS.KeyFile, filepath.Join(sub, "tls", "client-key.pem")},
		"sasl.password_file":        {c.Sinks.Kafka.SASL.PasswordFile, filepath.Join(sub, "kafka.pw")},
		"sinks.influxdb.token_file": {c.Sinks.InfluxDB.TokenFile, filepath.Join(root, "token")},
	}
	for name, got := range checks {
		if got[0] != got[1] {
			t.Errorf("%s = %q, want %q", name, got[0], got[1])
		}
	}
	// A relative name in the environment is relative to the working
	// directory.
	if err := c.ApplyEnv([]string{"FLOWHOUND_SINKS_JSONL_PATH=out.jsonl", "FLOWHOUND_CAPTURE_FILES=a.pcap,-"}); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "out.jsonl"); c.Sinks.JSONL.Path != want {
		t.Errorf("jsonl path from env = %q, want %q", c.Sinks.JSONL.Path, want)
	}
	if want := []string{filepath.Join(root, "a.pcap"), "-"}; !reflect.DeepEqual(c.Capture.Files, want) {
		t.Errorf("files from env = %q, want %q", c.Capture.Files, want)
	}
}

func TestParseName(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "-"} {
		c, err := Parse([]byte("sinks: {jsonl: {path: testdata/out/f.jsonl}}\n"), name)
		if err != nil {
			t.Fatalf("Parse(name %q): %v", name, err)
		}
		if want := filepath.Join(wd, "testdata", "out", "f.jsonl"); c.Sinks.JSONL.Path != want {
			t.Errorf("name %q: path = %q, want %q", name, c.Sinks.JSONL.Path, want)
		}
	}
	_, err = Parse([]byte("log: {level: loud}\n"), "")
	if err == nil || err.Error() != `line 1: log.level: want one of debug, info, warn, error, got "loud"` {
		t.Errorf("Parse without a name: %v", err)
	}
}

func TestValidateAfterChange(t *testing.T) {
	c, err := Load("testdata/minimal.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	c.Detect.Beacon.Threshold = 2
	c.Sinks.Kafka.Compression = "lzma"
	err = c.Validate()
	want := `testdata/minimal.good.yml: detect.beacon.threshold: must be in (0,1], got 2
testdata/minimal.good.yml:5: sinks.kafka.compression: want one of none, gzip, snappy, lz4, zstd, got "lzma"`
	if err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want\n%s", err, want)
	}
	// The first error has no line: the file has no detect section. The
	// second points at the nearest enclosing section the file has (sinks).
	// A FieldError is reachable from the joined error.
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "detect.beacon.threshold" {
		t.Errorf("no FieldError for detect.beacon.threshold in %v", err)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
