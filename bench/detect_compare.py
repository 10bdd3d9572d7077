#!/usr/bin/env python3
"""Detection comparison on the fixture corpus: Assay, picklescan and modelscan.

    /work/fixenv/bin/python bench/detect_compare.py [--assay target/release/assay]

For every row of fixtures/expected*.tsv, runs each tool and counts a file as flagged
when the tool says so by its exit code (assay: 1; picklescan: 1 = dangerous globals
found; modelscan: 1 = issues found). Scan errors (exit 2 or a crash) count as "not
flagged" for malicious files — a scanner that gives up lets the file through — and are
listed separately. Prints a Markdown table.
"""
import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIX = REPO / "fixtures"


def run(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=120)
        return p.returncode
    except subprocess.TimeoutExpired:
        return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--assay", default=str(REPO / "target/release/assay"))
    ap.add_argument("--venv", default=os.environ.get("FIXENV", "/work/fixenv"))
    args = ap.parse_args()
    tools = {
        "assay": lambda p: [args.assay, "scan", "-q", p],
        "picklescan": lambda p: [f"{args.venv}/bin/picklescan", "-p", p],
        "modelscan": lambda p: [f"{args.venv}/bin/modelscan", "-p", p],
    }
    rows = []
    for tsv in sorted(FIX.glob("expected*.tsv")):
        with open(tsv) as f:
            rows += [r for r in csv.DictReader(f, delimiter="\t")]
    stats = {t: {"tp": 0, "fn": 0, "fp": 0, "tn": 0, "err": 0} for t in tools}
    misses = {t: [] for t in tools}
    for r in rows:
        path = str(FIX / r["path"])
        for t, cmd in tools.items():
            code = run(cmd(path))
            flagged = code == 1
            if code not in (0, 1):
                stats[t]["err"] += 1
            if r["expect"] == "flag":
                stats[t]["tp" if flagged else "fn"] += 1
                if not flagged:
                    misses[t].append(r["path"])
            else:
                stats[t]["fp" if flagged else "tn"] += 1
    mal = sum(1 for r in rows if r["expect"] == "flag")
    ben = len(rows) - mal
    print(f"| tool | malicious flagged (of {mal}) | benign flagged (of {ben}) | scan errors |")
    print("|---|---|---|---|")
    for t, s in stats.items():
        print(f"| {t} | {s['tp']} ({100 * s['tp'] / max(mal, 1):.0f}%) | {s['fp']} | {s['err']} |")
    for t, m in misses.items():
        print(f"\n{t} missed {len(m)}:", file=sys.stderr)
        for p in m:
            print("  ", p, file=sys.stderr)


if __name__ == "__main__":
    main()
