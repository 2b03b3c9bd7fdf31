package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/flowhound/flowhound/config"
	"github.com/flowhound/flowhound/internal/metrics"
)

// cmdHealthcheck asks a running sensor's /healthz whether it is making
// progress, for container health checks in images without curl (the
// distroless one has no shell either). The address comes from -url, or
// from the metrics.listen of the configuration the sensor runs with.
// Exit status 0 means healthy, 1 unhealthy or unreachable.
func cmdHealthcheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration `file` the sensor runs with: its metrics.listen is asked (FLOWHOUND_ environment overrides apply)")
	url := fs.String("url", "", "the /healthz `URL` to ask instead")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	quiet := fs.Bool("q", false, "print nothing when healthy")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowhound healthcheck -config FILE | -url URL [flags]\n\nAsks a running sensor's /healthz. Exits 0 when it is healthy (its pipeline made progress\nrecently), 1 when it is stalled, starting or unreachable. Flags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{2, errUsageShown}
	}
	if fs.NArg() != 0 || (*cfgPath == "") == (*url == "") {
		fs.Usage()
		return &exitError{2, errUsageShown}
	}
	target := *url
	if *cfgPath != "" {
		cfg, err := config.LoadWithEnv(*cfgPath, os.Environ())
		if err != nil {
			return &exitError{1, fmt.Errorf("%s is not valid:\n%w", *cfgPath, err)}
		}
		if target, err = healthzURL(cfg.Metrics.Listen); err != nil {
			return &exitError{1, fmt.Errorf("%s: %w", *cfgPath, err)}
		}
	}
	h, err := askHealth(target, *timeout)
	if err != nil {
		return &exitError{1, err}
	}
	if !*quiet {
		fmt.Fprintf(stdout, "%s: %s, heartbeat %.1f s ago, %d packets, %d findings\n", target, h.Status, h.HeartbeatAge, h.Packets, h.Findings)
		for _, s := range h.Sinks {
			if s.Failing {
				fmt.Fprintf(stdout, "  sink %s failing (does not fail the check): %s\n", s.Name, s.LastError)
			}
		}
	}
	return nil
}

// healthzURL is the /healthz address of a sensor listening on listen: a
// wildcard host is asked on the loopback of its family.
func healthzURL(listen string) (string, error) {
	if listen == "" {
		return "", errors.New(`metrics.listen is "": the sensor serves no /healthz`)
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("metrics.listen %q: %w", listen, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}

// askHealth gets url and decodes its health; any answer but 200 is an
// error that says what the sensor reported.
func askHealth(url string, timeout time.Duration) (*metrics.Health, error) {
	client := &http.Client{Timeout: timeout}
	resp, err := client.Get(url)
	if err != nil {
		return nil, fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("healthcheck: reading %s: %w", url, err)
	}
	var h metrics.Health
	jsonErr := json.Unmarshal(body, &h)
	if resp.StatusCode != http.StatusOK {
		if jsonErr == nil && h.Status != "" {
			return nil, fmt.Errorf("healthcheck: %s: %s (%s, heartbeat %.1f s ago)", url, resp.Status, h.Status, h.HeartbeatAge)
		}
		return nil, fmt.Errorf("healthcheck: %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	if jsonErr != nil || h.Status == "" {
		return nil, fmt.Errorf("healthcheck: %s answered 200 but not with a flowhound health: %q", url, strings.TrimSpace(string(body)))
	}
	return &h, nil
}
