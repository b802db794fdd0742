#!/usr/bin/env bash
# Disk under sustained load (issue 24): the size of both SQLite WAL files while client_credentials
# grants run flat out, and the bytes each token event costs in the log and in the audit read
# model.
#
#   bench/disk-load.sh [--duration SECS] [--connections N] [--threads N]
#   TESSERA_BIN=/path/to/tessera bench/disk-load.sh ...   (skips the build; e.g. an older binary)
#   KEEP_DATA=/tmp/dir bench/disk-load.sh ...             (keeps the data directory)
#   KEEP_LOG=/tmp/server.log TESSERA_LOG=tessera_event_log=debug,warn bench/disk-load.sh ...
#                                       (keeps the server's log: each forced truncation and its time)
#
# Starts its own server (embedded SQLite) on a free port with a fresh data directory, creates a
# tenant and a confidential client, then drives POST /t/bench/oauth/token with wrk for the
# duration while a sampler records `events.db-wal` and `readmodels.db-wal` every 200 ms. It
# prints wrk's latency percentiles (the p99 includes every forced WAL checkpoint of the run),
# the largest size each WAL reached, their sizes once the load stops, and after a clean stop:
#   - bytes per token event: the pages of each table and its indexes (`dbstat`) divided by the
#     number of `token.issued` events, for `events` in events.db and `rm_audit` in readmodels.db;
#   - each whole file's size after `VACUUM INTO` divided by the same count.
# Settings such as TESSERA_WAL_LIMIT_MB are passed through to the server from the environment.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=60
CONNECTIONS=64
THREADS=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION="$2"; shift ;;
    --connections) CONNECTIONS="$2"; shift ;;
    --threads) THREADS="$2"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

source bench/lib.sh
bench_install_wrk
if ! command -v sqlite3 >/dev/null; then
  echo "installing sqlite3 from apt" >&2
  (apt-get update -qq && apt-get install -y -qq sqlite3) >/dev/null
fi
bench_tessera_bin

WORK=$(mktemp -d /tmp/tessera-disk.XXXXXX)
DATA="$WORK/data"
SAMPLER_PID=""
cleanup() {
  [[ -n "$SAMPLER_PID" ]] && kill "$SAMPLER_PID" 2>/dev/null
  bench_stop_server
  [[ -n "${KEEP_DATA:-}" ]] && rm -rf "$KEEP_DATA" && cp -r "$DATA" "$KEEP_DATA"
  bench_cleanup
}
trap cleanup EXIT

size() { stat -c %s "$1" 2>/dev/null || echo 0; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

bench_start_server "$DATA"
bench_create_client
bench_wrk_script "$WORK/token.lua" "grant_type=client_credentials&scope=orders:read"

# One line per sample: seconds since the start, then each WAL's size in bytes.
(
  start=$(date +%s.%N)
  while true; do
    now=$(date +%s.%N)
    echo "$(awk -v a="$now" -v b="$start" 'BEGIN { printf "%.1f", a - b }') $(size "$DATA/events.db-wal") $(size "$DATA/readmodels.db-wal")"
    sleep 0.2
  done
) >"$WORK/wal.samples" &
SAMPLER_PID=$!

echo "== embedded SQLite, $(nproc) cores, load: $(uptime | sed 's/.*load average: //'), wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s"
echo "   WAL limit: ${TESSERA_WAL_LIMIT_MB:-default}"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/token.lua" "$BASE/t/bench/oauth/token"
sleep 2
kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""
echo "-- WAL sizes, sampled every 200 ms during the run"
awk '{ if ($2 > l) l = $2; if ($3 > r) r = $3 } END {
  printf "largest events.db-wal:     %d bytes (%.1f MiB)\n", l, l / 1048576;
  printf "largest readmodels.db-wal: %d bytes (%.1f MiB)\n", r, r / 1048576 }' "$WORK/wal.samples"
echo "2 s after the load: events.db-wal $(mib "$(size "$DATA/events.db-wal")"), readmodels.db-wal $(mib "$(size "$DATA/readmodels.db-wal")")"
[[ -n "${KEEP_SAMPLES:-}" ]] && cp "$WORK/wal.samples" "$KEEP_SAMPLES"

bench_stop_server
echo "after a clean stop: events.db-wal $(mib "$(size "$DATA/events.db-wal")"), readmodels.db-wal $(mib "$(size "$DATA/readmodels.db-wal")")"

TOKENS=$(sqlite3 "$DATA/events.db" "SELECT count(*) FROM events WHERE event_type = 'token.issued'")
EVENTS=$(sqlite3 "$DATA/events.db" "SELECT count(*) FROM events")
echo "-- bytes per token event ($TOKENS token.issued of $EVENTS events)"
for spec in "events.db:events" "readmodels.db:rm_audit"; do
  file="${spec%%:*}"; table="${spec##*:}"
  sqlite3 "$DATA/$file" "SELECT s.name, sum(s.pgsize) FROM dbstat s JOIN sqlite_schema m ON m.name = s.name
                         WHERE m.tbl_name = '$table' GROUP BY s.name" | while IFS='|' read -r name bytes; do
    awk -v n="$name" -v b="$bytes" -v t="$TOKENS" 'BEGIN { printf "  %-28s %12d bytes  %6.0f per token\n", n, b, b / t }'
  done
  total=$(sqlite3 "$DATA/$file" "SELECT sum(s.pgsize) FROM dbstat s JOIN sqlite_schema m ON m.name = s.name WHERE m.tbl_name = '$table'")
  awk -v f="$file" -v tb="$table" -v b="$total" -v t="$TOKENS" 'BEGIN { printf "%s %s with its indexes: %.0f bytes per token event\n", f, tb, b / t }'
  rm -f "$WORK/vacuumed.db"
  sqlite3 "$DATA/$file" "VACUUM INTO '$WORK/vacuumed.db'"
  awk -v f="$file" -v b="$(size "$WORK/vacuumed.db")" -v t="$TOKENS" 'BEGIN { printf "%s after VACUUM INTO: %.1f MiB, %.0f bytes per token event\n", f, b / 1048576, b / t }'
done
