#!/usr/bin/env bash
# Benchmarks `assay serve`: ingest-to-admission of a ~500 MB model (`assay push`, which
# uploads, waits for the scan and the policy decision); download throughput of a 1 GiB file
# over loopback (page cache warm) with curl (single stream and 8 concurrent) and
# huggingface_hub; hundreds of concurrent downloads of a 4 MiB file with wrk (requests/s,
# throughput, p99 latency, errors); then the same server restarted with TLS
# (--tls-cert/--tls-key, the test CA of crates/assay-registry/tests/data/tls).
#
#   bench/registry_bench.sh [path/to/assay] [python-with-huggingface_hub-safetensors-numpy]
#
# Env: CONNS="200 500" (wrk connections), WRK_SECS=15, SKIP_INGEST=1 (no 500 MB push),
# NO_TLS=1 (plain HTTP only, e.g. for a build without TLS).
# Needs curl and wrk (Debian: apt-get install -y curl wrk). Everything it makes is deleted
# at the end.
set -euo pipefail
ASSAY=$(realpath "${1:-target/release/assay}")
PY=${2:-/work/fixenv/bin/python}
CONNS=${CONNS:-200 500}
WRK_SECS=${WRK_SECS:-15}
TLSDATA=$(realpath "$(dirname "$0")/../crates/assay-registry/tests/data/tls")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/regbench.XXXX")
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# wrk with 500 connections and the server's sockets and blob reads need descriptors.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
SERVER=
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT

start() { # start [tls flags...]
  "$ASSAY" serve --data "$WORK/data" --listen 127.0.0.1:$PORT "$@" 2>>"$WORK/serve.log" &
  SERVER=$!
  for _ in $(seq 150); do
    [ -s "$WORK/data/admin-token" ] && curl -s -o /dev/null ${CURL_TLS:-} "$URL/healthz" && return
    sleep 0.2
  done
  echo "the server did not start:"; cat "$WORK/serve.log"; exit 1
}
stop() { kill -INT $SERVER; wait $SERVER 2>/dev/null || true; SERVER=; }

URL=http://127.0.0.1:$PORT
start
ADMIN=$(cat "$WORK/data/admin-token")
T=$("$ASSAY" tenant create bench --server $URL --token "$ADMIN" 2>/dev/null)

# Models made by the real safetensors library: ~500 MB (ingest), 1 GiB and 4 MiB (download).
$PY - "$WORK" <<'PY'
import json, os, sys, numpy as np
from safetensors.numpy import save_file
w = sys.argv[1]
rng = np.random.default_rng(0)
for name, n in (("m500", 500 * 2**20 // 4), ("m1g", 2**30 // 4), ("m4m", 4 * 2**20 // 4)):
    if name == "m500" and os.environ.get("SKIP_INGEST"):
        continue
    os.makedirs(f"{w}/{name}", exist_ok=True)
    save_file({"w": rng.standard_normal(n, dtype=np.float32).reshape(-1, 1024)}, f"{w}/{name}/model.safetensors")
    json.dump({"model_type": "bench"}, open(f"{w}/{name}/config.json", "w"))
PY

if [ -z "${SKIP_INGEST:-}" ]; then
  t0=$(date +%s.%N)
  "$ASSAY" push "$WORK/m500" bench/m500 --server $URL --token "$T" 2>/dev/null
  t1=$(date +%s.%N)
  echo "ingest-to-admission 500 MB: $(echo "$t1 - $t0" | bc) s"
  rm -rf "$WORK/m500"
fi
"$ASSAY" push "$WORK/m1g" bench/m1g --server $URL --token "$T" 2>/dev/null >/dev/null
"$ASSAY" push "$WORK/m4m" bench/m4m --server $URL --token "$T" 2>/dev/null >/dev/null
rm -rf "$WORK/m1g" "$WORK/m4m"

downloads() { # downloads LABEL  (uses $URL, $CURL_TLS, $HF_ENV)
  local label=$1 F=$URL/bench/m1g/resolve/main/model.safetensors
  curl -s ${CURL_TLS:-} -o /dev/null -H "Authorization: Bearer $T" "$F" # warm the page cache
  for i in 1 2 3; do
    curl -s ${CURL_TLS:-} -o /dev/null -H "Authorization: Bearer $T" -w "%{speed_download} %{time_total}\n" "$F"
  done | awk -v l="$label" '{printf "%s curl 1 GiB single stream: %.0f MB/s (%.2f s)\n", l, $1 / 1e6, $2}'
  local t0 t1 PIDS=()
  t0=$(date +%s.%N)
  for i in $(seq 8); do curl -s ${CURL_TLS:-} -o /dev/null -H "Authorization: Bearer $T" "$F" & PIDS+=($!); done
  wait "${PIDS[@]}"
  t1=$(date +%s.%N)
  echo "$label 8 concurrent curl x 1 GiB: $(echo "8 * 1073.741824 / ($t1 - $t0)" | bc) MB/s aggregate"
  env ${HF_ENV:-} $PY - "$URL" "$T" "$WORK/hf" "$label" <<'PY'
import shutil, sys, time
from huggingface_hub import hf_hub_download
url, tok, cache, label = sys.argv[1:]
t = time.time()
hf_hub_download("bench/m1g", "model.safetensors", endpoint=url, token=tok, cache_dir=cache)
d = time.time() - t
print(f"{label} huggingface_hub hf_hub_download 1 GiB: {d:.2f} s ({2**30/d/1e6:.0f} MB/s)")
shutil.rmtree(cache)
PY
  for c in $CONNS; do
    wrk -t2 -c$c -d${WRK_SECS}s --latency --timeout 30s -H "Authorization: Bearer $T" \
      "$URL/bench/m4m/resolve/main/model.safetensors" > "$WORK/wrk.txt"
    awk -v label="$label" -v c=$c '
      /Requests\/sec/ {rps=$2} /Transfer\/sec/ {tps=$2}
      /^ +99%/ {p99=$2} /^ +50%/ {p50=$2}
      /Socket errors/ {err=$0} /Non-2xx/ {non2xx=$NF}
      /requests in/ {n=$1}
      END {printf "%s wrk %d connections, 4 MiB file: %s req/s, %s/s, p50 %s, p99 %s, %d requests, non-2xx %d, %s\n",
           label, c, rps, tps, p50, p99, n, non2xx, (err == "" ? "no socket errors" : err)}' "$WORK/wrk.txt"
  done
}

downloads http

[ -n "${NO_TLS:-}" ] && exit 0
# The same registry over TLS.
stop
URL=https://localhost:$PORT
CURL_TLS="--cacert $TLSDATA/ca.pem"
HF_ENV="SSL_CERT_FILE=$TLSDATA/ca.pem"
start --tls-cert "$TLSDATA/server.pem" --tls-key "$TLSDATA/server-key.pem"
"$ASSAY" token create --scope read --server $URL --token "$T" --ca-cert "$TLSDATA/ca.pem" >/dev/null 2>&1 \
  && echo "https: assay token create with --ca-cert: ok"
echo "https: plain HTTP to the TLS port: $(curl -s -o /dev/null -w '%{http_code}' http://localhost:$PORT/healthz)"
downloads https
grep -o 'scan finished.*' "$WORK/serve.log" | head -3 || true
