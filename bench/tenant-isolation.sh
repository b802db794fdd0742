#!/usr/bin/env bash
# What row-level security costs (issue 22, "Tenant isolation in the database"), driven by wrk
# against a release build of `tessera` on a throwaway PostgreSQL 15 cluster:
#
#   bench/tenant-isolation.sh [--duration SECS] [--connections N] [--rounds N]
#   TESSERA_BIN=/path/to/tessera bench/tenant-isolation.sh ...   (skips the build)
#
# One data set (tenant `bench` with 50 users and a confidential client), served alternately
# by a server with TESSERA_TENANT_ISOLATION=true (each tenant's read-model query in a
# transaction as the role `tessera_tenant`, under the tables' policies) and =false (the same
# queries as the connecting user), over --rounds rounds, measuring:
#   - the admin API: GET /v1/tenants/{id}/users?limit=50 (a tenant-scoped listing) and
#     GET /v1/tenants/{id}/users/{user_id} (one row), with the platform admin key;
#   - the token endpoint: client_credentials issuance (it reads no read model: the OAuth
#     directory is in memory, so it shows the cost is nil there).
# Each phase prints the rate and the server's CPU per answer. The generator shares the machine.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=10
CONNECTIONS=32
ROUNDS=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION="$2"; shift ;;
    --connections) CONNECTIONS="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
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

POSTGRES=1 bench_choose_store
bench_start_server "$WORK/data"

admin() { curl -sf -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' "$@"; }
TENANT_ID=$(admin -X POST "$BASE/v1/tenants" -d '{"slug":"bench","name":"Bench"}' | json '["id"]')
for i in $(seq 1 50); do
  USER_ID=$(admin -X POST "$BASE/v1/tenants/$TENANT_ID/users" -d "{\"email\":\"person$i@bench.test\",\"roles\":[]}" | json '["id"]')
done
CLIENT=$(admin -X POST "$BASE/v1/tenants/$TENANT_ID/clients" -d '{"name":"svc","allowed_scopes":["orders:read"]}')
BASIC=$(printf '%s:%s' "$(echo "$CLIENT" | json '["client"]["client_id"]')" "$(echo "$CLIENT" | json '["client_secret"]')" | base64 -w0)
bench_stop_server

for name in list one; do
  cat >"$WORK/$name.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $ADMIN_KEY"
done = function(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
done
BASIC="$BASIC" bench_wrk_script "$WORK/token.lua" "grant_type=client_credentials&scope=orders:read"

# PostgreSQL's CPU time so far, in seconds: its processes (the server's pooled backends live
# through a phase) and what their exited children left to the postmaster.
pg_cpu() {
  local total=0 pid
  for pid in $(pgrep -u "${PG_USER:-$(id -un)}" postgres); do
    total=$(awk -v t="$total" -v tck="$(getconf CLK_TCK)" '{ printf "%.2f", t + ($14 + $15 + $16 + $17) / tck }' "/proc/$pid/stat" 2>/dev/null || echo "$total")
  done
  echo "$total"
}
phase() {
  local before pg_before cpu pg
  before=$(server_cpu)
  pg_before=$(pg_cpu)
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$1" "$2" >"$WORK/last.txt"
  cpu=$(awk -v a="$before" -v b="$(server_cpu)" -v n="$(answers)" 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }')
  pg=$(awk -v a="$pg_before" -v b="$(pg_cpu)" -v n="$(answers)" 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }')
  printf '  %-6s %8s/s  p99 %8s  CPU per answer: server %6s us, PostgreSQL %6s us  (%s)\n' "$3" \
    "$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$WORK/last.txt")" \
    "$(awk '$1 == "99%" {print $2}' "$WORK/last.txt")" "$cpu" "$pg" \
    "$(grep -E 'non-2xx' "$WORK/last.txt")"
}

echo "== $STORE, $(nproc) cores, wrk -t2 -c$CONNECTIONS -d${DURATION}s"
for round in $(seq 1 "$ROUNDS"); do
  for isolation in true false; do
    TESSERA_TENANT_ISOLATION=$isolation bench_start_server "$WORK/data" 60
    echo "-- round $round, TESSERA_TENANT_ISOLATION=$isolation"
    phase "$WORK/list.lua" "$BASE/v1/tenants/$TENANT_ID/users?limit=50" "list"
    phase "$WORK/one.lua" "$BASE/v1/tenants/$TENANT_ID/users/$USER_ID" "one"
    phase "$WORK/token.lua" "$BASE/t/bench/oauth/token" "token"
    bench_stop_server
  done
done
