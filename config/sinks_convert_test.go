package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowhound/flowhound/sinks"
)

func TestSinkConfigsOfFullFile(t *testing.T) {
	c, err := Load("testdata/full.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata")

	if j, ok := c.JSONLConfig(); ok {
		t.Errorf("JSONLConfig() = %+v, enabled; want disabled by path \"\"", j)
	}

	k, ok := c.KafkaConfig()
	if !ok {
		t.Fatal("KafkaConfig() not enabled")
	}
	wantKafka := sinks.KafkaConfig{
		Brokers:          []string{"kafka-1:9092", "10.0.0.9:9093", "[2001:db8::9]:9094"},
		FindingsTopic:    "soc.flowhound.findings.v1",
		FlowsTopic:       "flowhound.flows.v1",
		Compression:      "zstd",
		BatchSize:        5000,
		RequiredAcks:     "one",
		AutoCreateTopics: true,
		TLS: sinks.TLSConfig{Enabled: true, CAFile: filepath.Join(dir, "ca.pem"),
			CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client-key.pem")},
		SASL:     sinks.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "flowhound", PasswordFile: filepath.Join(dir, "kafka-password")},
		Delivery: sinks.Delivery{Buffer: 50000, Linger: time.Second},
	}
	if !reflect.DeepEqual(k, wantKafka) {
		t.Errorf("KafkaConfig() =\n%+v\nwant\n%+v", k, wantKafka)
	}

	x, ok := c.InfluxConfig()
	if !ok {
		t.Fatal("InfluxConfig() not enabled")
	}
	wantInflux := sinks.InfluxConfig{URL: "https://influxdb.example.org:8086", Org: "soc", Bucket: "flowhound/autogen",
		TokenFile: filepath.Join(dir, "influx-token"), Delivery: sinks.Delivery{Buffer: 20000}}
	if !reflect.DeepEqual(x, wantInflux) {
		t.Errorf("InfluxConfig() =\n%+v\nwant\n%+v", x, wantInflux)
	}
}

func TestSinkConfigsOfDefault(t *testing.T) {
	c := Default()
	j, ok := c.JSONLConfig()
	want := sinks.JSONLConfig{Path: "-", RotateKeep: 5, Topics: []sinks.Topic{sinks.TopicFinding}}
	if !ok || !reflect.DeepEqual(j, want) {
		t.Errorf("JSONLConfig() = %+v, %v; want %+v, true", j, ok, want)
	}
	if _, ok := c.KafkaConfig(); ok {
		t.Error("Kafka enabled by default")
	}
	if _, ok := c.InfluxConfig(); ok {
		t.Error("InfluxDB enabled by default")
	}

	// Settings the file leaves out keep the file's defaults, not the
	// sinks' own.
	c.Sinks.Kafka.Brokers = []string{"localhost:9092"}
	k, _ := c.KafkaConfig()
	if k.BatchSize != 1000 || k.Delivery.Linger != 500*time.Millisecond || k.Compression != "snappy" ||
		k.RequiredAcks != "all" || k.Delivery.Buffer != 100000 || k.FindingsTopic != "flowhound.findings.v1" || k.FlowsTopic != "" {
		t.Errorf("default KafkaConfig() = %+v", k)
	}
	c.Sinks.InfluxDB.URL = "http://localhost:8086"
	if x, _ := c.InfluxConfig(); x.Bucket != "flowhound" || x.Delivery.Buffer != 10000 || x.Token != "" || x.TokenFile != "" {
		t.Errorf("default InfluxConfig() = %+v", x)
	}
}

// Every configuration that validates builds its sinks: the file's checks
// and the sinks' constructors agree.
func TestGoodFilesBuildSinks(t *testing.T) {
	for _, f := range goodFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			buildSinks(t, c)
		})
	}
}

func buildSinks(t *testing.T, c *Config) {
	t.Helper()
	if j, ok := c.JSONLConfig(); ok {
		if j.Path != "-" {
			j.Path = filepath.Join(t.TempDir(), "findings.jsonl") // not into testdata
		}
		s, err := sinks.NewJSONL(j)
		if err != nil {
			t.Errorf("NewJSONL: %v", err)
		} else {
			s.Close()
		}
	}
	if k, ok := c.KafkaConfig(); ok {
		s, err := sinks.NewKafka(k)
		if err != nil {
			t.Errorf("NewKafka: %v", err)
		} else {
			s.Close()
		}
	}
	if x, ok := c.InfluxConfig(); ok {
		s, err := sinks.NewInflux(x)
		if err != nil {
			t.Errorf("NewInflux: %v", err)
		} else {
			s.Close()
		}
	}
}

// A secret from the environment replaces the file's and reaches the sinks
// as an inline value; printing the sinks' settings does not show it.
func TestSinkSecretsFromEnv(t *testing.T) {
	c, err := LoadWithEnv("testdata/inline-secrets.good.yml", []string{
		"FLOWHOUND_SINKS_KAFKA_SASL_PASSWORD=kafka-env-secret",
		"FLOWHOUND_SINKS_INFLUXDB_TOKEN=influx-env-token",
	})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := c.KafkaConfig()
	x, _ := c.InfluxConfig()
	if k.SASL.Password != "kafka-env-secret" || k.SASL.PasswordEnv != "" || k.SASL.PasswordFile != "" {
		t.Errorf("SASL = %#v", k.SASL)
	}
	if x.Token != "influx-env-token" || x.TokenEnv != "" || x.TokenFile != "" {
		t.Errorf("token not from the environment: %s", x)
	}
	buildSinks(t, c)
	for _, s := range []string{fmt.Sprintf("%v %+v", k, k), fmt.Sprintf("%v %+v", x, x)} {
		if strings.Contains(s, "env-secret") || strings.Contains(s, "env-token") {
			t.Errorf("secret printed: %s", s)
		}
	}
}

// What only a sink constructor can check still fails at start-up, naming
// the setting.
func TestSinkConstructorErrorsNameTheSetting(t *testing.T) {
	c, err := LoadWithEnv("testdata/inline-secrets.good.yml", []string{
		"FLOWHOUND_SINKS_KAFKA_SASL_MECHANISM=SCRAM-SHA-256",
		"FLOWHOUND_SINKS_KAFKA_SASL_PASSWORD=bell\achar", // SASLprep forbids control characters
	})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := c.KafkaConfig()
	_, err = sinks.NewKafka(k)
	if !errors.Is(err, sinks.ErrBadConfig) || !strings.Contains(err.Error(), "sasl.password") {
		t.Errorf("NewKafka = %v, want an error naming sasl.password", err)
	}
	if err != nil && strings.Contains(err.Error(), "bell") {
		t.Errorf("error shows the password: %v", err)
	}
}
