#!/usr/bin/env bash
# Alternated A/B runs of bench/oauth-load.sh: every round runs each given `tessera` binary once,
# in the order given, at high CPU priority (other jobs on the machine mostly wait), and prints
# grants/s, their p99, and introspections/s per run.
#
#   bench/ab-oauth.sh [--rounds N] [--duration SECS] BIN_A BIN_B [BIN_C ...]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=3
DURATION=10
while [[ $# -gt 0 && "$1" == --* ]]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $# -ge 2 ]] || { echo "give at least two binaries" >&2; exit 2; }
for round in $(seq 1 "$ROUNDS"); do
  for bin in "$@"; do
    out=$(TESSERA_BIN="$bin" nice -n -15 bench/oauth-load.sh --duration "$DURATION" 2>&1)
    rates=($(echo "$out" | awk '/Requests\/sec/ {print $2}'))
    p99=$(echo "$out" | awk '/ 99%/ {print $2; exit}')
    echo "round $round load $(cut -d' ' -f1 /proc/loadavg) $bin: grants/s ${rates[0]:-?} (p99 $p99), introspections/s ${rates[1]:-?}"
  done
done
