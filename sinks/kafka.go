package sinks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Default Kafka topic names: lowercase, dot-separated, versioned.
const (
	DefaultFindingsTopic = "flowhound.findings.v1"
	DefaultFlowsTopic    = "flowhound.flows.v1"
	DefaultCountersTopic = "flowhound.counters.v1"
)

// KafkaConfig configures the Kafka sink. Secrets are never printed: the
// config's String and LogValue mask them.
type KafkaConfig struct {
	// Brokers are host:port bootstrap addresses.
	Brokers []string `yaml:"brokers"`
	// FindingsTopic receives findings keyed by source host.
	FindingsTopic string `yaml:"findings_topic"`
	// FlowsTopic, when set, receives flow records keyed by host pair;
	// otherwise flow messages are ignored.
	FlowsTopic string `yaml:"flows_topic"`
	// CountersTopic, when set, receives sensor counters keyed by sensor.
	CountersTopic string `yaml:"counters_topic"`
	// Compression is none, gzip, snappy, lz4 or zstd.
	Compression string `yaml:"compression"`
	// BatchSize and BatchBytes bound one produce request to one partition
	// (bytes before compression). BatchBytes also bounds one message:
	// larger ones are dropped as permanent failures. Keep it at or below
	// the brokers' message.max.bytes.
	BatchSize  int   `yaml:"batch_size"`
	BatchBytes int64 `yaml:"batch_bytes"`
	// RequiredAcks is all (the default: every in-sync replica), one (the
	// leader) or none.
	RequiredAcks string `yaml:"required_acks"`
	// AutoCreateTopics lets a broker that allows it create missing topics.
	// Without it a missing topic is reported as such (LastError wraps
	// ErrTopicMissing) and its messages wait in the buffer.
	AutoCreateTopics bool          `yaml:"auto_create_topics"`
	ClientID         string        `yaml:"client_id"`
	DialTimeout      time.Duration `yaml:"dial_timeout"`
	// WriteTimeout bounds one produce request.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	TLS          TLSConfig     `yaml:"tls"`
	SASL         SASLConfig    `yaml:"sasl"`
	Delivery     Delivery      `yaml:",inline"`
}

// TLSConfig configures a client TLS connection.
type TLSConfig struct {
	Enabled bool `yaml:"enabled"`
	// CAFile verifies the server; empty uses the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile, together, authenticate the client.
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASLConfig configures SASL authentication. The password comes from
// Password, the environment variable PasswordEnv, or the file PasswordFile
// (trailing newline trimmed) — exactly one of them.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty disables
	// SASL.
	Mechanism    string `yaml:"mechanism"`
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
}

// String describes the settings with the password masked.
func (s SASLConfig) String() string {
	pw := ""
	switch {
	case s.Password != "":
		pw = "password=***"
	case s.PasswordEnv != "":
		pw = "password_env=" + s.PasswordEnv
	case s.PasswordFile != "":
		pw = "password_file=" + s.PasswordFile
	}
	return fmt.Sprintf("{mechanism=%s username=%s %s}", s.Mechanism, s.Username, pw)
}

// LogValue implements slog.LogValuer with the password masked.
func (s SASLConfig) LogValue() slog.Value { return slog.StringValue(s.String()) }

// DefaultKafkaDelivery returns the Kafka sink's Delivery default.
func DefaultKafkaDelivery() Delivery {
	return Delivery{
		Buffer: 100_000, MaxBatch: 16384, Linger: 10 * time.Millisecond,
		BackoffMin: 100 * time.Millisecond, BackoffMax: 5 * time.Second, CloseTimeout: 10 * time.Second,
	}
}

// Kafka publishes findings (and optionally flow records and counters) to
// Kafka topics as JSON, with a "schema" header naming the value's shape.
//
// Each batch is written with kafka-go's Writer, spread over partitions by
// the murmur2 hash of the key (as Java clients do, so other producers of the
// same keys agree), and counts as sent once every in-sync replica
// acknowledged it (required_acks all). Record timestamps are the time of
// sending; event times are in the values.
type Kafka struct {
	*pipe
	drv *kafkaDriver
}

var _ Sink = (*Kafka)(nil)

// NewKafka checks cfg and starts the sink. It does not contact the brokers:
// a sensor starts even when Kafka is away, buffering until it returns. Use
// Check to verify connectivity and topics.
func NewKafka(cfg KafkaConfig) (*Kafka, error) {
	const name = "kafka"
	cfg.Delivery = cfg.Delivery.withDefaults(DefaultKafkaDelivery())
	if err := cfg.Delivery.validate(name); err != nil {
		return nil, err
	}
	if len(cfg.Brokers) == 0 {
		return nil, badSetting(name, "brokers", "no broker address")
	}
	for _, b := range cfg.Brokers {
		if err := checkHostPort(b); err != nil {
			return nil, badSettingErr(name, "brokers", err, "bad address %q", b)
		}
	}
	if cfg.FindingsTopic == "" {
		return nil, badSetting(name, "findings_topic", "empty topic name")
	}
	for _, t := range []struct{ setting, topic string }{
		{"findings_topic", cfg.FindingsTopic}, {"flows_topic", cfg.FlowsTopic}, {"counters_topic", cfg.CountersTopic},
	} {
		if t.topic != "" {
			if err := checkTopic(t.topic); err != nil {
				return nil, badSetting(name, t.setting, "%v", err)
			}
		}
	}
	codec, err := parseCompression(cfg.Compression)
	if err != nil {
		return nil, badSetting(name, "compression", "%v", err)
	}
	acks, err := parseAcks(cfg.RequiredAcks)
	if err != nil {
		return nil, badSetting(name, "required_acks", "%v", err)
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 4096
	}
	if cfg.BatchSize < 1 {
		return nil, badSetting(name, "batch_size", "must be positive, got %d", cfg.BatchSize)
	}
	if cfg.BatchBytes == 0 {
		cfg.BatchBytes = 1 << 20
	}
	if cfg.BatchBytes < 1024 {
		return nil, badSetting(name, "batch_bytes", "must be at least 1024, got %d", cfg.BatchBytes)
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "flowhound"
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.DialTimeout < 0 {
		return nil, badSetting(name, "dial_timeout", "must be positive, got %s", cfg.DialTimeout)
	}
	if cfg.WriteTimeout < 0 {
		return nil, badSetting(name, "write_timeout", "must be positive, got %s", cfg.WriteTimeout)
	}
	tlsConf, err := buildTLS(name, cfg.TLS)
	if err != nil {
		return nil, err
	}
	mech, err := buildSASL(name, cfg.SASL)
	if err != nil {
		return nil, err
	}

	tr := &kafka.Transport{
		DialTimeout: cfg.DialTimeout,
		ClientID:    cfg.ClientID,
		TLS:         tlsConf,
		SASL:        mech,
		MetadataTTL: 10 * time.Second,
	}
	w := &kafka.Writer{
		Addr:     kafka.TCP(cfg.Brokers...),
		Balancer: &kafka.Murmur2Balancer{},
		// The sink retries with its own backoff, which Close can cut short.
		MaxAttempts: 1,
		BatchSize:   cfg.BatchSize,
		BatchBytes:  cfg.BatchBytes,
		// The sink lingers (Delivery.Linger) before handing a batch over;
		// the Writer must then send what it was given at once, not wait
		// for its per-partition batches to fill.
		BatchTimeout:           time.Millisecond,
		ReadTimeout:            cfg.WriteTimeout,
		WriteTimeout:           cfg.WriteTimeout,
		RequiredAcks:           acks,
		Compression:            codec,
		Transport:              tr,
		AllowAutoTopicCreation: cfg.AutoCreateTopics,
	}
	d := &kafkaDriver{cfg: cfg, w: w, tr: tr}
	d.topics[TopicFinding] = cfg.FindingsTopic
	d.topics[TopicFlow] = cfg.FlowsTopic
	d.topics[TopicCounters] = cfg.CountersTopic
	for t := TopicFinding; t <= TopicCounters; t++ {
		d.headers[t] = []kafka.Header{{Key: "schema", Value: []byte(t.Schema())}}
	}
	accept := func(t Topic) bool { return int(t) < len(d.topics) && d.topics[t] != "" }
	return &Kafka{pipe: newPipe(name, cfg.Delivery, d, accept), drv: d}, nil
}

// Check asks the brokers for the sink's topics and returns an error wrapping
// ErrTopicMissing if one does not exist (with AutoCreateTopics set, asking
// may create it), or the connection error.
func (k *Kafka) Check(ctx context.Context) error {
	d := k.drv
	topics := d.topicNames()
	resp, err := d.tr.RoundTrip(ctx, d.w.Addr, &metadataAPI.Request{
		TopicNames: topics, AllowAutoTopicCreation: d.cfg.AutoCreateTopics,
	})
	if err != nil {
		return fmt.Errorf("kafka: %s: %w", strings.Join(d.cfg.Brokers, ","), err)
	}
	found := map[string]kafka.Error{}
	for _, t := range resp.(*metadataAPI.Response).Topics {
		found[t.Name] = kafka.Error(t.ErrorCode)
	}
	var missing []string
	for _, t := range topics {
		switch code, ok := found[t]; {
		case !ok || code == kafka.UnknownTopicOrPartition:
			missing = append(missing, t)
		case code != 0:
			return fmt.Errorf("kafka: topic %q: %w", t, code)
		}
	}
	if len(missing) > 0 {
		return d.missingTopics(missing)
	}
	return nil
}

type kafkaDriver struct {
	cfg     KafkaConfig
	w       *kafka.Writer
	tr      *kafka.Transport
	topics  [TopicCounters + 1]string
	headers [TopicCounters + 1][]kafka.Header
	msgs    []kafka.Message
	idx     []int // msgs[i] is batch[idx[i]]
}

func (d *kafkaDriver) topicNames() []string {
	var ts []string
	for _, t := range d.topics {
		if t != "" {
			ts = append(ts, t)
		}
	}
	return ts
}

func (d *kafkaDriver) missingTopics(names []string) error {
	return fmt.Errorf("kafka: topic %s does not exist on %s (create it, or set auto_create_topics): %w",
		strings.Join(names, ", "), strings.Join(d.cfg.Brokers, ","), ErrTopicMissing)
}

func (d *kafkaDriver) deliver(ctx context.Context, batch []Message) result {
	var r result
	now := time.Now()
	d.msgs, d.idx = d.msgs[:0], d.idx[:0]
	for i := range batch {
		m := &batch[i]
		h := d.headers[m.Topic]
		if size := int64(len(m.Key) + len(m.Value) + len(h[0].Key) + len(h[0].Value) + 64); size > d.cfg.BatchBytes {
			r.dropped++
			r.permErr = fmt.Errorf("kafka: a message exceeds batch_bytes (%d): %w", d.cfg.BatchBytes, kafka.MessageSizeTooLarge)
			continue
		}
		d.msgs = append(d.msgs, kafka.Message{Topic: d.topics[m.Topic], Key: m.Key, Value: m.Value, Headers: h, Time: now})
		d.idx = append(d.idx, i)
	}
	if len(d.msgs) == 0 {
		return r
	}
	defer clear(d.msgs) // do not pin the batch's bytes until the next one
	err := d.w.WriteMessages(ctx, d.msgs...)
	if err == nil {
		return r
	}
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) || len(werrs) != len(d.msgs) {
		// The whole batch failed before any produce request: no metadata,
		// no connection, context done.
		if permanentKafkaError(err) {
			r.dropped += len(d.msgs)
			r.permErr = d.describe(err)
			return r
		}
		r.err = d.describe(err)
		for _, i := range d.idx {
			r.retry = append(r.retry, batch[i])
		}
		return r
	}
	var tooLarge, retry []int
	for j, e := range werrs {
		switch {
		case e == nil:
		case errors.Is(e, kafka.MessageSizeTooLarge):
			tooLarge = append(tooLarge, j)
		case permanentKafkaError(e):
			r.dropped++
			r.permErr = d.describe(e)
		default:
			r.err = d.describe(e)
			retry = append(retry, j)
		}
	}
	// The broker refused a batch as too large; which of its messages is
	// the culprit only a message on its own can tell.
	if len(tooLarge) == 1 {
		r.dropped++
		r.permErr = d.describe(kafka.MessageSizeTooLarge)
	} else {
		for _, j := range tooLarge {
			switch e := single(d.w.WriteMessages(ctx, d.msgs[j])); {
			case e == nil:
			case errors.Is(e, kafka.MessageSizeTooLarge) || permanentKafkaError(e):
				r.dropped++
				r.permErr = d.describe(e)
			default:
				r.err = d.describe(e)
				retry = append(retry, j)
			}
		}
		slices.Sort(retry) // retry in queue order
	}
	for _, j := range retry {
		r.retry = append(r.retry, batch[d.idx[j]])
	}
	return r
}

// single unwraps the kafka.WriteErrors of a one-message write.
func single(err error) error {
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) && len(werrs) == 1 {
		return werrs[0]
	}
	return err
}

// describe turns kafka-go's errors into ones an operator can act on.
func (d *kafkaDriver) describe(err error) error {
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		for _, e := range werrs {
			if e != nil {
				err = e
				break
			}
		}
	}
	switch {
	case errors.Is(err, kafka.UnknownTopicOrPartition):
		return fmt.Errorf("%w (%w)", d.missingTopics(d.topicNames()), err)
	case errors.Is(err, kafka.MessageSizeTooLarge):
		return fmt.Errorf("kafka: a message is larger than the broker accepts (message.max.bytes); lower batch_bytes: %w", err)
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return fmt.Errorf("kafka: SASL authentication as %q (%s) failed: %w", d.cfg.SASL.Username, d.cfg.SASL.Mechanism, kafka.SASLAuthenticationFailed)
	}
	return fmt.Errorf("kafka: %s: %w", strings.Join(d.cfg.Brokers, ","), err)
}

func (d *kafkaDriver) close() error {
	err := d.w.Close()
	d.tr.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("kafka: close: %w", err)
	}
	return nil
}

// permanentKafkaError reports whether retrying err cannot help: the message
// itself or the credentials are wrong. Everything else — connection errors,
// leader elections, timeouts, a topic not created yet — is retried.
func permanentKafkaError(err error) bool {
	var ke kafka.Error
	if errors.As(err, &ke) {
		switch ke {
		case kafka.MessageSizeTooLarge, kafka.RecordListTooLarge, kafka.InvalidTopic, kafka.InvalidRecord,
			kafka.InvalidRequiredAcks, kafka.UnsupportedCompressionType, kafka.TopicAuthorizationFailed,
			kafka.ClusterAuthorizationFailed, kafka.SASLAuthenticationFailed, kafka.UnsupportedSASLMechanism,
			kafka.IllegalSASLState:
			return true
		}
		return false
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
	)
	return errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify)
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("missing host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number in 1..65535", port)
	}
	return nil
}

// checkTopic applies Kafka's rules for topic names.
func checkTopic(t string) error {
	if len(t) > 249 {
		return fmt.Errorf("topic %q is longer than 249 characters", t)
	}
	if t == "." || t == ".." {
		return fmt.Errorf("topic %q is not allowed", t)
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic %q has %q; use letters, digits, '.', '_' and '-'", t, c)
		}
	}
	return nil
}

func parseCompression(s string) (kafka.Compression, error) {
	switch strings.ToLower(s) {
	case "", "lz4":
		return kafka.Lz4, nil
	case "none":
		return 0, nil
	case "gzip":
		return kafka.Gzip, nil
	case "snappy":
		return kafka.Snappy, nil
	case "zstd":
		return kafka.Zstd, nil
	}
	return 0, fmt.Errorf("unknown codec %q (want none, gzip, snappy, lz4 or zstd)", s)
}

func parseAcks(s string) (kafka.RequiredAcks, error) {
	switch strings.ToLower(s) {
	case "", "all", "-1":
		return kafka.RequireAll, nil
	case "one", "1":
		return kafka.RequireOne, nil
	case "none", "0":
		return kafka.RequireNone, nil
	}
	return 0, fmt.Errorf("unknown value %q (want all, one or none)", s)
}

// buildTLS returns nil when TLS is off.
func buildTLS(sink string, c TLSConfig) (*tls.Config, error) {
	if !c.Enabled {
		if c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" {
			return nil, badSetting(sink, "tls.enabled", "is false but tls files are set; set it to true")
		}
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, badSettingErr(sink, "tls.ca_file", err, "cannot read")
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, badSetting(sink, "tls.ca_file", "no PEM certificate in %q", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, badSetting(sink, "tls.cert_file", "cert_file and key_file go together")
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, badSettingErr(sink, "tls.cert_file", err, "cannot load the client certificate")
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// buildSASL returns nil when SASL is off. The password is read here, once,
// and lives only in the mechanism.
func buildSASL(sink string, c SASLConfig) (sasl.Mechanism, error) {
	if c.Mechanism == "" {
		if c.Username != "" || c.Password != "" || c.PasswordEnv != "" || c.PasswordFile != "" {
			return nil, badSetting(sink, "sasl.mechanism", "empty but credentials are set; want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		}
		return nil, nil
	}
	if c.Username == "" {
		return nil, badSetting(sink, "sasl.username", "empty")
	}
	pw, err := readSecret(sink, "sasl.password", c.Password, c.PasswordEnv, c.PasswordFile)
	if err != nil {
		return nil, err
	}
	switch strings.ToUpper(c.Mechanism) {
	case "PLAIN":
		return plain.Mechanism{Username: c.Username, Password: pw}, nil
	case "SCRAM-SHA-256":
		return scramMechanism(sink, scram.SHA256, c.Username, pw)
	case "SCRAM-SHA-512":
		return scramMechanism(sink, scram.SHA512, c.Username, pw)
	}
	return nil, badSetting(sink, "sasl.mechanism", "unknown mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", c.Mechanism)
}

func scramMechanism(sink string, algo scram.Algorithm, user, pw string) (sasl.Mechanism, error) {
	m, err := scram.Mechanism(algo, user, pw)
	if err != nil {
		// The error may quote the password; do not wrap it.
		return nil, badSetting(sink, "sasl.password", "not usable for SCRAM (SASLprep failed)")
	}
	return m, nil
}

// readSecret returns the one secret configured inline, in an environment
// variable or in a file. Error messages never include the secret.
func readSecret(sink, setting, inline, env, file string) (string, error) {
	n := 0
	for _, s := range []string{inline, env, file} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return "", badSetting(sink, setting, "set exactly one of %s, %s_env and %s_file", setting, setting, setting)
	}
	switch {
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return "", badSetting(sink, setting+"_env", "environment variable %s is not set", env)
		}
		return v, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", badSettingErr(sink, setting+"_file", err, "cannot read")
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", badSetting(sink, setting+"_file", "%q is empty", file)
		}
		return v, nil
	}
	return inline, nil
}
