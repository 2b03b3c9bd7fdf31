package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestApplyEnv(t *testing.T) {
	c := Default()
	err := c.ApplyEnv([]string{
		"PATH=/usr/bin", // not ours: ignored
		"FLOWHOUND_SENSOR_ID=edge-09",
		"FLOWHOUND_SINKS_KAFKA_BROKERS=a:9092, b:9092,",
		"FLOWHOUND_SINKS_KAFKA_SASL_MECHANISM=SCRAM-SHA-256",
		"FLOWHOUND_SINKS_KAFKA_SASL_USERNAME=svc",
		"FLOWHOUND_SINKS_KAFKA_SASL_PASSWORD=pa,ss=word",
		"FLOWHOUND_DETECT_BEACON_THRESHOLD=0.8",
		"FLOWHOUND_DETECT_SCAN_ENABLED=false",
		"FLOWHOUND_DETECT_EXFIL_MIN_BYTES=1GiB",
		"FLOWHOUND_DETECT_LATERAL_MOVEMENT_ADMIN_PORTS=22,3389",
		"FLOWHOUND_CAPTURE_FLOW_TABLE_TCP_TIMEOUT=90s",
		"FLOWHOUND_CAPTURE_INTERFACES=eth1,eth2",
		"FLOWHOUND_HOME_NETS=",
		"FLOWHOUND_METRICS_LISTEN=",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	k := c.Sinks.Kafka
	switch {
	case c.Sensor.ID != "edge-09":
		t.Errorf("sensor.id = %q", c.Sensor.ID)
	case !reflect.DeepEqual(k.Brokers, []string{"a:9092", "b:9092"}):
		t.Errorf("brokers = %q", k.Brokers)
	case k.SASL.Password != "pa,ss=word": // a scalar is taken whole, commas and all
		t.Errorf("password not set from the environment")
	case c.Detect.Beacon.Threshold != 0.8 || c.Detect.Scan.Enabled:
		t.Errorf("detect = %+v", c.Detect)
	case c.Detect.Exfil.MinBytes != 1<<30:
		t.Errorf("min_bytes = %d", c.Detect.Exfil.MinBytes)
	case !reflect.DeepEqual(c.Detect.LateralMovement.AdminPorts, []uint16{22, 3389}):
		t.Errorf("admin ports = %v", c.Detect.LateralMovement.AdminPorts)
	case c.Capture.FlowTable.TCPTimeout != 90*time.Second:
		t.Errorf("tcp_timeout = %v", c.Capture.FlowTable.TCPTimeout)
	case !reflect.DeepEqual(c.Capture.Interfaces, []Interface{DefaultInterface("eth1"), DefaultInterface("eth2")}):
		t.Errorf("interfaces = %+v", c.Capture.Interfaces)
	case len(c.HomeNets) != 0 || c.HomeNetworks().String() != "":
		t.Errorf("home nets = %q", c.HomeNets)
	case c.Metrics.Listen != "":
		t.Errorf("metrics.listen = %q", c.Metrics.Listen)
	}
}

func TestApplyEnvErrors(t *testing.T) {
	tests := []struct{ env, want string }{
		{"FLOWHOUND_DETECT_BEACON_THRESHOLD=high", `FLOWHOUND_DETECT_BEACON_THRESHOLD: detect.beacon.threshold: want a number, got "high"`},
		{"FLOWHOUND_CAPTURE_WORKERS=two", `FLOWHOUND_CAPTURE_WORKERS: capture.workers: want an integer, got "two"`},
		{"FLOWHOUND_DETECT_SCAN_ENABLED=maybe", `FLOWHOUND_DETECT_SCAN_ENABLED: detect.scan.enabled: want true or false, got "maybe"`},
		{"FLOWHOUND_CAPTURE_DEDUP=5", `FLOWHOUND_CAPTURE_DEDUP: capture.dedup: want a duration such as 30s, 10m or 1h30m, got "5"`},
		{"FLOWHOUND_DETECT_LATERAL_MOVEMENT_ADMIN_PORTS=22,ssh", `FLOWHOUND_DETECT_LATERAL_MOVEMENT_ADMIN_PORTS: detect.lateral_movement.admin_ports: want an integer between 0 and 65535, got "ssh"`},
		{"FLOWHOUND_SENSOR_NAME=x", `FLOWHOUND_SENSOR_NAME: no such setting`},
		{"FLOWHOUND_SENSOR_IDD=x", `FLOWHOUND_SENSOR_IDD: no such setting (did you mean FLOWHOUND_SENSOR_ID?)`},
		{"FLOWHOUND_SINKS_KAFKA_SASL_PASSWROD=x", `FLOWHOUND_SINKS_KAFKA_SASL_PASSWROD: no such setting (did you mean FLOWHOUND_SINKS_KAFKA_SASL_PASSWORD?)`},
		{"FLOWHOUND_SINKS_KAFKA=x", `FLOWHOUND_SINKS_KAFKA: no such setting`},
		{"FLOWHOUND_ALLOWLIST_PAIRS=10.0.0.1", `FLOWHOUND_ALLOWLIST_PAIRS: allowlist.pairs: cannot be set from the environment; use the configuration file`},
	}
	for _, tt := range tests {
		c := Default()
		err := c.ApplyEnv([]string{tt.env})
		if err == nil || err.Error() != tt.want {
			t.Errorf("ApplyEnv(%s) = %v\nwant %s", tt.env, err, tt.want)
		}
	}
}

// TestEnvThenValidate checks that a bad value from the environment is
// reported against its variable, not the file.
func TestEnvThenValidate(t *testing.T) {
	_, err := LoadWithEnv("testdata/full.good.yml", []string{
		"FLOWHOUND_DETECT_BEACON_THRESHOLD=1.5",
		"FLOWHOUND_SINKS_KAFKA_BROKERS=kafka-1:9092,kafka-2",
	})
	want := `FLOWHOUND_DETECT_BEACON_THRESHOLD: detect.beacon.threshold: must be in (0,1], got 1.5
FLOWHOUND_SINKS_KAFKA_BROKERS: sinks.kafka.brokers[1]: want host:port, got "kafka-2"`
	if err == nil || err.Error() != want {
		t.Errorf("LoadWithEnv = %v\nwant\n%s", err, want)
	}
}

// TestSecretOnlyInEnv: a file that leaves the password to the environment
// fails alone and loads with it.
func TestSecretOnlyInEnv(t *testing.T) {
	const file = "testdata/sasl-no-password.bad.yml"
	if _, err := Load(file); err == nil {
		t.Fatalf("Load(%s) succeeded without the password", file)
	}
	c, err := LoadWithEnv(file, []string{"FLOWHOUND_SINKS_KAFKA_SASL_PASSWORD=from-env"})
	if err != nil {
		t.Fatal(err)
	}
	if pw, _ := c.Sinks.Kafka.SASL.PasswordValue(); pw != "from-env" {
		t.Errorf("password not taken from the environment")
	}
}

// TestEnvNames checks that every leaf setting has its own variable.
func TestEnvNames(t *testing.T) {
	settings := envSettings()
	var leaves int
	var count func(reflect.Type)
	count = func(t reflect.Type) {
		for _, f := range fieldsOf(t) {
			if ft := t.Field(f.index).Type; ft.Kind() == reflect.Struct {
				count(ft)
			} else {
				leaves++
			}
		}
	}
	count(reflect.TypeFor[Config]())
	if len(settings) != leaves {
		t.Errorf("%d variables for %d settings: two settings share a name", len(settings), leaves)
	}
	for name, s := range settings {
		if want := "FLOWHOUND_" + strings.ToUpper(strings.ReplaceAll(s.path, ".", "_")); name != want {
			t.Errorf("%s: variable %s, want %s", s.path, name, want)
		}
	}
	for _, name := range []string{"FLOWHOUND_SENSOR_ID", "FLOWHOUND_SINKS_KAFKA_BROKERS", "FLOWHOUND_DETECT_BEACON_THRESHOLD",
		"FLOWHOUND_SINKS_KAFKA_SASL_PASSWORD", "FLOWHOUND_SINKS_INFLUXDB_TOKEN", "FLOWHOUND_CAPTURE_FLOW_TABLE_MAX_FLOWS"} {
		if _, ok := settings[name]; !ok {
			t.Errorf("no variable %s", name)
		}
	}
}
