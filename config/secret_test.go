package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestSecretsNeverPrinted sets secrets inline, from the environment and
// from files, and looks for them in everything that prints a Config.
func TestSecretsNeverPrinted(t *testing.T) {
	inline, err := Load("testdata/inline-secrets.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	fromEnv, err := LoadWithEnv("testdata/inline-secrets.good.yml", []string{
		"FLOWHOUND_SINKS_KAFKA_SASL_PASSWORD=kafka-env-secret",
		"FLOWHOUND_SINKS_INFLUXDB_TOKEN=influx-env-token",
	})
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := Load("testdata/full.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{"kafka-inline-secret", "influx-inline-token", "kafka-env-secret", "influx-env-token",
		"kafka-secret-from-file", "influx-token-from-file"}
	for name, c := range map[string]*Config{"inline": inline, "env": fromEnv, "file": fromFile} {
		js, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		outputs := map[string]string{
			"String()": c.String(),
			"%v":       fmt.Sprintf("%v", c),
			"%+v":      fmt.Sprintf("%+v", *c),
			"%#v":      fmt.Sprintf("%#v", *c),
			"json":     string(js),
		}
		for how, out := range outputs {
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("%s secrets: %s prints %q", name, how, s)
				}
			}
		}
		if name != "file" && strings.Count(c.String(), Redacted) != 2 {
			t.Errorf("%s secrets: String() does not show both as %s:\n%s", name, Redacted, c)
		}
	}
	// The secrets are still there for the sinks.
	if pw, _ := fromEnv.Sinks.Kafka.SASL.PasswordValue(); pw != "kafka-env-secret" {
		t.Errorf("env password lost")
	}
	if tok, _ := inline.Sinks.InfluxDB.TokenValue(); tok != "influx-inline-token" {
		t.Errorf("inline token lost")
	}
}

// TestSecretsNotInErrors checks messages about secret settings.
func TestSecretsNotInErrors(t *testing.T) {
	c, err := Load("testdata/inline-secrets.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	c.Sinks.Kafka.SASL.PasswordFile = "testdata/kafka-password" // both set
	c.Sinks.InfluxDB.URL = "http://admin:url-secret@influxdb:8086?p=query-secret"
	err = errors.Join(c.Validate(), c.ApplyEnv([]string{"FLOWHOUND_SINKS_INFLUXDB_TOKENN=env-secret"}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"kafka-inline-secret", "url-secret", "query-secret", "env-secret"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error prints %q: %v", s, err)
		}
	}
	if strings.Contains(c.String(), "url-secret") {
		t.Errorf("String() prints the URL's password")
	}
}

// TestRedactedDoesNotValidate: printed output with secrets, fed back,
// parses but does not validate, rather than using "<redacted>" as the
// password.
func TestRedactedDoesNotValidate(t *testing.T) {
	c, err := Load("testdata/inline-secrets.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	printed := c.String()
	_, err = Parse([]byte(printed), "printed.yaml")
	want := fmt.Sprintf(`printed.yaml:%d: sinks.kafka.sasl.password: is the <redacted> placeholder of printed output; set the real value or use password_file
printed.yaml:%d: sinks.influxdb.token: is the <redacted> placeholder of printed output; set the real value or use token_file`,
		lineOf(printed, "password: <redacted>"), lineOf(printed, "token: <redacted>"))
	if err == nil || err.Error() != want {
		t.Errorf("Parse(String()) = %v\nwant\n%s", err, want)
	}
}

// lineOf returns the 1-based line of text holding s.
func lineOf(text, s string) int {
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	return 0
}

func TestSecretFormatting(t *testing.T) {
	s := Secret("hunter2")
	for _, out := range []string{s.String(), fmt.Sprint(s), fmt.Sprintf("%v %s %#v", s, s, s)} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("printed %q", out)
		}
	}
	if Secret("").String() != "" {
		t.Errorf("an unset secret prints as %q", Secret("").String())
	}
}
