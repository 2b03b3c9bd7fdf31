#!/usr/bin/env bash
# Writes cmd/flowhound/default.pgo, the CPU profile `go build` optimises the
# flowhound binary with (profile-guided optimisation: hotter inlining and
# devirtualised detector calls). It profiles the two hot jobs, each built
# without a profile so that the result does not feed on itself:
#   - flowhound flows over the synthetic 2 M-packet bench capture;
#   - the detection engine with all detectors (BenchmarkEngine/all).
# Run it again after large changes to the hot paths (make pgo).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go build -pgo=off -o "$tmp/flowhound" ./cmd/flowhound
pcap=$(scripts/benchpcap.sh "$tmp/flowhound")
GOMAXPROCS=1 "$tmp/flowhound" flows -q -o /dev/null -cpuprofile "$tmp/flows.prof" "$pcap"
GOMAXPROCS=1 go test -pgo=off -run '^$' -bench 'Engine/all$' -benchtime 6s \
  -cpuprofile "$tmp/engine.prof" -o "$tmp/eval.test" ./detect/eval/ >/dev/null
go tool pprof -proto "$tmp/flows.prof" "$tmp/engine.prof" > cmd/flowhound/default.pgo
echo "wrote cmd/flowhound/default.pgo ($(wc -c < cmd/flowhound/default.pgo) bytes)"
