"""Builds the test databases beside this script (run with any Python 3).

- osv-ml/: a subset of the PyPA advisory database snapshot (see osv-ml/SOURCE.md),
  copied unmodified.
- osv-ml.zip: the same records packed like an OSV all.zip export (one file per record
  at the archive root, deflated), converted to JSON as osv.dev publishes them.
- broken/: a folder with one good record and malformed ones.
- empty.zip: an export with no PyPI record.
"""
import json, pathlib, zipfile
import yaml  # PyYAML

here = pathlib.Path(__file__).parent
with zipfile.ZipFile(here / "osv-ml.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for f in sorted((here / "osv-ml").glob("*/*.yaml")):
        rec = yaml.safe_load(f.read_text())
        z.writestr(f.stem + ".json", json.dumps(rec, default=str))
with zipfile.ZipFile(here / "empty.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("GHSA-npm.json", json.dumps({"id": "GHSA-npm", "modified": "2025-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"}}]}))
b = here / "broken"
b.mkdir(exist_ok=True)
(b / "GOOD-1.json").write_text(json.dumps({"id": "GOOD-1", "aliases": ["CVE-2099-0001"],
    "modified": "2025-01-01T00:00:00Z",
    "affected": [{"package": {"ecosystem": "PyPI", "name": "Demo_Pkg"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}]}]}))
(b / "truncated.json").write_text('{"id": "BAD-1", "affected": [')
(b / "list.yaml").write_text("- not\n- a record\n")
(b / "noid.json").write_text('{"affected": []}')
(b / "notes.txt").write_text("ignored: not a record name")
