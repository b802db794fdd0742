#!/usr/bin/env bash
# Throughput of the compliance CLI: `tessera-replay verify` and `tessera-replay rebuild` over a
# large, realistic log, with release builds.
#
#   bench/replay.sh [--postgres] [--tenants N] [--runs N] [--data-dir DIR] [--no-rebuild]
#
# Builds the log with the catch-up benchmark's workload (replay-tools/examples/bench_log.rs:
# 84,000 tenants give 1,295,700 events over 252,000 streams, signed checkpoints every 1,024
# events) into a fresh
# data directory (embedded SQLite), or with --postgres into a throwaway PostgreSQL 15 cluster
# (initdb/pg_ctl on PATH; run as the `postgres` user when root). --data-dir keeps the SQLite
# log in DIR and reuses it on later runs (building 1,000,000 events takes a few minutes).
# Then, after one unmeasured warm-up run of `verify` (the log is read from the page cache
# afterwards), it runs `verify` --runs times (default 3) and `rebuild` --runs times, printing
# each run's events/s and the median. `verify` is timed from outside, the whole process from
# start to exit; `rebuild` reports its own rate (reset, read, fold and write, without opening
# the stores). The load average is printed before each run: another compile on the machine
# halves these figures.
set -euo pipefail

cd "$(dirname "$0")/.."
TENANTS=84000
RUNS=3
POSTGRES=0
REBUILD=1
DATA=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --postgres) POSTGRES=1 ;;
    --tenants) TENANTS="$2"; shift ;;
    --runs) RUNS="$2"; shift ;;
    --data-dir) DATA="$2"; shift ;;
    --no-rebuild) REBUILD=0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked -p tessera-replay-tools --bin tessera-replay --example bench_log >&2
REPLAY="$TARGET/release/tessera-replay"
BENCH_LOG="$TARGET/release/examples/bench_log"

WORK=$(mktemp -d /tmp/tessera-replay-bench.XXXXXX)
chmod 755 "$WORK"
PG_DIR=""
PG_USER=""
as_pg() { if [[ -n "$PG_USER" ]]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi; }
cleanup() {
  [[ -n "$PG_DIR" ]] && as_pg pg_ctl -D "$PG_DIR" -m immediate stop >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

unset TESSERA_MASTER_KEY TESSERA_DATA_DIR
if [[ "$POSTGRES" == 1 ]]; then
  [[ "$(id -u)" == 0 ]] && PG_USER=postgres
  PG_DIR="$WORK/pg"
  mkdir -p "$PG_DIR" && [[ -n "$PG_USER" ]] && chown "$PG_USER" "$PG_DIR"
  PG_PORT=$(free_port)
  as_pg initdb -D "$PG_DIR" -U postgres --auth=trust >/dev/null
  as_pg pg_ctl -D "$PG_DIR" -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1" -l "$PG_DIR/log" -w start >/dev/null
  export TESSERA_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  DATA="$WORK/data"
  STORE="PostgreSQL 15 (fsync=on, default settings)"
else
  unset TESSERA_DATABASE_URL
  DATA="${DATA:-$WORK/data}"
  STORE="embedded SQLite"
fi

if [[ ! -f "$DATA/events.db" || "$POSTGRES" == 1 ]]; then
  echo "building the log: $TENANTS tenants" >&2
  "$BENCH_LOG" --data-dir "$DATA" --tenants "$TENANTS" \
    ${TESSERA_DATABASE_URL:+--database-url "$TESSERA_DATABASE_URL"} 2>"$WORK/bench_log.err" >&2 \
    || { cat "$WORK/bench_log.err" >&2; exit 1; }
fi

echo "== $STORE, $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+changes')"
"$REPLAY" verify --data-dir "$DATA" >/dev/null   # warm-up: fills the page cache
echo "-- $REPLAY verify --data-dir $DATA --json"
RATES=()
for run in $(seq 1 "$RUNS"); do
  LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
  START=$(date +%s%N)
  OUT=$("$REPLAY" verify --data-dir "$DATA" --json)
  END=$(date +%s%N)
  EVENTS=$(echo "$OUT" | json '["report"]["events"]')
  [[ "$(echo "$OUT" | json '["ok"]')" == True ]] || { echo "verify failed: $OUT" >&2; exit 1; }
  RATE=$(python3 -c "print(round($EVENTS / (($END - $START) / 1e9)))")
  RATES+=("$RATE")
  printf 'run %d: %d events in %.2f s = %d events/s (load %s)\n' "$run" "$EVENTS" \
    "$(python3 -c "print(($END - $START) / 1e9)")" "$RATE" "$LOAD"
done
echo "verify median: $(printf '%s\n' "${RATES[@]}" | median) events/s"

if [[ "$REBUILD" == 1 ]]; then
  echo "-- $REPLAY rebuild --data-dir $DATA --json"
  RATES=()
  for run in $(seq 1 "$RUNS"); do
    LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
    OUT=$("$REPLAY" rebuild --data-dir "$DATA" --json)
    RATE=$(echo "$OUT" | json '["events_per_second"]')
    RATES+=("$RATE")
    printf 'run %d: %s (load %s)\n' "$run" "$OUT" "$LOAD"
  done
  echo "rebuild median: $(printf '%s\n' "${RATES[@]}" | median) events/s"
fi
