#!/usr/bin/env bash
# Compares `assay sign`/`assay verify` with the reference `model_signing sign key` /
# `verify key` (PyPI model-signing 1.x) on a multi-GB model folder.
#
#   bench/sign_bench.sh [DIR] [GiB]
#
# DIR (default /tmp/assay-sign-bench, must be outside the repository) gets a folder of
# random files totalling about GiB (default 6): one 2 GiB file, 1 GiB files, and a
# handful of small ones, like a sharded checkpoint. Nothing is committed. Needs
# MODEL_SIGNING (default: model_signing on PATH; e.g. target/ci-venv/bin/model_signing)
# and a release build (cargo build --release -p assay-cli). Each command runs after a
# warm-up read, so both tools hash from the page cache: the figures compare hashing and
# walking, not the disk. Wall time and peak RSS come from /usr/bin/time when present.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-/tmp/assay-sign-bench}
GIB=${2:-6}
MS=${MODEL_SIGNING:-model_signing}
ASSAY=${ASSAY:-$REPO/target/release/assay}
case "$(realpath -m "$DIR")/" in "$REPO"/*) echo "refusing to write inside the repository" >&2; exit 2 ;; esac
command -v "$MS" >/dev/null || { echo "model_signing not found (set MODEL_SIGNING)" >&2; exit 2; }
[ -x "$ASSAY" ] || { echo "build first: cargo build --release -p assay-cli" >&2; exit 2; }

M=$DIR/model
if [ ! -f "$M/.complete-$GIB" ]; then
  rm -rf "$M"; mkdir -p "$M"
  echo "== making a ${GIB} GiB folder in $M"
  dd if=/dev/urandom of="$M/model-00001-of-big.safetensors" bs=1M count=2048 status=none
  left=$((GIB - 2)); i=2
  while [ "$left" -gt 0 ]; do
    dd if=/dev/urandom of="$M/model-0000$i.safetensors" bs=1M count=1024 status=none
    left=$((left - 1)); i=$((i + 1))
  done
  for f in config.json tokenizer.json generation_config.json; do head -c 20000 /dev/urandom | base64 > "$M/$f"; done
  touch "$M/.complete-$GIB"
fi
# Many small files (a tokenizer-heavy or sharded-into-many-pieces folder): 20,480 x 16 KiB.
S=$DIR/small
if [ ! -f "$S/.complete" ]; then
  rm -rf "$S"; mkdir -p "$S"
  head -c $((320 << 20)) /dev/urandom | (cd "$S" && split -b 16k -a 5 - part-)
  touch "$S/.complete"
fi
KEY=$DIR/key.pem; PUB=$DIR/key.pub
[ -f "$KEY" ] || { openssl ecparam -name prime256v1 -genkey -noout -out "$KEY"; openssl ec -in "$KEY" -pubout -out "$PUB" 2>/dev/null; }
cat "$M"/* "$S"/* > /dev/null   # warm the page cache

TIME=()
if [ -x /usr/bin/time ]; then TIME=(/usr/bin/time -f "%e s wall, %U+%S s CPU (user+sys), %M KiB peak RSS"); fi
run() {
  local label=$1; shift
  printf '%-40s ' "$label"
  local start end
  start=$(date +%s.%N)
  if [ ${#TIME[@]} -gt 0 ]; then
    "${TIME[@]}" "$@" 2>&1 >/dev/null | tail -1
  else
    "$@" >/dev/null 2>&1; end=$(date +%s.%N); echo "$(echo "$end - $start" | bc) s wall"
  fi
}
size=$(du -sb --exclude=.complete-* "$M" | cut -f1)
echo "== $(ls "$M" | wc -l) files, $((size / 1048576)) MiB, $(nproc) cores"
run "assay sign" "$ASSAY" sign "$M" --key "$KEY" --signature "$DIR/assay.sig" --ignore-paths "$M/.complete-$GIB"
run "model_signing sign key" "$MS" sign key "$M" --private_key "$KEY" --signature "$DIR/ms.sig" --ignore-paths "$M/.complete-$GIB"
run "assay verify (assay signature)" "$ASSAY" verify "$M" --key "$PUB" --signature "$DIR/assay.sig"
run "model_signing verify key (ms signature)" "$MS" verify key "$M" --public_key "$PUB" --signature "$DIR/ms.sig"
run "assay verify (ms signature)" "$ASSAY" verify "$M" --key "$PUB" --signature "$DIR/ms.sig"
run "model_signing verify key (assay sig.)" "$MS" verify key "$M" --public_key "$PUB" --signature "$DIR/assay.sig"
run "assay verify -j 1" "$ASSAY" verify "$M" --key "$PUB" --signature "$DIR/assay.sig" -j 1
echo "== $(ls "$S" | wc -l) small files, 320 MiB"
run "assay sign" "$ASSAY" sign "$S" --key "$KEY" --signature "$DIR/assay-small.sig" --ignore-paths "$S/.complete"
run "model_signing sign key" "$MS" sign key "$S" --private_key "$KEY" --signature "$DIR/ms-small.sig" --ignore-paths "$S/.complete"
run "assay verify" "$ASSAY" verify "$S" --key "$PUB" --signature "$DIR/ms-small.sig"
run "model_signing verify key" "$MS" verify key "$S" --public_key "$PUB" --signature "$DIR/assay-small.sig"
echo "== one 2 GiB file: whole-file hashing is sequential; --shard-size splits it across cores"
B=$DIR/one; mkdir -p "$B"; ln -f "$M/model-00001-of-big.safetensors" "$B/model.safetensors" 2>/dev/null || cp "$M/model-00001-of-big.safetensors" "$B/model.safetensors"
run "assay sign (files)" "$ASSAY" sign "$B" --key "$KEY" --signature "$DIR/one.sig"
run "assay sign --shard-size 268435456" "$ASSAY" sign "$B" --key "$KEY" --signature "$DIR/one-sh.sig" --shard-size 268435456
run "model_signing sign key (files)" "$MS" sign key "$B" --private_key "$KEY" --signature "$DIR/one-ms.sig"
