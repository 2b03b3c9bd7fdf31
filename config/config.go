// Package config holds flowhound's configuration: one YAML file for the
// whole sensor, overridable from the environment, with a working default for
// every setting.
//
// Loading is strict: an unknown key, a value of the wrong type or a value out
// of range is an error that names the file, the line and the setting's path,
// such as
//
//	flowhound.yaml:12: detect.beacon.threshold: must be in (0,1], got 1.5
//
// Relative file names in the file (capture files, the JSONL output, TLS and
// secret files) are resolved against the directory of the configuration
// file, so a configuration means the same wherever the sensor is started.
//
// Every leaf setting can be overridden by an environment variable named
// FLOWHOUND_ and the setting's path in upper case with dots as underscores:
// FLOWHOUND_SENSOR_ID, FLOWHOUND_DETECT_BEACON_THRESHOLD=0.8,
// FLOWHOUND_SINKS_KAFKA_BROKERS=a:9092,b:9092 (lists are comma-separated).
// An unknown FLOWHOUND_ variable is an error, so a misspelt secret does not
// go unnoticed.
//
// Secrets (the Kafka SASL password, the InfluxDB token) may be written
// inline, taken from the environment or read from a file; they are never
// printed: String and the Secret type mask them.
package config

import (
	"os"
	"time"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/detect"
)

// Config is the whole sensor's configuration. The zero value is not useful:
// start from Default, Load or Parse. Fields may be changed by the caller;
// call Validate afterwards.
type Config struct {
	Sensor  Sensor  `yaml:"sensor"`
	Capture Capture `yaml:"capture"`
	// HomeNets are the networks that are local (CIDRs or bare addresses);
	// they decide local_orig/local_resp and which traffic is internal.
	HomeNets  []string  `yaml:"home_nets"`
	Allowlist Allowlist `yaml:"allowlist"`
	Detect    Detect    `yaml:"detect"`
	Sinks     Sinks     `yaml:"sinks"`
	Metrics   Metrics   `yaml:"metrics"`
	Log       Log       `yaml:"log"`

	meta meta
}

// Sensor identifies this sensor.
type Sensor struct {
	// ID is stamped on every finding and metric. Default: the host name.
	ID string `yaml:"id"`
}

// Capture says where packets come from and how they become flows.
type Capture struct {
	// Interfaces are captured live with AF_PACKET by `flowhound sense`.
	Interfaces []Interface `yaml:"interfaces"`
	// Files are capture files or directories (or "-" for standard input)
	// read by `flowhound replay`.
	Files     []string  `yaml:"files" cfg:"path"`
	FlowTable FlowTable `yaml:"flow_table"`
	// Dedup, when positive, drops frames identical to one seen within this
	// much packet time (SPAN sessions mirroring both directions).
	Dedup time.Duration `yaml:"dedup"`
	// Workers is the number of flow table workers; packets are sharded
	// between them by host pair.
	Workers int `yaml:"workers"`
}

// Interface is one network interface captured live. The live AF_PACKET
// source (capture, `flowhound sense`) consumes these settings; it is not
// written yet, so for now they are only validated.
type Interface struct {
	Name string `yaml:"name"`
	// RingSize is the memory of the AF_PACKET (TPACKET_V3) ring of each
	// fanout worker.
	RingSize ByteSize `yaml:"ring_size"`
	// Snaplen is the most bytes kept of each frame.
	Snaplen int `yaml:"snaplen"`
	// FanoutWorkers is the number of sockets in the interface's
	// PACKET_FANOUT group, each read by its own goroutine.
	FanoutWorkers int `yaml:"fanout_workers"`
	// BPF is a capture filter in tcpdump syntax; empty captures everything.
	BPF         string `yaml:"bpf"`
	Promiscuous bool   `yaml:"promiscuous"`
}

// DefaultInterface returns the settings an interface gets unless the file
// says otherwise.
func DefaultInterface(name string) Interface {
	return Interface{Name: name, RingSize: 64 << 20, Snaplen: 65535, FanoutWorkers: 1, Promiscuous: true}
}

func (i *Interface) setDefaults() { *i = DefaultInterface("") }

// setScalar lets an interface be written as its bare name, in the file
// ("interfaces: [eth1]") and in FLOWHOUND_CAPTURE_INTERFACES.
func (i *Interface) setScalar(s string) { i.Name = s }

// FlowTable mirrors capture.TableConfig.
type FlowTable struct {
	// MaxFlows bounds the flows tracked at once (shared out between the
	// workers); beyond it the least recently active flow is evicted.
	MaxFlows int `yaml:"max_flows"`
	// Idle timeouts, in packet time.
	TCPTimeout        time.Duration `yaml:"tcp_timeout"`
	TCPAttemptTimeout time.Duration `yaml:"tcp_attempt_timeout"`
	TCPCloseGrace     time.Duration `yaml:"tcp_close_grace"`
	UDPTimeout        time.Duration `yaml:"udp_timeout"`
	ICMPTimeout       time.Duration `yaml:"icmp_timeout"`
	OtherTimeout      time.Duration `yaml:"other_timeout"`
	// ActiveTimeout is how often a long-lived flow emits an interim record.
	ActiveTimeout time.Duration `yaml:"active_timeout"`
}

// Allowlist is what the operator approved; detectors stay quiet about it.
type Allowlist struct {
	// CIDRs are approved as sources and as destinations.
	CIDRs []string `yaml:"cidrs"`
	// Domains are exact names or "*.example.com" for a domain and all
	// names under it.
	Domains []string `yaml:"domains"`
	// Pairs are approved (source, destination) address pairs.
	Pairs []Pair `yaml:"pairs"`
}

// Pair is one approved source and destination address.
type Pair struct {
	Src string `yaml:"src"`
	Dst string `yaml:"dst"`
}

// Detect holds each detector's settings, keyed by the kind of finding it
// produces. The fields mirror the structs in detect/config.go.
type Detect struct {
	Beacon          Beacon          `yaml:"beacon"`
	LongConnection  LongConnection  `yaml:"long_connection"`
	Exfil           Exfil           `yaml:"exfil"`
	DNSExfil        DNSExfil        `yaml:"dns_exfil"`
	LateralMovement LateralMovement `yaml:"lateral_movement"`
	Scan            Scan            `yaml:"scan"`
}

// Beacon mirrors detect.BeaconConfig.
type Beacon struct {
	Enabled       bool          `yaml:"enabled"`
	MinBeats      int           `yaml:"min_beats"`
	MinPeriod     time.Duration `yaml:"min_period"`
	MaxPeriod     time.Duration `yaml:"max_period"`
	Threshold     float64       `yaml:"threshold"`
	MaxPairs      int           `yaml:"max_pairs"`
	MaxPrevalence int           `yaml:"max_prevalence"`
}

// LongConnection mirrors detect.LongConnConfig.
type LongConnection struct {
	Enabled  bool          `yaml:"enabled"`
	MinTotal time.Duration `yaml:"min_total"`
	MaxPairs int           `yaml:"max_pairs"`
}

// Exfil mirrors detect.ExfilConfig.
type Exfil struct {
	Enabled    bool          `yaml:"enabled"`
	MinBytes   ByteSize      `yaml:"min_bytes"`
	Window     time.Duration `yaml:"window"`
	SlowBytes  ByteSize      `yaml:"slow_bytes"`
	SlowWindow time.Duration `yaml:"slow_window"`
	MinPCR     float64       `yaml:"min_pcr"`
	MaxKeys    int           `yaml:"max_keys"`
}

// DNSExfil mirrors detect.DNSExfilConfig.
type DNSExfil struct {
	Enabled     bool          `yaml:"enabled"`
	MinNames    int           `yaml:"min_names"`
	MinLabelLen int           `yaml:"min_label_len"`
	MinEntropy  float64       `yaml:"min_entropy"`
	Window      time.Duration `yaml:"window"`
	MaxKeys     int           `yaml:"max_keys"`
}

// LateralMovement mirrors detect.LateralConfig.
type LateralMovement struct {
	Enabled    bool          `yaml:"enabled"`
	AdminPorts []uint16      `yaml:"admin_ports"`
	Learning   time.Duration `yaml:"learning"`
	FanOut     int           `yaml:"fan_out"`
	Window     time.Duration `yaml:"window"`
	ChainGap   time.Duration `yaml:"chain_gap"`
	MaxHosts   int           `yaml:"max_hosts"`
}

// Scan mirrors detect.ScanConfig.
type Scan struct {
	Enabled    bool          `yaml:"enabled"`
	Vertical   int           `yaml:"vertical"`
	Horizontal int           `yaml:"horizontal"`
	Window     time.Duration `yaml:"window"`
	MaxHosts   int           `yaml:"max_hosts"`
}

// Sinks says where findings (and, for scale-out, flow records) go. The sink
// implementations (package sinks) are not written yet; these settings are
// defined and validated here for them.
type Sinks struct {
	JSONL    JSONL    `yaml:"jsonl"`
	Kafka    Kafka    `yaml:"kafka"`
	InfluxDB InfluxDB `yaml:"influxdb"`
}

// JSONL writes one JSON finding per line to a file or standard output.
type JSONL struct {
	// Path is the output file, "-" for standard output, or "" to disable.
	Path string `yaml:"path" cfg:"path"`
	// RotateSize starts a new file when the current one reaches this size;
	// 0 never rotates.
	RotateSize ByteSize `yaml:"rotate_size"`
	// RotateKeep is how many rotated files are kept.
	RotateKeep int `yaml:"rotate_keep"`
}

// Enabled reports whether the JSONL sink is configured.
func (j *JSONL) Enabled() bool { return j.Path != "" }

// Kafka publishes findings (and optionally flow records) to Kafka.
type Kafka struct {
	// Brokers are host:port bootstrap addresses; none disables the sink.
	Brokers []string `yaml:"brokers"`
	// FindingsTopic receives findings keyed by source host.
	FindingsTopic string `yaml:"findings_topic"`
	// FlowsTopic, when set, receives every flow record keyed by host pair,
	// for `flowhound detect` instances to consume (usually
	// "flowhound.flows.v1"). Empty publishes no flow records.
	FlowsTopic       string        `yaml:"flows_topic"`
	Compression      string        `yaml:"compression"`
	BatchSize        int           `yaml:"batch_size"`
	BatchTimeout     time.Duration `yaml:"batch_timeout"`
	RequiredAcks     string        `yaml:"required_acks"`
	AutoCreateTopics bool          `yaml:"auto_create_topics"`
	// Buffer is the most messages held while brokers are slow or away;
	// beyond it messages are dropped and counted.
	Buffer int  `yaml:"buffer"`
	TLS    TLS  `yaml:"tls"`
	SASL   SASL `yaml:"sasl"`
}

// Enabled reports whether the Kafka sink is configured.
func (k *Kafka) Enabled() bool { return len(k.Brokers) > 0 }

// TLS configures a client TLS connection.
type TLS struct {
	Enabled bool `yaml:"enabled"`
	// CAFile verifies the server; empty uses the system roots.
	CAFile string `yaml:"ca_file" cfg:"path"`
	// CertFile and KeyFile, together, authenticate the client.
	CertFile           string `yaml:"cert_file" cfg:"path"`
	KeyFile            string `yaml:"key_file" cfg:"path"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASL configures Kafka SASL authentication.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty disables
	// SASL.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password, or PasswordFile holding it, never both.
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file" cfg:"path"`
}

// PasswordValue returns the password, read from PasswordFile when set.
func (s *SASL) PasswordValue() (string, error) { return readSecret(s.Password, s.PasswordFile) }

// InfluxDB writes counters and findings with the InfluxDB v2 write API
// (InfluxDB 2.x, or 1.8 with its v2-compatible endpoints).
type InfluxDB struct {
	// URL such as http://influxdb:8086; empty disables the sink.
	URL    string `yaml:"url" cfg:"url"`
	Org    string `yaml:"org"`
	Bucket string `yaml:"bucket"`
	// Token, or TokenFile holding it, never both; neither when
	// authentication is off.
	Token     Secret `yaml:"token"`
	TokenFile string `yaml:"token_file" cfg:"path"`
	// Interval is how often counters are written.
	Interval time.Duration `yaml:"interval"`
	// Buffer is the most points held while the server is slow or away.
	Buffer int `yaml:"buffer"`
}

// Enabled reports whether the InfluxDB sink is configured.
func (i *InfluxDB) Enabled() bool { return i.URL != "" }

// TokenValue returns the token, read from TokenFile when set.
func (i *InfluxDB) TokenValue() (string, error) { return readSecret(i.Token, i.TokenFile) }

// Metrics configures the HTTP endpoint serving Prometheus /metrics and
// /healthz.
type Metrics struct {
	// Listen is host:port; empty disables the endpoint.
	Listen string `yaml:"listen"`
}

// Log configures the sensor's own logs (log/slog).
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn or error
	Format string `yaml:"format"` // text or json
}

// Default returns the configuration used for everything the file leaves
// out. The flow table and detector values come from
// capture.DefaultTableConfig and detect.DefaultConfig, so there is one
// source for each default.
func Default() *Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "flowhound"
	}
	t := capture.DefaultTableConfig()
	d := detect.DefaultConfig()
	return &Config{
		Sensor: Sensor{ID: host},
		Capture: Capture{
			Interfaces: []Interface{},
			Files:      []string{},
			FlowTable: FlowTable{
				MaxFlows:          t.MaxFlows,
				TCPTimeout:        t.TCPTimeout,
				TCPAttemptTimeout: t.TCPAttemptTimeout,
				TCPCloseGrace:     t.TCPCloseGrace,
				UDPTimeout:        t.UDPTimeout,
				ICMPTimeout:       t.ICMPTimeout,
				OtherTimeout:      t.OtherTimeout,
				ActiveTimeout:     t.ActiveTimeout,
			},
			Workers: 1,
		},
		HomeNets:  prefixStrings(d.HomeNets),
		Allowlist: Allowlist{CIDRs: []string{}, Domains: []string{}, Pairs: []Pair{}},
		Detect: Detect{
			Beacon: Beacon{
				Enabled: d.Beacon.Enabled, MinBeats: d.Beacon.MinBeats, MinPeriod: d.Beacon.MinPeriod,
				MaxPeriod: d.Beacon.MaxPeriod, Threshold: d.Beacon.Threshold, MaxPairs: d.Beacon.MaxPairs,
				MaxPrevalence: d.Beacon.MaxPrevalence,
			},
			LongConnection: LongConnection{
				Enabled: d.LongConn.Enabled, MinTotal: d.LongConn.MinTotal, MaxPairs: d.LongConn.MaxPairs,
			},
			Exfil: Exfil{
				Enabled: d.Exfil.Enabled, MinBytes: ByteSize(d.Exfil.MinBytes), Window: d.Exfil.Window,
				SlowBytes: ByteSize(d.Exfil.SlowBytes), SlowWindow: d.Exfil.SlowWindow, MinPCR: d.Exfil.MinPCR,
				MaxKeys: d.Exfil.MaxKeys,
			},
			DNSExfil: DNSExfil{
				Enabled: d.DNSExfil.Enabled, MinNames: d.DNSExfil.MinNames, MinLabelLen: d.DNSExfil.MinLabelLen,
				MinEntropy: d.DNSExfil.MinEntropy, Window: d.DNSExfil.Window, MaxKeys: d.DNSExfil.MaxKeys,
			},
			LateralMovement: LateralMovement{
				Enabled: d.Lateral.Enabled, AdminPorts: append([]uint16{}, d.Lateral.AdminPorts...),
				Learning: d.Lateral.Learning, FanOut: d.Lateral.FanOut, Window: d.Lateral.Window,
				ChainGap: d.Lateral.ChainGap, MaxHosts: d.Lateral.MaxHosts,
			},
			Scan: Scan{
				Enabled: d.Scan.Enabled, Vertical: d.Scan.Vertical, Horizontal: d.Scan.Horizontal,
				Window: d.Scan.Window, MaxHosts: d.Scan.MaxHosts,
			},
		},
		Sinks: Sinks{
			JSONL: JSONL{Path: "-", RotateKeep: 5},
			Kafka: Kafka{
				Brokers:       []string{},
				FindingsTopic: "flowhound.findings.v1",
				Compression:   "snappy",
				// kafka-go's Writer defaults (batch 100, 1s, no acks) are
				// wrong for us; see DESIGN.md.
				BatchSize:    1000,
				BatchTimeout: 500 * time.Millisecond,
				RequiredAcks: "all",
				Buffer:       100000,
			},
			InfluxDB: InfluxDB{Bucket: "flowhound", Interval: 10 * time.Second, Buffer: 10000},
		},
		Metrics: Metrics{Listen: "127.0.0.1:9750"},
		Log:     Log{Level: "info", Format: "text"},
		meta:    meta{origins: map[string]origin{}},
	}
}
