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

if ! command -v wrk >/dev/null; then
  echo "installing wrk from apt" >&2
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi
# TESSERA_BIN runs a binary built elsewhere (say, an older commit for a comparison) instead.
if [[ -z "${TESSERA_BIN:-}" ]]; then
  cargo build --release --locked -p tessera-api --bin tessera >&2
  TESSERA_BIN="${CARGO_TARGET_DIR:-target}/release/tessera"
fi

WORK=$(mktemp -d /tmp/tessera-bench.XXXXXX)
chmod 755 "$WORK"
SERVER_PID=""
PG_DIR=""
PG_USER=""
as_pg() { if [[ -n "$PG_USER" ]]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi; }
cleanup() {
  [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  [[ -n "$PG_DIR" ]] && as_pg pg_ctl -D "$PG_DIR" -m immediate stop >/dev/null 2>&1
  [[ -n "${KEEP_LOG:-}" ]] && cp "$WORK/server.log" "$KEEP_LOG"; rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ADMIN_KEY="tsr_bench-admin-key-0123456789abcdefABCDEFGHIJ"
export TESSERA_BOOTSTRAP_ADMIN_KEY="$ADMIN_KEY"
export TESSERA_LOG="${TESSERA_LOG:-warn}"
if [[ "$POSTGRES" == 1 ]]; then
  [[ "$(id -u)" == 0 ]] && PG_USER=postgres
  PG_DIR="$WORK/pg"
  mkdir -p "$PG_DIR" && [[ -n "$PG_USER" ]] && chown "$PG_USER" "$PG_DIR"
  PG_PORT=$(free_port)
  as_pg initdb -D "$PG_DIR" -U postgres --auth=trust >/dev/null
  as_pg pg_ctl -D "$PG_DIR" -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1" -l "$PG_DIR/log" -w start >/dev/null
  export TESSERA_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  export TESSERA_MASTER_KEY=$(python3 -c 'import os,base64; print(base64.b64encode(os.urandom(32)).decode())')
  STORE="PostgreSQL 15"
else
  STORE="embedded SQLite"
fi

PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
"$TESSERA_BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -sf "$BASE/healthz" >/dev/null && break
  sleep 0.2
done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
TENANT_ID=$(curl -sf -X POST "$BASE/v1/tenants" -H "Authorization: Bearer $ADMIN_KEY" \
  -H 'Content-Type: application/json' -d '{"slug":"bench","name":"Bench"}' | json '["id"]')
CLIENT=$(curl -sf -X POST "$BASE/v1/tenants/$TENANT_ID/clients" -H "Authorization: Bearer $ADMIN_KEY" \
  -H 'Content-Type: application/json' -d '{"name":"load","allowed_scopes":["orders:read","orders:write"]}')
CLIENT_ID=$(echo "$CLIENT" | json '["client"]["client_id"]')
CLIENT_SECRET=$(echo "$CLIENT" | json '["client_secret"]')
BASIC=$(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)
TOKEN=$(curl -sf -X POST "$BASE/t/bench/oauth/token" -H "Authorization: Basic $BASIC" \
  -d grant_type=client_credentials | json '["access_token"]')
HEAD_BEFORE=$(curl -sf "$BASE/readyz" | json '["log_head"]')

cat >"$WORK/token.lua" <<EOF
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=orders:read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $BASIC"
done = function(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
EOF
cat >"$WORK/introspect.lua" <<EOF
wrk.method = "POST"
wrk.body = "token=$TOKEN"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $BASIC"
done = function(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
EOF

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
