#!/usr/bin/env bash
# Benchmarks `assay serve` blob stores: ingest-to-admission (`assay push`: upload, encrypt,
# store, read back for the scan, scan, admit) of a ~300 MB safetensors model, then one
# `curl` download of its weights file (decrypted as it streams), for the data folder,
# `--store file://`, Azurite (`az://`) and, with BENCH_MOTO=1, moto (`s3://`), all on this
# machine, and the server's peak resident memory.
#
#   bench/registry_store_bench.sh [path/to/assay] [python-with-safetensors-numpy]
# Needs ASSAY_TEST_AZURITE and ASSAY_TEST_S3 as .ci/run exports them (servers running).
set -euo pipefail
ASSAY=${1:-target/release/assay}
PY=${2:-target/ci-venv-st/bin/python}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/storebench.XXXX")
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
SERVER=
$PY - "$WORK" <<'PY'
import json, os, sys, numpy as np
from safetensors.numpy import save_file
w = sys.argv[1]
os.makedirs(f"{w}/m", exist_ok=True)
rng = np.random.default_rng(0)
save_file({"w": rng.standard_normal(300 * 2**20 // 4, dtype=np.float32).reshape(-1, 1024)}, f"{w}/m/model.safetensors")
json.dump({"model_type": "bench"}, open(f"{w}/m/config.json", "w"))
PY
du -sh --apparent-size "$WORK/m"
AZKEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
RUN=$(date +%s)
bench() { # name, extra serve args...
  local name=$1; shift
  local port
  port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  local url=http://127.0.0.1:$port
  rm -rf "$WORK/data"
  "$ASSAY" serve --data "$WORK/data" --listen 127.0.0.1:$port "$@" 2>"$WORK/serve-$name.log" &
  SERVER=$!
  for _ in $(seq 50); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done
  local admin t t0 t1
  admin=$(cat "$WORK/data/admin-token")
  t=$("$ASSAY" tenant create bench --server "$url" --token "$admin" 2>/dev/null)
  t0=$(date +%s.%N)
  "$ASSAY" push "$WORK/m" bench/m --server "$url" --token "$t" >/dev/null 2>&1
  t1=$(date +%s.%N)
  printf '%-8s ingest-to-admission 300 MiB: %5.1f s; ' "$name" "$(echo "$t1 - $t0" | bc)"
  curl -s -o /dev/null -H "Authorization: Bearer $t" \
    -w 'download: %{time_total} s (%{speed_download} B/s)\n' "$url/bench/m/resolve/main/model.safetensors"
  echo "         server peak RSS: $(grep VmHWM /proc/$SERVER/status | awk '{print int($2/1024)}') MiB"
  kill $SERVER; wait $SERVER 2>/dev/null || true
}
bench folder
bench file --store "file://$WORK/objects"
env AZURE_STORAGE_ACCOUNT_NAME=devstoreaccount1 AZURE_STORAGE_ACCOUNT_KEY=$AZKEY \
  AZURE_STORAGE_ENDPOINT="$ASSAY_TEST_AZURITE" AZURE_ALLOW_HTTP=true \
  bash -c "$(declare -f bench); ASSAY=$ASSAY PY=$PY WORK=$WORK; bench azurite --store az://assay-test/bench-$RUN"
# moto copies the whole object for each ranged GET (~75 ms per 64 KiB range of a 100 MB
# object), so with one GET per 64 KiB chunk a 300 MiB run takes far too long: opt in.
[ "${BENCH_MOTO:-0}" = 1 ] || exit 0
env AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
  AWS_ENDPOINT="$ASSAY_TEST_S3" AWS_ALLOW_HTTP=true \
  bash -c "$(declare -f bench); ASSAY=$ASSAY PY=$PY WORK=$WORK; bench moto --store s3://assay-test/bench-$RUN"
