#!/usr/bin/env bash
# Load benchmark of issue 20's credential access, driven by wrk against a release build of
# `tessera`:
#
#   bench/vault.sh [--postgres] [--duration SECS] [--connections N] [--threads N] [--credentials N]
#   TESSERA_BIN=/path/to/tessera bench/vault.sh ...   (skips the build)
#
# Starts its own server (embedded SQLite, or with --postgres a throwaway PostgreSQL 15 cluster;
# see bench/lib.sh), creates tenant `bench`, stores --credentials connections directly (OAuth
# tokens with an hour to live, so that no access refreshes) and an API key with `vault:read`.
# Then wrk asks for them in turn:
#   1. POST /v1/tenants/{id}/integrations/{integration}/credentials/access: each answer opens
#      the sealed credential and is preceded by a durable `credential.accessed` event (the
#      issue's target: at least 5,000/s on the 2-core machine);
#   2. POST /v1/tenants/{id}/credentials/openai/resolve, a tenant's LLM provider key, audited
#      the same way.
# It prints the rate, the latency and the server's CPU per answer, and counts the
# `credential.accessed` events the log gained, which must equal the 2xx answers.
# The generator shares the machine with the server. Installs wrk from apt when missing.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=15
CONNECTIONS=64
THREADS=2
CREDENTIALS=20
POSTGRES=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --postgres) POSTGRES=1 ;;
    --duration) DURATION="$2"; shift ;;
    --connections) CONNECTIONS="$2"; shift ;;
    --threads) THREADS="$2"; shift ;;
    --credentials) CREDENTIALS="$2"; shift ;;
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
bench_create_tenant
for n in $(seq 1 "$CREDENTIALS"); do
  admin -X POST "$BASE/v1/tenants/$TENANT_ID/integrations/bench-$n/credentials" \
    -d "{\"access_token\":\"bench-access-token-$n\",\"refresh_token\":\"bench-refresh-$n\",\"expires_in\":3600,\"scopes\":[\"read\"]}" >/dev/null
done
admin -X PUT "$BASE/v1/tenants/$TENANT_ID/credentials/openai" -d '{"api_key":"sk-bench-provider-key-0001"}' >/dev/null
VAULT_KEY=$(admin -X POST "$BASE/v1/tenants/$TENANT_ID/api-keys" -d '{"name":"vault reader","scopes":["vault:read"]}' | json '["plaintext"]')

# The wrk script that POSTs to the paths given, in turn, with the vault:read key.
vault_script() {
  local paths=""
  for path in "$@"; do paths+="\"$path\","; done
  cat >"$WORK/access.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $VAULT_KEY"
wrk.headers["Content-Type"] = "application/json"
wrk.body = "{}"
local paths = { $paths }
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, paths[(n % #paths) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
}


run() {
  local before
  before=$(server_cpu)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/access.lua" "$BASE" | tee "$WORK/last.txt"
  CPU_US=$(awk -v a="$before" -v b="$(server_cpu)" -v n="$(answers)" 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }')
  echo "server CPU per answer: $CPU_US us"
}

echo "== $STORE, $(nproc) cores, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $CREDENTIALS connections"
echo "  one answer: $(curl -sf -X POST -H "Authorization: Bearer $VAULT_KEY" "$BASE/v1/tenants/$TENANT_ID/integrations/bench-1/credentials/access" | head -c 200)"
paths=()
for n in $(seq 1 "$CREDENTIALS"); do
  paths+=("/v1/tenants/$TENANT_ID/integrations/bench-$n/credentials/access")
done
vault_script "${paths[@]}"
echo "-- credential access"
before_events=$(curl -sf "$BASE/metrics" | awk '/^tessera_log_head_position / {print $2}')
run
after_events=$(curl -sf "$BASE/metrics" | awk '/^tessera_log_head_position / {print $2}')
echo "log grew by $(( ${after_events:-0} - ${before_events:-0} )) events for $(answers) answers"

echo "-- provider key resolution"
vault_script "/v1/tenants/$TENANT_ID/credentials/openai/resolve"
echo "  one answer: $(curl -s -X POST -H "Authorization: Bearer $VAULT_KEY" "$BASE/v1/tenants/$TENANT_ID/credentials/openai/resolve" | head -c 200)"
run
