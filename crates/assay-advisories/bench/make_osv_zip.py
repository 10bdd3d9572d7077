#!/usr/bin/env python3
"""Writes a synthetic OSV all.zip shaped like the PyPI export, for timing the loader.

    python3 make_osv_zip.py OUT.zip [RECORDS] [VERSIONS_PER_RECORD_MAX]

Each record is an OSV JSON document like osv.dev publishes (GHSA/PYSEC/MAL ids, aliases,
a few hundred bytes of details, references, one PyPI package with an ECOSYSTEM range and
an explicit `versions` list). Version lists follow a long-tailed distribution, so that
the total is in the hundreds of thousands as in the real export. Deterministic.
"""
import json
import random
import sys
import zipfile

out = sys.argv[1]
records = int(sys.argv[2]) if len(sys.argv) > 2 else 40_000
vmax = int(sys.argv[3]) if len(sys.argv) > 3 else 400
rng = random.Random(20250212)
packages = [f"pkg-{i:05d}" for i in range(12_000)] + ["torch", "keras", "onnx", "transformers"]
total_versions = 0
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for n in range(records):
        kind = rng.choice(["GHSA", "PYSEC", "MAL"])
        rid = f"{kind}-{n:06d}"
        pkg = rng.choice(packages)
        major = rng.randint(0, 5)
        count = min(vmax, int(rng.paretovariate(1.2) * 3))
        versions = [f"{major}.{i // 10}.{i % 10}" for i in range(count)]
        total_versions += count
        fixed = f"{major}.{count // 10}.{count % 10 + 1}"
        rec = {
            "schema_version": "1.6.0",
            "id": rid,
            "modified": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T12:00:00Z",
            "published": "2024-01-01T00:00:00Z",
            "aliases": [f"CVE-2024-{n:05d}"] if kind != "MAL" else [],
            "summary": f"Synthetic advisory {n} for {pkg}",
            "details": "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 6,
            "affected": [{
                "package": {"ecosystem": "PyPI", "name": pkg, "purl": f"pkg:pypi/{pkg}"},
                "ranges": [{"type": "ECOSYSTEM",
                            "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                "versions": versions,
                "database_specific": {"source": "synthetic"},
            }],
            "references": [{"type": "WEB", "url": f"https://example.invalid/{rid}"}] * 3,
            "database_specific": {"cwe_ids": ["CWE-502"], "severity": "HIGH"},
        }
        z.writestr(f"{rid}.json", json.dumps(rec))
print(f"{out}: {records} records, {total_versions} versions")
