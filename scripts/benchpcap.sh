#!/usr/bin/env bash
# Prints the path of the synthetic 2 M-packet bench capture, writing it
# first if it is not cached yet (deterministic: seed 1).
#
#   scripts/benchpcap.sh FLOWHOUND_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
pcap=.cache/bench-seed1-2m.pcap
if [ ! -s "$pcap" ]; then
  mkdir -p .cache
  echo "writing $pcap (once; cached)" >&2
  "$1" synth bench -seed 1 -packets 2000000 -o "$pcap.tmp" && mv "$pcap.tmp" "$pcap"
fi
echo "$pcap"
