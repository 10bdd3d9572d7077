#!/usr/bin/env bash
# End-to-end time of `assay scan` with the tensor and backdoor stages on large weight
# files made by bench/make_weights.py (random Gaussian weights: no high finding expected).
#
#   bench/tensor_bench.sh [SIZE_MB]      # default 1024
#
# Environment: FIXENV (venv with torch + safetensors, default /work/fixenv),
# ASSAY (binary, default <repo>/target/release/assay), JOBS (--jobs, default all cores).
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
FIXENV=${FIXENV:-/work/fixenv}
ASSAY=${ASSAY:-$REPO/target/release/assay}
SIZE=${1:-1024}
DIR=${TMPDIR:-/tmp}/assay-tensor-bench-$SIZE
[ -f "$DIR/random_fp32.pt" ] || "$FIXENV/bin/python" "$REPO/bench/make_weights.py" "$DIR" "$SIZE" >/dev/null
for f in random_fp32.safetensors random_bf16.safetensors random_fp32.pt; do
    bytes=$(stat -c %s "$DIR/$f")
    start=$(date +%s.%N)
    code=0
    "$ASSAY" scan --format json ${JOBS:+--jobs "$JOBS"} "$DIR/$f" >"$DIR/$f.json" || code=$?
    end=$(date +%s.%N)
    highs=$(grep -o '"high": *[0-9]*' "$DIR/$f.json" | head -1)
    awk -v f="$f" -v b="$bytes" -v s="$start" -v e="$end" -v c="$code" -v h="$highs" \
        'BEGIN { t = e - s; printf "%-26s %7.0f MB %7.2f s %7.2f GB/s  exit %s  %s\n", f, b / 1048576, t, b / t / 1e9, c, h }'
done
