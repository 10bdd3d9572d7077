#!/usr/bin/env bash
# Times loading a PyPI-sized OSV all.zip (synthetic, see make_osv_zip.py):
#
#   crates/assay-advisories/bench/osv_load.sh [RECORDS] [RUNS]
#
# Builds the load_osv example in release mode, writes the zip to $TMPDIR, prints the
# records and versions loaded and the fastest and median load times.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
RECORDS=${1:-40000}
RUNS=${2:-5}
ZIP=${TMPDIR:-/tmp}/assay-osv-bench-$RECORDS.zip
[ -f "$ZIP" ] || python3 "$HERE/make_osv_zip.py" "$ZIP" "$RECORDS"
ls -l "$ZIP"
cd "$REPO"
cargo build --release -q -p assay-advisories --example load_osv
"${CARGO_TARGET_DIR:-$REPO/target}/release/examples/load_osv" "$ZIP" "$RUNS"
