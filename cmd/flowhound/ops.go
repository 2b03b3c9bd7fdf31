package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/flowhound/flowhound/config"
	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/internal/metrics"
)

// startMetrics serves /metrics and /healthz on addr until ctx ends; addr ""
// serves nothing. /healthz fails when the board's heartbeat is older than
// stale. The address actually bound (a port chosen for ":0") is logged.
func startMetrics(ctx context.Context, addr, sensor string, b *board, stale time.Duration, log *slog.Logger) error {
	if addr == "" {
		return nil
	}
	m := metrics.New(sensor, version(), stale, b.snapshot)
	bound, err := metrics.Serve(ctx, addr, m.Handler(), log)
	if err != nil {
		return err
	}
	log.Info("serving metrics", "url", "http://"+bound.String()+"/metrics", "healthz", "http://"+bound.String()+"/healthz")
	return nil
}

// newLogger returns the logger of log.level and log.format on stderr,
// with its level in a variable that a reload can change.
func newLogger(stderr io.Writer, l *config.Log) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	lv.Set(l.SlogLevel())
	opts := &slog.HandlerOptions{Level: lv}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(stderr, opts)), lv
	}
	return slog.New(slog.NewTextHandler(stderr, opts)), lv
}

// reloader re-reads the -config file on SIGHUP and hands the new detection
// settings (allowlists, thresholds, detectors enabled) and log level to the
// running pipeline; the detectors keep their state. Settings that only a
// restart can change (capture, sinks, metrics, home networks, sensor id)
// are named in a warning and otherwise ignored. A file that fails to load
// or validate changes nothing: the error is logged and counted.
type reloader struct {
	path    string
	running *config.Config // as loaded at start (or last reload)
	log     *slog.Logger
	level   *slog.LevelVar
	pipe    *pipeline
	board   *board
	// detectConfig turns a loaded file into the engine's configuration,
	// applying the command's flags and the running home networks and
	// sensor id.
	detectConfig func(*config.Config) detect.Config
}

// watch reloads on every SIGHUP until stop is called.
func (r *reloader) watch() (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP)
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-quit:
				return
			case <-sigs:
				r.reload()
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(quit)
		<-finished
	}
}

func (r *reloader) reload() {
	if r.path == "" {
		r.log.Warn("SIGHUP: no -config file to reload")
		return
	}
	f, err := config.LoadWithEnv(r.path, os.Environ())
	if err != nil {
		r.board.reloaded(false)
		r.log.Error("SIGHUP: configuration not reloaded; the running one stays", "err", err)
		return
	}
	restart := restartSections(r.running, f)
	r.running = f
	r.level.Set(f.Log.SlogLevel())
	r.pipe.Reload(r.detectConfig(f), func(kept []string) {
		r.board.reloaded(true)
		args := []any{"file", r.path}
		if len(kept) > 0 {
			args = append(args, "unchanged_until_restart", strings.Join(kept, ","))
		}
		r.log.Info("configuration reloaded: allowlist and detector thresholds applied, detector state kept", args...)
	})
	if len(restart) > 0 {
		r.log.Warn("SIGHUP: these settings changed but take effect only after a restart", "settings", strings.Join(restart, ","))
	}
}

// restartSections names the sections that differ between a and b and that
// a reload does not apply.
func restartSections(a, b *config.Config) []string {
	var out []string
	for _, s := range []struct {
		name string
		x, y any
	}{
		{"sensor", a.Sensor, b.Sensor},
		{"capture", a.Capture, b.Capture},
		{"home_nets", a.HomeNets, b.HomeNets},
		{"sinks", a.Sinks, b.Sinks},
		{"metrics", a.Metrics, b.Metrics},
		{"log.format", a.Log.Format, b.Log.Format},
	} {
		if !reflect.DeepEqual(s.x, s.y) {
			out = append(out, s.name)
		}
	}
	return out
}
