#!/usr/bin/env bash
# The README's end-to-end demonstration: red-team SmolLM2-135M-Instruct directly and
# through `assay firewall`, with the same seed and probes, and compare.
#   crates/assay-redteam/demo.sh ASSAY_BINARY GGUF [MAX_PROBES] [OUTDIR]
# ASSAY_BINARY must be built with `--features local-model`. Results: OUTDIR/{direct,firewall}.{json,html}.
set -euo pipefail
ASSAY=${1:?assay binary}; GGUF=${2:?gguf path}; N=${3:-54}; OUT=${4:-redteam-demo}
mkdir -p "$OUT"
"$ASSAY" redteam serve-model --gguf "$GGUF" --listen 127.0.0.1:18000 2>"$OUT/serve.log" & MODEL=$!
"$ASSAY" firewall serve --upstream http://127.0.0.1:18000 --listen 127.0.0.1:18080 2>"$OUT/firewall.log" >&2 & FW=$!
trap 'kill $MODEL $FW 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:18000/v1/models >/dev/null && break; sleep 0.2; done
COMMON=(--max-probes "$N" --max-tokens 48 -j 1 --seed 1 -q)
"$ASSAY" redteam --target http://127.0.0.1:18000 "${COMMON[@]}" --state "$OUT/direct.state" --format json -o "$OUT/direct.json"
"$ASSAY" redteam --target http://127.0.0.1:18080 "${COMMON[@]}" --state "$OUT/firewall.state" --format json -o "$OUT/firewall.json"
for run in direct firewall; do
  # Rerunning with the same state file only re-renders (every probe is already done).
  "$ASSAY" redteam --target "http://127.0.0.1:$([ $run = direct ] && echo 18000 || echo 18080)" "${COMMON[@]}" \
    --state "$OUT/$run.state" --format html -o "$OUT/$run.html"
done
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
d, f = (json.load(open(f"{out}/{n}.json")) for n in ("direct", "firewall"))
print(f"{'suite':<26} {'direct':>14} {'via firewall':>14}")
for a, b in zip(d["suites"], f["suites"]):
    print(f"{a['name']:<26} {a['succeeded']:>3}/{a['probes']:<3} {100*a['rate']:5.1f}% {b['succeeded']:>3}/{b['probes']:<3} {100*b['rate']:5.1f}%  ({b['blocked']} blocked)")
for n, r in (("direct", d), ("firewall", f)):
    s = r["summary"]; bn = s.get("benign", {})
    print(f"{n}: attack success {100*s['attack_success_rate']:.1f}% ({s['succeeded']}/{s['probes']}, {s['blocked']} blocked), "
          f"false refusals on benign {100*bn.get('false_refusal_rate',0):.1f}% ({bn.get('refused')}/{bn.get('probes')}, {bn.get('blocked')} blocked)")
PY
