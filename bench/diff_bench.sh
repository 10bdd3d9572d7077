#!/usr/bin/env bash
# Times `assay diff` and `assay convert` on a ~1 GB model and edited copies of it.
#
#   bench/diff_bench.sh [DIR] [GB]
#
# DIR (default /tmp/assay-diff-bench, outside the repository) gets the files of
# bench/make_diff_pair.py (base, merged LoRA, rank-1 edit, full fine-tune; base.pt for
# convert), made once with the fixture venv (PYTHON, default /work/fixenv/bin/python).
# Needs a release build (cargo build --release -p assay-cli). Each file is read once
# before timing, so figures are from the page cache (compute, not disk). Wall time and
# peak RSS come from /usr/bin/time. JOBS (default: all cores) sets `assay diff -j`.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-/tmp/assay-diff-bench}
GB=${2:-1.0}
PY=${PYTHON:-/work/fixenv/bin/python}
ASSAY=${ASSAY:-$REPO/target/release/assay}
case "$(realpath -m "$DIR")/" in "$REPO"/*) echo "refusing to write inside the repository" >&2; exit 2 ;; esac
[ -x "$ASSAY" ] || { echo "build first: cargo build --release -p assay-cli" >&2; exit 2; }
mkdir -p "$DIR"
if [ ! -f "$DIR/.complete-$GB" ]; then
  "$PY" "$REPO/bench/make_diff_pair.py" "$DIR" --gb "$GB"
  touch "$DIR/.complete-$GB"
fi
cat "$DIR"/*.safetensors "$DIR"/base.pt > /dev/null
J=()
[ -n "${JOBS:-}" ] && J=(-j "$JOBS")
run() {
  local label=$1; shift
  /usr/bin/time -f "$label: %e s wall, %U s user, peak RSS %M KB" "$@" > /tmp/assay-diff-bench.out 2>/tmp/assay-diff-bench.err || true
  tail -1 /tmp/assay-diff-bench.err
  grep -E '^verdict|^converted' /tmp/assay-diff-bench.out || true
}
size=$(stat -c %s "$DIR/base.safetensors")
echo "== base: $((size / 1000000)) MB each side"
for c in base rome lora finetune; do
  run "diff base $c" "$ASSAY" diff "${J[@]}" "$DIR/base.safetensors" "$DIR/$c.safetensors"
done
rm -f "$DIR/out.safetensors"
run "convert base.pt" "$ASSAY" convert "$DIR/base.pt" "$DIR/out.safetensors"
rm -f "$DIR/out.safetensors"
