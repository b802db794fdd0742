#!/usr/bin/env bash
# Load benchmark of the authorization server: client_credentials grants and introspections
# over HTTP keep-alive connections, driven by wrk against a release build of `tessera`.
#
#   bench/oauth-load.sh [--postgres] [--duration SECS] [--connections N] [--threads N]
#   TESSERA_BIN=/path/to/tessera bench/oauth-load.sh ...   (skips the build)
#
# Starts its own server on a free port with a fresh data directory (embedded SQLite), or with
# --postgres a throwaway PostgreSQL 15 cluster (initdb/pg_ctl on PATH; run as the `postgres`
# user when root). Creates a tenant and a confidential client, then runs:
#   1. POST /t/bench/oauth/token  grant_type=client_credentials (every issuance is appended
#      to the event log, durably, before the response);
#   2. POST /t/bench/oauth/introspect  for one token.
# Each run reports wrk's throughput and latency percentiles. The generator shares the machine
# with the server, as the issue's targets require. Installs wrk from apt when it is missing.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=20
CONNECTIONS=64
THREADS=2
POSTGRES=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --postgres) POSTGRES=1 ;;
    --duration) DURATION="$2"; shift ;;
    --connections) CONNECTIONS="$2"; shift ;;
    --threads) THREADS="$2"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

source bench/lib.sh
bench_install_wrk
bench_tessera_bin

WORK=$(mktemp -d /tmp/tessera-bench.XXXXXX)
chmod 755 "$WORK"
trap bench_cleanup EXIT

bench_choose_store

bench_start_server "$WORK/data"
bench_create_client
TOKEN=$(curl -sf -X POST "$BASE/t/bench/oauth/token" -H "Authorization: Basic $BASIC" \
  -d grant_type=client_credentials | json '["access_token"]')
HEAD_BEFORE=$(curl -sf "$BASE/readyz" | json '["log_head"]')

bench_wrk_script "$WORK/token.lua" "grant_type=client_credentials&scope=orders:read"
bench_wrk_script "$WORK/introspect.lua" "token=$TOKEN"

echo "== $STORE, $(nproc) cores, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s"
echo "-- client_credentials: POST /t/bench/oauth/token"
if [[ -n "${PERF_OUT:-}" ]]; then
  # Profile the server (not wrk) during the token run: PERF_OUT=/tmp/token.perf
  (sleep 1; perf record -F 299 ${PERF_CALLGRAPH:--g} ${PERF_TARGET:--p "$SERVER_PID"} -o "$PERF_OUT" -- sleep $((DURATION - 2)) >/dev/null 2>&1) &
fi
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/token.lua" "$BASE/t/bench/oauth/token"
HEAD_AFTER=$(curl -sf "$BASE/readyz" | json '["log_head"]')
echo "events appended to the log during the run: $((HEAD_AFTER - HEAD_BEFORE))"
echo "-- introspection: POST /t/bench/oauth/introspect"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/introspect.lua" "$BASE/t/bench/oauth/introspect"
