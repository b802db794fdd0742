# Shared by the load benchmarks (sourced, not run): building or choosing the `tessera` binary,
# a throwaway PostgreSQL cluster, starting and stopping a server on a free port, and a tenant
# with a confidential client and the wrk script that asks it for tokens.
#
# The caller sets WORK (a scratch directory it removes) before calling these, and calls
# bench_cleanup from its EXIT trap.

SERVER_PID=""
PG_DIR=""
PG_USER=""
ADMIN_KEY="tsr_bench-admin-key-0123456789abcdefABCDEFGHIJ"
export TESSERA_BOOTSTRAP_ADMIN_KEY="$ADMIN_KEY"
export TESSERA_LOG="${TESSERA_LOG:-warn}"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
as_pg() { if [[ -n "$PG_USER" ]]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi; }

# TESSERA_BIN runs a binary built elsewhere (say, an older commit for a comparison); otherwise
# the release build of this tree.
bench_tessera_bin() {
  if [[ -z "${TESSERA_BIN:-}" ]]; then
    cargo build --release --locked -p tessera-api --bin tessera >&2
    TESSERA_BIN="${CARGO_TARGET_DIR:-target}/release/tessera"
  fi
}

bench_install_wrk() {
  if ! command -v wrk >/dev/null; then
    echo "installing wrk from apt" >&2
    (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
  fi
}

# A PostgreSQL 15 cluster in $WORK/pg on a free port (initdb/pg_ctl on PATH; as the `postgres`
# user when root), with TESSERA_DATABASE_URL and a fresh TESSERA_MASTER_KEY exported.
bench_start_postgres() {
  [[ "$(id -u)" == 0 ]] && PG_USER=postgres
  PG_DIR="$WORK/pg"
  mkdir -p "$PG_DIR" && [[ -n "$PG_USER" ]] && chown "$PG_USER" "$PG_DIR"
  local port
  port=$(free_port)
  as_pg initdb -D "$PG_DIR" -U postgres --auth=trust >/dev/null
  as_pg pg_ctl -D "$PG_DIR" -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1" -l "$PG_DIR/log" -w start >/dev/null
  export TESSERA_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  TESSERA_MASTER_KEY=$(python3 -c 'import os,base64; print(base64.b64encode(os.urandom(32)).decode())')
  export TESSERA_MASTER_KEY
}

# With POSTGRES=1 a throwaway cluster (bench_start_postgres), else the embedded store. Sets
# STORE, the store's name as the reports print it.
bench_choose_store() {
  if [[ "${POSTGRES:-0}" == 1 ]]; then
    bench_start_postgres
    STORE="PostgreSQL 15"
  else
    STORE="embedded SQLite"
  fi
}

# Starts `tessera serve` on a free port with data directory $1, logging to $WORK/server.log,
# and waits until it serves (after catching up with the log; up to $2 seconds, default 20).
# Sets SERVER_PID and BASE.
bench_start_server() {
  local port
  port=$(free_port)
  BASE="http://127.0.0.1:$port"
  "$TESSERA_BIN" serve --listen "127.0.0.1:$port" --data-dir "$1" >>"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  local tries=$(( ${2:-20} * 20 ))
  for _ in $(seq 1 "$tries"); do
    curl -sf "$BASE/healthz" >/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$WORK/server.log" >&2; return 1; }
    sleep 0.05
  done
  echo "the server did not start" >&2
  return 1
}

# SIGTERM, then wait for the clean stop (which snapshots the OAuth directory).
bench_stop_server() {
  if [[ -n "$SERVER_PID" ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

# Runs from an EXIT trap, where a failing command would end it early: every step tolerates
# failure.
bench_cleanup() {
  bench_stop_server
  if [[ -n "$PG_DIR" ]]; then as_pg pg_ctl -D "$PG_DIR" -m immediate stop >/dev/null 2>&1 || true; fi
  if [[ -n "${KEEP_LOG:-}" && -f "$WORK/server.log" ]]; then cp "$WORK/server.log" "$KEEP_LOG" || true; fi
  rm -rf "$WORK"
}

# Tenant `bench`. Sets TENANT_ID.
bench_create_tenant() {
  TENANT_ID=$(curl -sf -X POST "$BASE/v1/tenants" -H "Authorization: Bearer $ADMIN_KEY" \
    -H 'Content-Type: application/json' -d '{"slug":"bench","name":"Bench"}' | json '["id"]')
}

# Tenant `bench` and a confidential client allowed orders:read and orders:write. Sets
# TENANT_ID, CLIENT_ID, CLIENT_SECRET and BASIC (its client_secret_basic credentials).
bench_create_client() {
  bench_create_tenant
  local client
  client=$(curl -sf -X POST "$BASE/v1/tenants/$TENANT_ID/clients" -H "Authorization: Bearer $ADMIN_KEY" \
    -H 'Content-Type: application/json' -d '{"name":"load","allowed_scopes":["orders:read","orders:write"]}')
  CLIENT_ID=$(echo "$client" | json '["client"]["client_id"]')
  CLIENT_SECRET=$(echo "$client" | json '["client_secret"]')
  BASIC=$(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)
}

# Writes the wrk script $1 that POSTs form body $2 with the client's Basic credentials and
# counts failed requests.
bench_wrk_script() {
  cat >"$1" <<EOF
wrk.method = "POST"
wrk.body = "$2"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $BASIC"
done = function(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
EOF
}

# The server's CPU time so far (user + system), in seconds: divided by the answers of a phase it
# gives the CPU a request costs, which, unlike the rate, hardly depends on what else runs.
server_cpu() {
  awk -v tck="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / tck }' "/proc/$SERVER_PID/stat"
}

# The answers of the last wrk run, whose report the caller saved in $WORK/last.txt.
answers() { awk '/requests in/ {print $1}' "$WORK/last.txt"; }
