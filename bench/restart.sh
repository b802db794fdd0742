#!/usr/bin/env bash
# Restart time against the length of the log: from `tessera serve` starting to the first 200 of
# `/readyz`, with logs of 1 and 10 million events (embedded SQLite, release builds).
#
#   bench/restart.sh [--events "1000000 10000000"] [--runs N] [--data-dir DIR] [--keep]
#   TESSERA_BIN=/path/to/tessera bench/restart.sh ...   (skips the server's build)
#
# Creates a tenant and a client through a server, stops it, and fills the log with
# `token.issued` events for that client (api/examples/token_log.rs: what the token endpoint
# records, appended in large batches). For each size, in increasing order on the same log:
#   1. appends up to that many events with the server stopped;
#   2. rebuilds the read models offline (`tessera rebuild-read-models`, which writes a scratch
#      file without a WAL: a live catch-up of millions of events would grow the read store's WAL
#      by gigabytes), then starts the server once, which folds the OAuth directory from its last
#      snapshot (timed, as "first start"), and stops it cleanly, which snapshots the directory;
#   3. restarts it --runs times (default 3), each timed from the process's start to the first
#      200 of /readyz, printing the directory's restored snapshot position and how many events
#      it folded (from /metrics);
#   4. restarts it once without the directory's snapshot (deleted), for comparison: a fold of
#      the whole log.
# Prints the sizes of the files and the load average beside each figure. 10 million events take
# about 13 GB of disk (7 GB of log, 6 GB of read models). The data directory (--data-dir, by
# default a temporary one) is deleted at the end unless --keep is given; a later run with the
# same --data-dir continues the same log.
set -euo pipefail

cd "$(dirname "$0")/.."
SIZES="1000000 10000000"
RUNS=3
KEEP=0
DATA=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) SIZES="$2"; shift ;;
    --runs) RUNS="$2"; shift ;;
    --data-dir) DATA="$2"; shift ;;
    --keep) KEEP=1 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

source bench/lib.sh
unset TESSERA_DATABASE_URL TESSERA_MASTER_KEY TESSERA_DATA_DIR
bench_tessera_bin
cargo build --release --locked -p tessera-api --example token_log >&2
TOKEN_LOG="${CARGO_TARGET_DIR:-target}/release/examples/token_log"

WORK=$(mktemp -d /tmp/tessera-restart.XXXXXX)
chmod 755 "$WORK"
DATA="${DATA:-$WORK/data}"
cleanup() {
  bench_cleanup
  [[ "$KEEP" == 1 ]] || rm -rf "$DATA"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
mkdir -p "$DATA"

load() { cut -d' ' -f1-3 /proc/loadavg; }
metric() { curl -sf "$BASE/metrics" | awk -v name="$1" '$1 == name {print $2}'; }
head_position() { curl -sf "$BASE/readyz" | json '["log_head"]'; }
sizes() { (cd "$DATA" && ls -s --block-size=M events.db readmodels.db directory.snapshot 2>/dev/null | tr '\n' ' '); }

# Starts the server; TOOK is the seconds from its start to the first 200 of /readyz.
timed_start() {
  local port started
  port=$(free_port)
  BASE="http://127.0.0.1:$port"
  started=$(date +%s.%N)
  "$TESSERA_BIN" serve --listen "127.0.0.1:$port" --data-dir "$DATA" >>"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  until curl -sf -o /dev/null "$BASE/readyz"; do
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$WORK/server.log" >&2; exit 1; }
    sleep 0.01
  done
  TOOK=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$started" "$(date +%s.%N)")
}

if [[ ! -f "$DATA/events.db" ]]; then
  bench_start_server "$DATA"
  bench_create_client
  KID=$(curl -sf "$BASE/t/bench/.well-known/jwks.json" | json '["keys"][0]["kid"]')
  echo "$TENANT_ID $CLIENT_ID $KID" >"$DATA/bench-client"
  bench_stop_server
fi
read -r TENANT_ID CLIENT_ID KID <"$DATA/bench-client"

echo "== embedded SQLite, $(nproc) cores, restarts to /readyz"
for SIZE in $SIZES; do
  bench_start_server "$DATA" 3600
  HEAD=$(head_position)
  bench_stop_server
  if (( HEAD < SIZE )); then
    echo "-- appending $(( SIZE - HEAD )) token.issued events (load $(load))"
    "$TOKEN_LOG" --data-dir "$DATA" --tenant-id "$TENANT_ID" --client-id "$CLIENT_ID" \
      --kid "$KID" --events $(( SIZE - HEAD )) 2>>"$WORK/token_log.err"
  fi
  # The old read models go first, so that the disk never holds two copies of them.
  rm -f "$DATA"/readmodels.db*
  STARTED=$SECONDS
  "$TESSERA_BIN" rebuild-read-models --data-dir "$DATA" >>"$WORK/server.log" 2>&1
  echo "-- read models rebuilt in $(( SECONDS - STARTED )) s (load $(load))"
  timed_start
  HEAD=$(head_position)
  echo "-- log of $HEAD events: first start ${TOOK} s (directory restored at $(metric tessera_directory_snapshot_position), folded $(metric tessera_directory_start_folded_events) events; load $(load))"
  bench_stop_server
  echo "   files: $(sizes)"
  for RUN in $(seq 1 "$RUNS"); do
    timed_start
    echo "   restart $RUN: ${TOOK} s to /readyz; directory restored at $(metric tessera_directory_snapshot_position), folded $(metric tessera_directory_start_folded_events) events (load $(load))"
    bench_stop_server
  done
  rm -f "$DATA/directory.snapshot"
  timed_start
  echo "   without the directory's snapshot: ${TOOK} s to /readyz; folded $(metric tessera_directory_start_folded_events) events (load $(load))"
  bench_stop_server
done
