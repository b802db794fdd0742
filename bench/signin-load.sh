#!/usr/bin/env bash
# Load benchmark of the hosted sign-in (issue 16): password sign-ins per second beside the raw
# Argon2 rate, memory under 500 concurrent sign-ins, and a signed-in page view, driven by wrk
# against a release build of `tessera`.
#
#   bench/signin-load.sh [--postgres] [--duration SECS] [--users N] [--connections N]
#                        [--memory-connections N] [--page-connections N] [--phases "..."]
#   TESSERA_BIN=/path/to/tessera ARGON2_BIN=/path/to/argon2_rate bench/signin-load.sh ...
#
# Starts its own server on a free port with a fresh data directory (embedded SQLite), or with
# --postgres a throwaway PostgreSQL 15 cluster. Creates tenant `bench` and --users users
# (default 600) with a password through the admin API, then runs the phases (default all, in
# this order):
#   argon2   the raw rate: `api/examples/argon2_rate.rs`, the server's `Passwords` with the
#            same cost, permits (one per core), runtime and allocator, verifying one hash from
#            64 tasks (no HTTP, no log); run before and after the sign-in phase, with the
#            server idle;
#   signin   JSON `POST /t/bench/login`, the users in turn (wrk -c --connections, default 16);
#   memory   the same with --memory-connections (default 500) for --duration, sampling VmRSS
#            and VmHWM of the server's /proc/<pid>/status every 0.5 s, and 2 s after;
#   account  `GET /t/bench/account` with one person's session and CSRF cookies (as a browser
#            sends them after its first page), wrk -c --page-connections (default 64).
# When perf is installed, the argon2, signin and account phases also count CPU time
# (`perf stat -e task-clock`: the example's, then the server's) and divide it by the operations
# or requests done.
#
# Rate limits: every request comes from 127.0.0.1, so the per-source ceiling (30 a minute by
# default) would refuse nearly all of them. The script switches that one off for its own
# server with the documented setting (`TESSERA_SIGN_IN_ATTEMPTS_PER_SOURCE=0`) and keeps the
# per-account limit at its default (5 a minute): the users are signed in in turn, so each one
# stays under it as long as users × 5 per minute exceeds the sign-in rate (600 users: 50/s). A
# refused attempt shows as a 429 in the status counts. The defaults of a real server are not
# changed.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=20
USERS=600
CONNECTIONS=16
MEMORY_CONNECTIONS=500
PAGE_CONNECTIONS=64
PHASES="argon2 signin memory account"
POSTGRES=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --postgres) POSTGRES=1 ;;
    --duration) DURATION="$2"; shift ;;
    --users) USERS="$2"; shift ;;
    --connections) CONNECTIONS="$2"; shift ;;
    --memory-connections) MEMORY_CONNECTIONS="$2"; shift ;;
    --page-connections) PAGE_CONNECTIONS="$2"; shift ;;
    --phases) PHASES="$2"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
phase() { [[ " $PHASES " == *" $1 "* ]]; }

source bench/lib.sh
bench_install_wrk
bench_tessera_bin
if [[ -z "${ARGON2_BIN:-}" ]] && phase argon2; then
  cargo build --release --locked -p tessera-api --example argon2_rate >&2
  ARGON2_BIN="${CARGO_TARGET_DIR:-target}/release/examples/argon2_rate"
fi

WORK=$(mktemp -d /tmp/tessera-signin.XXXXXX)
chmod 755 "$WORK"
trap bench_cleanup EXIT

bench_choose_store

PASSWORD="violet kettle marathon 1987"
export TESSERA_SIGN_IN_ATTEMPTS_PER_SOURCE=0
bench_start_server "$WORK/data"
bench_create_tenant

load() { cut -d' ' -f1-3 /proc/loadavg; }
status_kib() { awk -v key="$1:" '$1 == key {print $2}' "/proc/$SERVER_PID/status"; }
mib() { awk -v kib="$1" 'BEGIN {printf "%.1f", kib / 1024}'; }
memory() { echo "VmRSS $(mib "$(status_kib VmRSS)") MiB, VmHWM $(mib "$(status_kib VmHWM)") MiB"; }

# The users: user0@bench.example ... (each creation hashes a password: 8 at a time).
create_user() {
  curl -sf -o /dev/null -X POST "$BASE/v1/tenants/$TENANT_ID/users" \
    -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$1@bench.example\",\"name\":\"Bench $1\",\"password\":\"$PASSWORD\"}"
}
export -f create_user
export BASE TENANT_ID PASSWORD ADMIN_KEY
STARTED=$SECONDS
{ seq 0 $((USERS - 1)) | sed 's/^/user/'; echo page; } | xargs -P 8 -I{} bash -c 'create_user {}'
echo "== $STORE, $(nproc) cores; $USERS users (and one for the page) created in $((SECONDS - STARTED)) s"
echo "after creating them: $(memory); load $(load)"

# Signs the users in, in turn: thread t of n takes users t, t + n, t + 2n, ... and every
# thread's status counts are summed at the end.
cat >"$WORK/signin.lua" <<EOF
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  next_user = id
  step = 2 -- wrk's -t2
  statuses = {}
end
function request()
  local body = string.format('{"email":"user%d@bench.example","password":"$PASSWORD"}', next_user % $USERS)
  next_user = next_user + step
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  local line = "statuses:"
  for status, count in pairs(total) do line = line .. string.format(" %d×%d", count, status) end
  io.write(line .. string.format("; socket errors: %d (timeouts %d)\n",
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.timeout))
end
EOF

# Runs wrk with the server's CPU time counted by perf (when installed), then prints CPU time
# per answered request. Arguments: wrk's.
wrk_with_cpu() {
  if command -v perf >/dev/null; then
    perf stat -e task-clock -x, -o "$WORK/perf.csv" -p "$SERVER_PID" &
    local perf_pid=$!
    sleep 0.2
    wrk "$@" | tee "$WORK/wrk.out"
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    local ms requests
    ms=$(awk -F, '$3 == "task-clock" {print $1}' "$WORK/perf.csv")
    requests=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
    awk -v ms="$ms" -v n="$requests" 'BEGIN {printf "server CPU: %.0f ms for %d requests, %.3f ms per request\n", ms, n, ms / n}'
  else
    wrk "$@"
  fi
}

# The raw rate, and (with perf) its CPU time per operation: verifications and hashes cost the
# same, so the process's CPU time is divided by both counts (rate × 10 s each).
argon2_rate() {
  echo "-- raw Argon2 ($1; load $(load))"
  if command -v perf >/dev/null; then
    perf stat -e task-clock -x, -o "$WORK/argon2.csv" "$ARGON2_BIN" --seconds 10 --tasks 64 | tee "$WORK/argon2.out"
    local ms ops
    ms=$(awk -F, '$3 == "task-clock" {print $1}' "$WORK/argon2.csv")
    ops=$(awk '/\/s:/ {sum += $2 * 10} END {print sum}' "$WORK/argon2.out")
    awk -v ms="$ms" -v n="$ops" 'BEGIN {printf "CPU: %.0f ms for %d operations, %.2f ms per operation\n", ms, n, ms / n}'
  else
    "$ARGON2_BIN" --seconds 10 --tasks 64
  fi
}

if phase argon2; then argon2_rate "before the sign-ins"; fi
if phase signin; then
  echo "-- sign-ins: POST /t/bench/login (JSON), wrk -t2 -c$CONNECTIONS -d${DURATION}s; load $(load)"
  wrk_with_cpu -t2 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 30s --latency -s "$WORK/signin.lua" "$BASE/t/bench/login"
  echo "load after: $(load)"
fi
if phase argon2; then argon2_rate "after the sign-ins"; fi

if phase memory; then
  echo "-- memory: the same sign-ins from $MEMORY_CONNECTIONS connections for ${DURATION}s; before: $(memory); load $(load)"
  wrk -t2 -c"$MEMORY_CONNECTIONS" -d"${DURATION}s" --timeout 60s -s "$WORK/signin.lua" "$BASE/t/bench/login" >"$WORK/wrk-memory.out" 2>&1 &
  WRK_PID=$!
  MAX_RSS=0
  MEMORY_STARTED=$SECONDS
  while kill -0 "$WRK_PID" 2>/dev/null; do
    RSS=$(status_kib VmRSS)
    (( RSS > MAX_RSS )) && MAX_RSS=$RSS
    echo "$(( SECONDS - MEMORY_STARTED )) s: $(memory); threads $(awk '$1 == "Threads:" {print $2}' "/proc/$SERVER_PID/status"); load $(load)" >>"$WORK/samples"
    sleep 0.5
  done
  wait "$WRK_PID" || true
  awk 'NR % 6 == 1' "$WORK/samples"
  cat "$WORK/wrk-memory.out"
  echo "largest VmRSS sampled during the run: $(mib "$MAX_RSS") MiB"
  sleep 2
  echo "2 s after: $(memory)"
fi

if phase account; then
  # One person signed in, and the CSRF cookie a browser holds after its first page.
  curl -sf -o /dev/null -c "$WORK/jar" "$BASE/t/bench/login" -H 'Content-Type: application/json' \
    -d "{\"email\":\"page@bench.example\",\"password\":\"$PASSWORD\"}"
  curl -sf -o /dev/null -b "$WORK/jar" -c "$WORK/jar" "$BASE/t/bench/account"
  COOKIE=$(awk '{sub(/^#HttpOnly_/, "")} !/^#/ && NF >= 7 {printf "%s%s=%s", sep, $6, $7; sep = "; "}' "$WORK/jar")
  curl -sf -H "Cookie: $COOKIE" "$BASE/t/bench/account" | grep -q 'Sign out' || { echo "the account page did not show" >&2; exit 1; }
  cat >"$WORK/account.lua" <<EOF
wrk.headers["Cookie"] = "$COOKIE"
done = function(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
EOF
  echo "-- signed-in page: GET /t/bench/account, wrk -t2 -c$PAGE_CONNECTIONS -d${DURATION}s; load $(load)"
  if [[ -n "${PERF_OUT:-}" ]]; then
    # Profile the server during the page run: PERF_OUT=/tmp/account.perf
    (sleep 1; perf record -F 999 -g -p "$SERVER_PID" -o "$PERF_OUT" -- sleep $((DURATION - 2)) >/dev/null 2>&1) &
  fi
  wrk_with_cpu -t2 -c"$PAGE_CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/account.lua" "$BASE/t/bench/account"
  echo "load after: $(load)"
fi
