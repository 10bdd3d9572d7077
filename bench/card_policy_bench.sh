#!/usr/bin/env bash
# Times `assay card`, `assay card --check`, `assay policy check` and the CycloneDX BOM.
#
#   /work/fixenv/bin/python bench/make_big.py /tmp/big     # once (torch, numpy)
#   bench/card_policy_bench.sh /tmp/big [path/to/assay]
#
# `card` writes into the model folder, so the big files are hard-linked (or copied)
# into a scratch folder.
set -euo pipefail
BIG=${1:?folder made by bench/make_big.py}
ASSAY=${2:-target/release/assay}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cardbench.XXXX")
trap 'rm -rf "$WORK"' EXIT
MODEL="$WORK/model"
mkdir -p "$MODEL"
for f in "$BIG"/*.pt "$BIG"/*.pkl; do ln "$f" "$MODEL/" 2>/dev/null || cp "$f" "$MODEL/"; done
cp "$ROOT/examples/demo-model/config.json" "$MODEL/"
printf -- '---\nlicense: mit\n---\n# Big model\n' > "$MODEL/README.md"
du -sh --apparent-size "$MODEL"
"$ASSAY" scan --format json "$MODEL" > "$WORK/report.json" || true
# Fixture corpus report: many files and findings, for policy evaluation alone.
"$ASSAY" scan --format json "$ROOT/fixtures" > "$WORK/fixtures.json" || true
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(len(r['files']), 'files,', len(r['findings']), 'findings in the fixture report')" "$WORK/fixtures.json"
hyperfine --warmup 1 --runs 5 -i \
  -n "card (scan + digest)" "$ASSAY card $MODEL" \
  -n "card --report (digest only)" "$ASSAY card $MODEL --report $WORK/report.json" \
  -n "card --check" "$ASSAY card --check $MODEL" \
  -n "policy check --report (fixture corpus)" "$ASSAY policy check $ROOT/fixtures --report $WORK/fixtures.json" \
  -n "scan --format cyclonedx" "$ASSAY scan --format cyclonedx $MODEL -o $WORK/bom.json"
