#!/usr/bin/env bash
# Load benchmark of issue 21's tenant claims, driven by wrk against a release build of `tessera`:
#
#   bench/claims.sh [--postgres] [--duration SECS] [--connections N] [--threads N] [--rounds N]
#   TESSERA_BIN=/path/to/tessera bench/claims.sh ...   (skips the build)
#
# Starts its own server (embedded SQLite, or with --postgres a throwaway PostgreSQL 15 cluster;
# see bench/lib.sh), creates tenant `bench` on plan `enterprise` with five catalog products
# granted, and two confidential clients: `with` (every tenant claim, the default) and
# `without` (tenant claims turned off). Then:
#   1. POST /v1/claims/resolve {"tenant_slug":"bench"} with the platform admin key (the
#      issue's target: at least 30,000/s, from memory);
#   2. client_credentials token issuance for `without` and `with`, alternated over --rounds
#      rounds in the same run, so that both see the same machine state (the issue's target:
#      with claims within 10% of without). The script prints each round and the ratio of the
#      totals.
# The generator shares the machine with the server. Installs wrk from apt when missing.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=15
CONNECTIONS=64
THREADS=2
ROUNDS=2
POSTGRES=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --postgres) POSTGRES=1 ;;
    --duration) DURATION="$2"; shift ;;
    --connections) CONNECTIONS="$2"; shift ;;
    --threads) THREADS="$2"; shift ;;
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

bench_choose_store
bench_start_server "$WORK/data"

admin() { curl -sf -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' "$@"; }
TENANT_ID=$(admin -X POST "$BASE/v1/tenants" -d '{"slug":"bench","name":"Bench","plan":"enterprise"}' | json '["id"]')
for product in crm erp analytics compliance billing; do
  admin -X PUT "$BASE/v1/catalog/$product" -d "{\"name\":\"$product\",\"supports_trial\":true}" >/dev/null
  admin -X PUT "$BASE/v1/tenants/$TENANT_ID/entitlements/$product" -d '{"config":{"seats":10}}' >/dev/null
done

# A client and the wrk script asking it for tokens: $1 its name, $2 its tenant claims choice.
client_script() {
  local client id secret basic
  client=$(admin -X POST "$BASE/v1/tenants/$TENANT_ID/clients" -d "{\"name\":\"$1\",\"allowed_scopes\":[\"orders:read\"]}")
  id=$(echo "$client" | json '["client"]["client_id"]')
  secret=$(echo "$client" | json '["client_secret"]')
  admin -X PUT "$BASE/v1/tenants/$TENANT_ID/clients/$id/token-claims" -d "{\"tenant_claims\":$2}" >/dev/null
  basic=$(printf '%s:%s' "$id" "$secret" | base64 -w0)
  BASIC="$basic" bench_wrk_script "$WORK/token-$1.lua" "grant_type=client_credentials&scope=orders:read"
  # Shows one token's claims, so that the run proves what it measured.
  curl -sf -X POST "$BASE/t/bench/oauth/token" -H "Authorization: Basic $basic" -d grant_type=client_credentials \
    | json '["access_token"]' | cut -d. -f2 | python3 -c 'import sys,base64,json; p=sys.stdin.read().strip(); print("  '"$1"' token:", json.dumps({k:v for k,v in json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4))).items() if k in ("tenant_slug","plan","products","tenant_status")}))'
}
client_script with '"all"'
client_script without '"off"'

cat >"$WORK/resolve.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"tenant_slug":"bench"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $ADMIN_KEY"
done = function(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
echo "  resolved: $(admin -X POST "$BASE/v1/claims/resolve" -d '{"tenant_slug":"bench"}')"

# Each phase also prints the server's CPU per answer (bench/lib.sh's server_cpu), which hardly
# depends on what else the machine runs, unlike the rate.
run() {
  local before
  before=$(server_cpu)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$1" "$2" | tee "$WORK/last.txt"
  CPU_US=$(awk -v a="$before" -v b="$(server_cpu)" -v n="$(answers)" 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }')
  echo "server CPU per answer: $CPU_US us"
}
rate() { awk '/^Requests\/sec:/ {print $2}' "$WORK/last.txt"; }

echo "== $STORE, $(nproc) cores, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s"
echo "-- claims resolution: POST /v1/claims/resolve"
run "$WORK/resolve.lua" "$BASE/v1/claims/resolve"
TOTAL_WITH=0
TOTAL_WITHOUT=0
CPU_WITH=0
CPU_WITHOUT=0
for round in $(seq 1 "$ROUNDS"); do
  echo "-- round $round: tokens without tenant claims"
  run "$WORK/token-without.lua" "$BASE/t/bench/oauth/token"
  TOTAL_WITHOUT=$(python3 -c "print($TOTAL_WITHOUT + $(rate))")
  CPU_WITHOUT=$(python3 -c "print($CPU_WITHOUT + $CPU_US)")
  echo "-- round $round: tokens with tenant claims"
  run "$WORK/token-with.lua" "$BASE/t/bench/oauth/token"
  TOTAL_WITH=$(python3 -c "print($TOTAL_WITH + $(rate))")
  CPU_WITH=$(python3 -c "print($CPU_WITH + $CPU_US)")
done
python3 -c "w=$TOTAL_WITH; wo=$TOTAL_WITHOUT; print(f'tokens/s with claims {w/$ROUNDS:.0f}, without {wo/$ROUNDS:.0f}: with/without = {w/wo:.3f}')"
python3 -c "w=$CPU_WITH; wo=$CPU_WITHOUT; print(f'server CPU per token with claims {w/$ROUNDS:.1f} us, without {wo/$ROUNDS:.1f} us: with/without = {w/wo:.3f}')"
