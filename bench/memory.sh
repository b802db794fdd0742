#!/usr/bin/env bash
# Memory under sustained token issuance: the server's resident set size (VmRSS of
# /proc/<pid>/status) as client-credentials tokens pile up, against a release build of `tessera`.
#
#   bench/memory.sh [--postgres] [--tokens N] [--first N] [--connections N]
#   TESSERA_BIN=/path/to/tessera bench/memory.sh ...   (skips the build)
#
# Starts its own server (embedded SQLite in a fresh data directory, or with --postgres a
# throwaway PostgreSQL 15 cluster), creates a tenant and a confidential client, then runs wrk
# against the token endpoint until the log holds --tokens tokens (default 2,000,000). It prints
# VmRSS (and VmHWM, the peak) after every twentieth of the tokens (100,000 by default), and the difference between the
# sample at --first tokens (default 200,000) and the last one: the issue's target is 64 MiB at
# most. A token is one `token.issued` event, so the log's head counts them.
set -euo pipefail

cd "$(dirname "$0")/.."
TOKENS=2000000
FIRST=200000
CONNECTIONS=64
POSTGRES=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --postgres) POSTGRES=1 ;;
    --tokens) TOKENS="$2"; shift ;;
    --first) FIRST="$2"; shift ;;
    --connections) CONNECTIONS="$2"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

source bench/lib.sh
bench_install_wrk
bench_tessera_bin

WORK=$(mktemp -d /tmp/tessera-memory.XXXXXX)
chmod 755 "$WORK"
WRK_PID=""
trap '[[ -n "$WRK_PID" ]] && kill "$WRK_PID" 2>/dev/null; bench_cleanup' EXIT

bench_choose_store
bench_start_server "$WORK/data"
bench_create_client
bench_wrk_script "$WORK/token.lua" "grant_type=client_credentials&scope=orders:read"

status_kib() { awk -v key="$1:" '$1 == key {print $2}' "/proc/$SERVER_PID/status"; }
mib() { awk -v kib="$1" 'BEGIN {printf "%.1f", kib / 1024}'; }
head_position() { curl -sf "$BASE/readyz" | json '["log_head"]'; }

START=$(head_position)
echo "== $STORE, $(nproc) cores, $TOKENS tokens over wrk -t2 -c$CONNECTIONS; load: $(uptime | sed 's/.*load average: //')"
echo "before any token: VmRSS $(mib "$(status_kib VmRSS)") MiB"
wrk -t2 -c"$CONNECTIONS" -d3600s -s "$WORK/token.lua" "$BASE/t/bench/oauth/token" >"$WORK/wrk.out" 2>&1 &
WRK_PID=$!
STEP=$(( TOKENS / 20 ))
NEXT=$STEP
FIRST_RSS=""
STARTED=$SECONDS
while true; do
  sleep 0.5
  TOKENS_NOW=$(( $(head_position) - START ))
  if (( TOKENS_NOW >= NEXT )); then
    RSS=$(status_kib VmRSS)
    echo "$(printf '%9d' "$TOKENS_NOW") tokens: VmRSS $(mib "$RSS") MiB, VmHWM $(mib "$(status_kib VmHWM)") MiB ($(( SECONDS - STARTED )) s; load $(cut -d' ' -f1 /proc/loadavg))"
    if [[ -z "$FIRST_RSS" ]] && (( TOKENS_NOW >= FIRST )); then
      FIRST_RSS=$RSS
      FIRST_AT=$TOKENS_NOW
    fi
    while (( NEXT <= TOKENS_NOW )); do NEXT=$(( NEXT + STEP )); done
  fi
  (( TOKENS_NOW >= TOKENS )) && break
  kill -0 "$WRK_PID" 2>/dev/null || { echo "wrk stopped early" >&2; cat "$WORK/wrk.out" >&2; exit 1; }
done
LAST_RSS=$(status_kib VmRSS)
echo "at the end: RssAnon $(mib "$(status_kib RssAnon)") MiB, RssFile $(mib "$(status_kib RssFile)") MiB, RssShmem $(mib "$(status_kib RssShmem)") MiB"
kill "$WRK_PID" 2>/dev/null; wait "$WRK_PID" 2>/dev/null || true
WRK_PID=""
echo "VmRSS after $FIRST_AT tokens: $(mib "$FIRST_RSS") MiB; after $TOKENS_NOW tokens: $(mib "$LAST_RSS") MiB; difference $(mib $(( LAST_RSS - FIRST_RSS ))) MiB (target: at most 64 MiB)"
if [[ "$POSTGRES" == 0 ]]; then
  echo "data directory: $(du -sh "$WORK/data" | cut -f1) ($(ls -s --block-size=M "$WORK/data" | tr '\n' ' '))"
fi
