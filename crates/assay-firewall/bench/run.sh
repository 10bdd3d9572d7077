#!/usr/bin/env bash
# Side-by-side load test of the firewall on this machine, loopback only:
#   wrk -> mock upstream              (baseline)
#   wrk -> assay firewall -> mock     (with every default scanner)
# Each run is bounded (DURATION seconds); everything started here is stopped at the end.
# Usage: crates/assay-firewall/bench/run.sh [path/to/assay]   (needs `wrk`)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
assay="${1:-target/release/assay}"
DURATION="${DURATION:-10}"
MOCK=127.0.0.1:${MOCK_PORT:-19100}
FW=127.0.0.1:${FW_PORT:-19101}
export WRK_BODY="$here/chat_2kb.json"
"$assay" firewall mock-upstream --listen "$MOCK" --workers 1 >/dev/null &
mock_pid=$!
"$assay" firewall serve --upstream "http://$MOCK" --listen "$FW" --workers "${FW_WORKERS:-2}" >/dev/null &
fw_pid=$!
trap 'kill $mock_pid $fw_pid 2>/dev/null; wait $mock_pid $fw_pid 2>/dev/null || true' EXIT
sleep 1
run() { # name url connections threads
  echo "== $1: $4 thread(s), $3 connection(s), ${DURATION}s"
  wrk -t"$4" -c"$3" -d"${DURATION}s" --latency -s "$here/post.lua" "$2/v1/chat/completions" \
    | grep -E "Latency|50%|90%|99%|Requests/sec|Non-2xx|Socket errors"
}
run "direct (latency)" "http://$MOCK" 1 1
run "firewall (latency)" "http://$FW" 1 1
run "direct (throughput)" "http://$MOCK" 32 2
run "firewall (throughput)" "http://$FW" 32 2
echo "== firewall's own time per request (from /metrics)"
curl -s "http://$FW/metrics" | grep -E "^assay_firewall_overhead_seconds_(bucket|count|sum)" \
  | grep -E 'le="(0.0001|0.00025|0.0005|0.001|0.0025|0.005)"|_count|_sum'
