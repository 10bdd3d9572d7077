#!/usr/bin/env bash
# Benchmarks `assay serve`: ingest-to-admission of a ~500 MB model (`assay push`, which
# uploads, waits for the scan and the policy decision), and download throughput of a
# 1 GiB file over loopback with curl (single and 8 concurrent) and huggingface_hub.
#
#   bench/registry_bench.sh [path/to/assay] [python-with-huggingface_hub-safetensors-numpy]
set -euo pipefail
ASSAY=${1:-target/release/assay}
PY=${2:-/work/fixenv/bin/python}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/regbench.XXXX")
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
"$ASSAY" serve --data "$WORK/data" --listen 127.0.0.1:$PORT 2>"$WORK/serve.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
sleep 1
ADMIN=$(cat "$WORK/data/admin-token")
T=$("$ASSAY" tenant create bench --server $URL --token "$ADMIN" 2>/dev/null)

# Models made by the real safetensors library: ~500 MB (ingest) and 1 GiB (download).
$PY - "$WORK" <<'PY'
import json, os, sys, numpy as np
from safetensors.numpy import save_file
w = sys.argv[1]
rng = np.random.default_rng(0)
for name, n in (("m500", 500 * 2**20 // 4), ("m1g", 2**30 // 4)):
    os.makedirs(f"{w}/{name}", exist_ok=True)
    save_file({"w": rng.standard_normal(n, dtype=np.float32).reshape(-1, 1024)}, f"{w}/{name}/model.safetensors")
    json.dump({"model_type": "bench"}, open(f"{w}/{name}/config.json", "w"))
PY
du -sh --apparent-size "$WORK/m500" "$WORK/m1g"

t0=$(date +%s.%N)
"$ASSAY" push "$WORK/m500" bench/m500 --server $URL --token "$T" 2>/dev/null
t1=$(date +%s.%N)
echo "ingest-to-admission 500 MB: $(echo "$t1 - $t0" | bc) s"
"$ASSAY" push "$WORK/m1g" bench/m1g --server $URL --token "$T" 2>/dev/null

F=$URL/bench/m1g/resolve/main/model.safetensors
for i in 1 2 3; do
  curl -s -o /dev/null -H "Authorization: Bearer $T" -w "curl 1 GiB: %{speed_download} B/s (%{time_total} s)\n" "$F"
done
t0=$(date +%s.%N)
PIDS=()
for i in $(seq 8); do curl -s -o /dev/null -H "Authorization: Bearer $T" "$F" & PIDS+=($!); done
wait "${PIDS[@]}"
t1=$(date +%s.%N)
echo "8 concurrent curl x 1 GiB: $(echo "8 * 1024 / ($t1 - $t0)" | bc) MiB/s aggregate"
$PY - "$URL" "$T" "$WORK/hf" <<'PY'
import sys, time
from huggingface_hub import hf_hub_download
url, tok, cache = sys.argv[1:]
t = time.time()
hf_hub_download("bench/m1g", "model.safetensors", endpoint=url, token=tok, cache_dir=cache)
d = time.time() - t
print(f"huggingface_hub hf_hub_download 1 GiB: {d:.2f} s ({1024/d:.0f} MiB/s)")
PY
grep -o 'scan finished.*' "$WORK/serve.log" | head -3 || true
