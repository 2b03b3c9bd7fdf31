#!/usr/bin/env bash
# Real servers for flowhound's sink tests and for `make dev`, on loopback:
# a Kafka wire-protocol broker (tools/kafkabroker, franz-go's kfake) and
# InfluxDB 1.8.10. Both binaries are built once and cached in .bin/.
#
#   scripts/devservices.sh build         build (or reuse) .bin/kafkabroker and .bin/influxd
#   scripts/devservices.sh start [DIR]   build, start both on free ports, create the database,
#                                        write DIR/env (default DIR: .cache/devservices)
#   scripts/devservices.sh env   [DIR]   print `export` lines: eval "$(scripts/devservices.sh env)"
#   scripts/devservices.sh status [DIR]  say what runs where
#   scripts/devservices.sh stop  [DIR]   stop both and remove their data
#
# DIR/env holds FLOWHOUND_TEST_KAFKA=127.0.0.1:PORT,
# FLOWHOUND_TEST_INFLUX=http://127.0.0.1:PORT and FLOWHOUND_TEST_INFLUX_DB,
# one KEY=VALUE a line. `go test ./sinks/` uses them when set and otherwise
# starts its own servers from .bin/.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/.bin
INFLUX_VERSION=1.8.10
DB=flowhound
KAFKA_TOPICS=flowhound.findings.v1,flowhound.flows.v1,flowhound.counters.v1

cmd=${1:-}
DIR=${2:-$ROOT/.cache/devservices}
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac

die() { echo "devservices: $*" >&2; exit 1; }

build() {
  mkdir -p "$BIN"
  # Built with `go install`, influxd does not know its version; the
  # module version in the binary does.
  if ! go version -m "$BIN/influxd" 2>/dev/null | grep -q "github.com/influxdata/influxdb[[:space:]]*v$INFLUX_VERSION[[:space:]]"; then
    echo "devservices: building influxd $INFLUX_VERSION into .bin/ (about 2 minutes, once)" >&2
    (cd "$ROOT" && GOFLAGS= GOBIN="$BIN" go install "github.com/influxdata/influxdb/cmd/influxd@v$INFLUX_VERSION")
  fi
  if [ ! -x "$BIN/kafkabroker" ] ||
     [ -n "$(find "$ROOT/tools/kafkabroker" -type f -newer "$BIN/kafkabroker" -print -quit)" ]; then
    echo "devservices: building kafkabroker into .bin/" >&2
    (cd "$ROOT/tools/kafkabroker" && GOFLAGS= go build -o "$BIN/kafkabroker" .)
  fi
}

# port_open PORT: something accepts connections on 127.0.0.1:PORT.
port_open() { { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1; exec 3<&- 3>&-; }

USED_PORTS=" "
free_port() {
  local p
  for _ in $(seq 200); do
    p=$(shuf -i 20000-59999 -n 1)
    case $USED_PORTS in *" $p "*) continue ;; esac
    if ! port_open "$p"; then USED_PORTS="$USED_PORTS$p "; echo "$p"; return 0; fi
  done
  die "no free loopback port found"
}

# http_status METHOD PORT PATH: the HTTP status code of a bodiless request.
http_status() {
  local line=""
  { exec 3<>"/dev/tcp/127.0.0.1/$2"; } 2>/dev/null || { echo 000; return 0; }
  printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n' "$1" "$3" >&3
  read -r -t 5 line <&3 || true
  exec 3<&- 3>&-
  set -- $line
  echo "${2:-000}"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

running() { alive "$DIR/kafka.pid" && alive "$DIR/influxd.pid" && [ -f "$DIR/env" ]; }

stop_pid() { # PIDFILE
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

stop() {
  stop_pid "$DIR/kafka.pid"
  stop_pid "$DIR/influxd.pid"
  rm -rf "$DIR/influxdb" "$DIR/env"
}

start() {
  if running; then
    echo "devservices: already running ($DIR/env)" >&2
    return 0
  fi
  build
  stop # leftovers of a crashed run
  mkdir -p "$DIR"

  local kport hport rport
  kport=$(free_port); hport=$(free_port); rport=$(free_port)

  setsid "$BIN/kafkabroker" -ports "$kport" -partitions 3 -topics "$KAFKA_TOPICS" -auto-create \
    >"$DIR/kafka.log" 2>&1 </dev/null &
  echo $! >"$DIR/kafka.pid"

  mkdir -p "$DIR/influxdb"
  cat >"$DIR/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$rport"
[meta]
  dir = "$DIR/influxdb/meta"
[data]
  dir = "$DIR/influxdb/data"
  wal-dir = "$DIR/influxdb/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$hport"
  auth-enabled = false
  flux-enabled = true
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
EOF
  setsid "$BIN/influxd" run -config "$DIR/influxdb.conf" >"$DIR/influxd.log" 2>&1 </dev/null &
  echo $! >"$DIR/influxd.pid"

  local ok=""
  for _ in $(seq 100); do
    if port_open "$kport" && grep -q '^listening ' "$DIR/kafka.log"; then ok=1; break; fi
    alive "$DIR/kafka.pid" || break
    sleep 0.1
  done
  [ -n "$ok" ] || { cat "$DIR/kafka.log" >&2; stop; die "kafkabroker did not start"; }

  ok=""
  for _ in $(seq 600); do
    if [ "$(http_status GET "$hport" /ping)" = 204 ]; then ok=1; break; fi
    alive "$DIR/influxd.pid" || break
    sleep 0.1
  done
  [ -n "$ok" ] || { cat "$DIR/influxd.log" >&2; stop; die "influxd did not answer /ping"; }
  [ "$(http_status POST "$hport" "/query?q=CREATE%20DATABASE%20$DB")" = 200 ] ||
    { stop; die "CREATE DATABASE $DB failed"; }

  cat >"$DIR/env" <<EOF
FLOWHOUND_TEST_KAFKA=127.0.0.1:$kport
FLOWHOUND_TEST_INFLUX=http://127.0.0.1:$hport
FLOWHOUND_TEST_INFLUX_DB=$DB
EOF
  echo "devservices: kafka 127.0.0.1:$kport (topics $KAFKA_TOPICS, auto-create on)," \
    "influxdb http://127.0.0.1:$hport (database $DB); env in $DIR/env" >&2
}

case $cmd in
  build) build ;;
  start) start ;;
  stop) stop ;;
  env)
    [ -f "$DIR/env" ] || die "not started: run scripts/devservices.sh start"
    sed 's/^/export /' "$DIR/env"
    ;;
  status)
    if running; then cat "$DIR/env"; else echo "devservices: not running" >&2; exit 1; fi
    ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
