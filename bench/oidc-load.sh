#!/usr/bin/env bash
# Load benchmark of the OpenID Connect flows (issue 17), driven by wrk against a release build
# of `tessera`, every state change durable (each code, redemption and rotation is appended to
# the log and synced before it is answered):
#
#   bench/oidc-load.sh [--postgres] [--duration SECS] [--connections N] [--phases "..."]
#                      [--id-token-alg RS256|ES256]
#   TESSERA_BIN=/path/to/tessera bench/oidc-load.sh ...
#
# Starts its own server on a free port with a fresh data directory (embedded SQLite), or with
# --postgres a throwaway PostgreSQL 15 cluster. Creates tenant `bench`, one person and a
# confidential client that asks for consent; `bench/oidc_setup.py` signs the person in, allows
# the client once on the consent page and opens 128 refresh-token families. Then the phases
# (default all, in this order):
#   code      round trips of a signed-in browser with a remembered consent: GET authorize
#             (a 303 with a code) then the code exchange at the token endpoint (PKCE, Basic
#             client authentication, an ID token and a refresh token back); a wrk thread keeps
#             the codes its authorize answers carry and redeems each once, so a round trip is
#             one authorize and one exchange; round trips/s = exchanges answered 200 per second;
#   refresh   refresh grants: each connection takes a family's current token from its thread's
#             pool, rotates it and puts the successor back (wrk -c --connections, default 64);
#   userinfo  GET userinfo with one access token (wrk -c --connections).
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=20
CONNECTIONS=64
PHASES="code refresh userinfo"
POSTGRES=0
ID_TOKEN_ALG=RS256
while [[ $# -gt 0 ]]; do
  case "$1" in
    --postgres) POSTGRES=1 ;;
    --duration) DURATION="$2"; shift ;;
    --connections) CONNECTIONS="$2"; shift ;;
    --phases) PHASES="$2"; shift ;;
    --id-token-alg) ID_TOKEN_ALG="$2"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
phase() { [[ " $PHASES " == *" $1 "* ]]; }

source bench/lib.sh
bench_install_wrk
bench_tessera_bin

WORK=$(mktemp -d /tmp/tessera-oidc.XXXXXX)
chmod 755 "$WORK"
trap bench_cleanup EXIT

bench_choose_store
export TESSERA_SIGN_IN_ATTEMPTS_PER_SOURCE=0
bench_start_server "$WORK/data"
bench_create_tenant

PASSWORD="violet kettle marathon 1987"
REDIRECT="http://127.0.0.1:9/callback"
VERIFIER="bench-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
curl -sf -o /dev/null -X POST "$BASE/v1/tenants/$TENANT_ID/users" \
  -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
  -d "{\"email\":\"person@bench.example\",\"name\":\"Bench Person\",\"password\":\"$PASSWORD\"}"
CLIENT=$(curl -sf -X POST "$BASE/v1/tenants/$TENANT_ID/clients" -H "Authorization: Bearer $ADMIN_KEY" \
  -H 'Content-Type: application/json' -d "{\"name\":\"Bench app\",
    \"grant_types\":[\"authorization_code\",\"refresh_token\"],
    \"redirect_uris\":[\"$REDIRECT\"],
    \"allowed_scopes\":[\"openid\",\"profile\",\"email\",\"offline_access\"],
    \"require_consent\":true, \"id_token_signed_response_alg\":\"$ID_TOKEN_ALG\"}")
CLIENT_ID=$(echo "$CLIENT" | json '["client"]["client_id"]')
CLIENT_SECRET=$(echo "$CLIENT" | json '["client_secret"]')
BASIC=$(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)
STARTED=$SECONDS
python3 bench/oidc_setup.py --base "$BASE" --slug bench --email person@bench.example \
  --password "$PASSWORD" --client-id "$CLIENT_ID" --client-secret "$CLIENT_SECRET" \
  --redirect-uri "$REDIRECT" --verifier "$VERIFIER" --out "$WORK/setup"
COOKIE=$(cat "$WORK/setup/cookie")
CHALLENGE=$(cat "$WORK/setup/challenge")
echo "== $STORE, $(nproc) cores, ID tokens in $ID_TOKEN_ALG; person signed in, consent given, 128 families opened in $((SECONDS - STARTED)) s"

load() { cut -d' ' -f1-3 /proc/loadavg; }
urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

# Status counts of every thread, summed, and wrk's socket errors.
STATUS_REPORT='
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for key, count in pairs(thread:get("counts")) do
      total[key] = (total[key] or 0) + count
    end
  end
  local line = "answers:"
  for key, count in pairs(total) do line = line .. string.format(" %s×%d", key, count) end
  io.write(line .. string.format("; socket errors: %d (timeouts %d)\n",
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.timeout))
end
function count(key)
  counts[key] = (counts[key] or 0) + 1
end'

cat >"$WORK/code.lua" <<EOF
threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  counts = {}
  codes = {}
  authorize = "/t/bench/oauth/authorize?response_type=code&client_id=$CLIENT_ID&redirect_uri=$(urlencode "$REDIRECT")&scope=openid%20profile%20email%20offline_access&state=s&code_challenge=$CHALLENGE&code_challenge_method=S256"
end
function request()
  local code = table.remove(codes)
  if code then
    local body = "grant_type=authorization_code&code=" .. code .. "&redirect_uri=$(urlencode "$REDIRECT")&code_verifier=$VERIFIER"
    return wrk.format("POST", "/t/bench/oauth/token", {["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "Basic $BASIC"}, body)
  end
  return wrk.format("GET", authorize, {["Cookie"] = "$COOKIE"})
end
function response(status, headers, body)
  local location = headers["Location"] or headers["location"]
  if location then
    local code = string.match(location, "[?&]code=([^&]+)")
    if code then table.insert(codes, code) end
    count("authorize " .. status)
  elseif string.find(body, "access_token", 1, true) then
    count("exchange " .. status)
  else
    count("other " .. status)
  end
end
$STATUS_REPORT
EOF

# Each thread takes every other family (wrk -t2), so that no family is rotated by two threads.
cat >"$WORK/refresh.lua" <<EOF
threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  counts = {}
  pool = {}
  local n = 0
  for line in io.lines("$WORK/setup/refresh") do
    if n % 2 == id then table.insert(pool, line) end
    n = n + 1
  end
end
function request()
  local token = table.remove(pool, 1)
  if not token then
    count("pool empty")
    return wrk.format("GET", "/healthz")
  end
  return wrk.format("POST", "/t/bench/oauth/token", {["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "Basic $BASIC"}, "grant_type=refresh_token&refresh_token=" .. token)
end
function response(status, headers, body)
  local token = string.match(body, '"refresh_token":"([^"]+)"')
  if token then table.insert(pool, token) end
  count("refresh " .. status)
end
$STATUS_REPORT
EOF

cat >"$WORK/userinfo.lua" <<EOF
threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  counts = {}
end
wrk.headers["Authorization"] = "Bearer $(cat "$WORK/setup/access_token")"
function response(status, headers, body)
  count("userinfo " .. status)
end
$STATUS_REPORT
EOF

run() {
  local name=$1 connections=$2 path=$3 before
  echo "-- $name: wrk -t2 -c$connections -d${DURATION}s $path; load $(load)"
  before=$(server_cpu)
  wrk -t2 -c"$connections" -d"${DURATION}s" --timeout 10s --latency -s "$WORK/$name.lua" "$BASE$path"
  echo "server CPU during the phase: $(awk -v a="$before" -v b="$(server_cpu)" 'BEGIN { printf "%.2f", b - a }') s"
  echo "load after: $(load)"
}

if phase code; then run code 16 /t/bench/oauth/authorize; fi
if phase refresh; then run refresh "$CONNECTIONS" /t/bench/oauth/token; fi
if phase userinfo; then run userinfo "$CONNECTIONS" /t/bench/oauth/userinfo; fi
