#!/usr/bin/env bash
# Benchmarks the registry's scale-out mode: `assay serve --database postgres://… --workers 0`
# with W `assay worker` processes. N pushes of examples/demo-model (to N repositories) are
# started at once; reports the time until all N are admitted (ingest-to-admission of the
# batch, jobs per second) and one push's ingest-to-admission with the queue idle.
#
#   bench/registry_scaleout_bench.sh POSTGRES_URL_OF_AN_EMPTY_DATABASE [assay] [N] [W...]
set -euo pipefail
PG=$1
ASSAY=${2:-target/release/assay}
N=${3:-40}
shift $(( $# < 3 ? $# : 3 ))
WORKERS=("${@:-1 2}")
[ ${#WORKERS[@]} -eq 1 ] && read -r -a WORKERS <<<"${WORKERS[0]}"
MODEL=examples/demo-model
# One master key for every run: the database remembers it.
KEY=$(mktemp "${TMPDIR:-/tmp}/scaleout-key.XXXX")
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$KEY"
trap 'rm -f "$KEY"' EXIT
for W in "${WORKERS[@]}"; do
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/scaleout.XXXX")
  cp "$KEY" "$WORK/master.key"
  PIDS=()
  "$ASSAY" serve --data "$WORK/data" --database "$PG" --master-key-file "$WORK/master.key" \
    --workers 0 --listen 127.0.0.1:0 2>"$WORK/serve.log" &
  PIDS+=($!)
  until grep -q "listening on" "$WORK/serve.log"; do sleep 0.1; done
  URL=$(grep -o 'http://[0-9.:]*' "$WORK/serve.log" | head -1)
  for i in $(seq "$W"); do
    "$ASSAY" worker --data "$WORK/data" --database "$PG" --master-key-file "$WORK/master.key" 2>"$WORK/worker$i.log" &
    PIDS+=($!)
  done
  ADMIN=$(cat "$WORK/data/admin-token")
  T=$("$ASSAY" tenant create "bench$W-$RANDOM" --server "$URL" --token "$ADMIN" 2>/dev/null)
  sleep 1
  t0=$(date +%s.%N)
  "$ASSAY" push "$MODEL" idle/one --server "$URL" --token "$T" >/dev/null 2>&1
  t1=$(date +%s.%N)
  echo "workers=$W: one push, queue idle: $(echo "$t1 - $t0" | bc) s"
  t0=$(date +%s.%N)
  P=()
  for i in $(seq "$N"); do
    "$ASSAY" push "$MODEL" "batch/m$i" --server "$URL" --token "$T" >/dev/null 2>&1 &
    P+=($!)
  done
  wait "${P[@]}"
  t1=$(date +%s.%N)
  echo "workers=$W: $N pushes at once, all admitted after $(echo "$t1 - $t0" | bc) s ($(echo "scale=1; $N / ($t1 - $t0)" | bc) admissions/s)"
  for i in $(seq "$W"); do echo "  worker $i scanned $(grep -c ' admitted in ' "$WORK/worker$i.log") jobs"; done
  kill "${PIDS[@]}"; wait "${PIDS[@]}" 2>/dev/null || true
  rm -rf "$WORK"
done
