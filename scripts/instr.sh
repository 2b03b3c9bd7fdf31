#!/usr/bin/env bash
# Instructions per record of the detection engine, counted by valgrind
# (cachegrind, no cache simulation): a measure that, unlike time, does not
# move with the load of a shared machine, for comparing two versions of the
# detectors. Each benchmark runs for 4 and for 8 passes over the scenario
# (GOGC=off, one core) and the difference is divided by the records of 4
# passes, so that generating the scenario and warming up cancel out.
#
#   scripts/instr.sh                     # BenchmarkEngine/all, built with the PGO profile
#   scripts/instr.sh 'Engine/^beacon$'   # another benchmark of detect/eval
#   PGO=off scripts/instr.sh             # without the profile
#
# Needs valgrind (Debian package valgrind). Takes about a minute per benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "instr.sh: valgrind not found (apt-get install valgrind)" >&2; exit 1; }
bench=${1:-Engine/all$}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -pgo="${PGO:-cmd/flowhound/default.pgo}" -o "$tmp/eval.test" ./detect/eval/
cd detect/eval
pass=$(GOMAXPROCS=1 "$tmp/eval.test" -test.run '^$' -test.bench "$bench" -test.benchtime 1x |
  awk '/^Benchmark/ { for (i = 1; i < NF; i++) if ($(i+1) == "records/pass") { print $i; exit } }')
[ -n "$pass" ] || { echo "instr.sh: no records/pass from benchmark $bench" >&2; exit 1; }
irefs() {
  GOGC=off GOMAXPROCS=1 valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
    "$tmp/eval.test" -test.run '^$' -test.bench "$bench" -test.benchtime "$1x" 2>&1 |
    awk '/I *refs/ { gsub(/,/, "", $NF); print $NF }'
}
a=$(irefs $((4 * pass)))
b=$(irefs $((8 * pass)))
echo "$bench: $(( (b - a) / (4 * pass) )) instructions/record ($pass records a pass)"
