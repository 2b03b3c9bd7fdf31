package main

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHealthcheckUnhealthy: what the command says and how it exits when
// the sensor is stalled, is not a flowhound, is not there, or serves no
// /healthz. (A healthy sensor is asked in TestReplayMetricsReloadProgress.)
func TestHealthcheckUnhealthy(t *testing.T) {
	stalled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"status":"stalled","heartbeat_age_seconds":42.5,"findings":3}`))
	}))
	defer stalled.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("hello"))
	}))
	defer other.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()
	dir := t.TempDir()
	noMetrics := filepath.Join(dir, "nometrics.yaml")
	if err := os.WriteFile(noMetrics, []byte("metrics:\n  listen: \"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-url", stalled.URL + "/healthz"}, 1, "503 Service Unavailable (stalled, heartbeat 42.5 s ago)"},
		{[]string{"-url", other.URL}, 1, "answered 200 but not with a flowhound health"},
		{[]string{"-url", closed}, 1, "connection refused"},
		{[]string{"-config", noMetrics}, 1, `metrics.listen is "": the sensor serves no /healthz`},
		{[]string{"-config", filepath.Join(dir, "missing.yaml")}, 1, "missing.yaml"},
		{[]string{}, 2, ""},
		{[]string{"-url", other.URL, "-config", noMetrics}, 2, ""},
	} {
		var out, errOut bytes.Buffer
		err := run(append([]string{"healthcheck"}, c.args...), nil, &out, &errOut)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != c.code {
			t.Errorf("healthcheck %q: %v, want exit %d", c.args, err, c.code)
			continue
		}
		if c.want != "" && !strings.Contains(err.Error(), c.want) {
			t.Errorf("healthcheck %q: %q, want it to say %q", c.args, err, c.want)
		}
	}
}

func TestHealthzURL(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:9750": "http://127.0.0.1:9750/healthz",
		"0.0.0.0:9750":   "http://127.0.0.1:9750/healthz",
		":9750":          "http://127.0.0.1:9750/healthz",
		"[::]:9750":      "http://[::1]:9750/healthz",
		"[fd00::1]:80":   "http://[fd00::1]:80/healthz",
		"sensor.lan:80":  "http://sensor.lan:80/healthz",
	} {
		if got, err := healthzURL(listen); err != nil || got != want {
			t.Errorf("healthzURL(%q) = %q, %v; want %q", listen, got, err, want)
		}
	}
}
