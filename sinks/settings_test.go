package sinks

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad settings fail at construction with an error that wraps ErrBadConfig
// and names the setting.
func TestBadSettings(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	emptyFile := filepath.Join(dir, "empty")
	os.WriteFile(emptyFile, nil, 0o600)
	missing := filepath.Join(dir, "missing")
	k := func(mod func(*KafkaConfig)) func() error {
		return func() error {
			c := KafkaConfig{Brokers: []string{"127.0.0.1:9092"}, FindingsTopic: DefaultFindingsTopic}
			mod(&c)
			s, err := NewKafka(c)
			if err == nil {
				s.Close()
			}
			return err
		}
	}
	in := func(mod func(*InfluxConfig)) func() error {
		return func() error {
			c := InfluxConfig{URL: "http://127.0.0.1:8086", Bucket: "flowhound"}
			mod(&c)
			s, err := NewInflux(c)
			if err == nil {
				s.Close()
			}
			return err
		}
	}
	for _, tc := range []struct {
		name, setting string
		new           func() error
	}{
		{"no brokers", "brokers", k(func(c *KafkaConfig) { c.Brokers = nil })},
		{"broker without port", "brokers", k(func(c *KafkaConfig) { c.Brokers = []string{"kafka1"} })},
		{"broker port not a number", "brokers", k(func(c *KafkaConfig) { c.Brokers = []string{"kafka1:http"} })},
		{"broker no host", "brokers", k(func(c *KafkaConfig) { c.Brokers = []string{":9092"} })},
		{"unknown compression", "compression", k(func(c *KafkaConfig) { c.Compression = "brotli" })},
		{"empty findings topic", "findings_topic", k(func(c *KafkaConfig) { c.FindingsTopic = "" })},
		{"bad flows topic", "flows_topic", k(func(c *KafkaConfig) { c.FlowsTopic = "flows topic" })},
		{"unknown acks", "required_acks", k(func(c *KafkaConfig) { c.RequiredAcks = "most" })},
		{"negative batch", "batch_size", k(func(c *KafkaConfig) { c.BatchSize = -1 })},
		{"tiny batch bytes", "batch_bytes", k(func(c *KafkaConfig) { c.BatchBytes = 10 })},
		{"missing CA file", "tls.ca_file", k(func(c *KafkaConfig) { c.TLS = TLSConfig{Enabled: true, CAFile: missing} })},
		{"CA file not PEM", "tls.ca_file", k(func(c *KafkaConfig) { c.TLS = TLSConfig{Enabled: true, CAFile: notPEM} })},
		{"cert without key", "tls.cert_file", k(func(c *KafkaConfig) { c.TLS = TLSConfig{Enabled: true, CertFile: notPEM} })},
		{"bad client cert", "tls.cert_file", k(func(c *KafkaConfig) { c.TLS = TLSConfig{Enabled: true, CertFile: notPEM, KeyFile: notPEM} })},
		{"tls files but disabled", "tls.enabled", k(func(c *KafkaConfig) { c.TLS = TLSConfig{CAFile: notPEM} })},
		{"unknown SASL mechanism", "sasl.mechanism", k(func(c *KafkaConfig) { c.SASL = SASLConfig{Mechanism: "GSSAPI", Username: "u", Password: "p"} })},
		{"SASL without user", "sasl.username", k(func(c *KafkaConfig) { c.SASL = SASLConfig{Mechanism: "PLAIN", Password: "p"} })},
		{"SASL without password", "sasl.password", k(func(c *KafkaConfig) { c.SASL = SASLConfig{Mechanism: "PLAIN", Username: "u"} })},
		{"two passwords", "sasl.password", k(func(c *KafkaConfig) {
			c.SASL = SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "p", PasswordFile: emptyFile}
		})},
		{"password env unset", "sasl.password_env", k(func(c *KafkaConfig) {
			c.SASL = SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u", PasswordEnv: "FLOWHOUND_TEST_UNSET_VARIABLE"}
		})},
		{"password file missing", "sasl.password_file", k(func(c *KafkaConfig) {
			c.SASL = SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "u", PasswordFile: missing}
		})},
		{"password file empty", "sasl.password_file", k(func(c *KafkaConfig) {
			c.SASL = SASLConfig{Mechanism: "PLAIN", Username: "u", PasswordFile: emptyFile}
		})},
		{"credentials without mechanism", "sasl.mechanism", k(func(c *KafkaConfig) { c.SASL = SASLConfig{Username: "u"} })},
		{"negative buffer", "buffer", k(func(c *KafkaConfig) { c.Delivery.Buffer = -5 })},
		{"backoff max below min", "backoff_max", k(func(c *KafkaConfig) {
			c.Delivery.BackoffMin, c.Delivery.BackoffMax = 2e9, 1e9
		})},
		{"negative retries", "max_retries", k(func(c *KafkaConfig) { c.Delivery.MaxRetries = -1 })},

		{"influx no URL", "url", in(func(c *InfluxConfig) { c.URL = "" })},
		{"influx URL scheme", "url", in(func(c *InfluxConfig) { c.URL = "ftp://influx:8086" })},
		{"influx URL unparsable", "url", in(func(c *InfluxConfig) { c.URL = "http://[::1" })},
		{"influx no bucket", "bucket", in(func(c *InfluxConfig) { c.Bucket = "" })},
		{"influx token file missing", "token_file", in(func(c *InfluxConfig) { c.TokenFile = missing })},
		{"influx missing CA", "tls.ca_file", in(func(c *InfluxConfig) { c.TLS = TLSConfig{Enabled: true, CAFile: missing} })},
		{"influx timeout", "timeout", in(func(c *InfluxConfig) { c.Timeout = 1e6 })},

		{"jsonl unwritable path", "path", func() error {
			_, err := NewJSONL(JSONLConfig{Path: filepath.Join(notPEM, "x.jsonl")})
			return err
		}},
		{"jsonl negative keep", "rotate_keep", func() error { _, err := NewJSONL(JSONLConfig{Path: "-", RotateKeep: -1}); return err }},
		{"jsonl zero batch", "max_batch", func() error {
			_, err := NewJSONL(JSONLConfig{Path: "-", Delivery: Delivery{MaxBatch: -1}})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.new()
			if !errors.Is(err, ErrBadConfig) {
				t.Fatalf("error %v, want ErrBadConfig", err)
			}
			if !strings.Contains(err.Error(), ": "+tc.setting+": ") {
				t.Errorf("error %q does not name %s", err, tc.setting)
			}
		})
	}
}

// Secrets never show in printed or logged configurations, nor in errors.
func TestSecretsMasked(t *testing.T) {
	const secret = "hunter2-very-secret"
	kc := KafkaConfig{Brokers: []string{"b:1"}, FindingsTopic: "t",
		SASL: SASLConfig{Mechanism: "PLAIN", Username: "u", Password: secret}}
	ic := InfluxConfig{URL: "http://i:1", Bucket: "b", Token: secret}
	var logs logBuffer
	newLogger(&logs).Info("config", "sasl", kc.SASL, "influx", ic)
	for _, s := range []string{fmt.Sprint(kc), fmt.Sprintf("%+v", kc), fmt.Sprintf("%v", kc.SASL), fmt.Sprint(ic), logs.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("secret printed: %s", s)
		}
	}
	_, err := NewKafka(KafkaConfig{Brokers: []string{"b:1"}, FindingsTopic: "t",
		SASL: SASLConfig{Mechanism: "GSSAPI", Username: "u", Password: secret}})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("error: %v", err)
	}
}
