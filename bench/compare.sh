#!/usr/bin/env bash
# Compare wall time and peak memory of Assay, picklescan and modelscan on one folder.
#
#   bench/compare.sh DIR            # e.g. bench/compare.sh /tmp/assay-big
#
# Environment:
#   FIXENV  Python venv holding picklescan and modelscan   (default /work/fixenv)
#   ASSAY   the assay binary                               (default <repo>/target/release/assay)
#   RUNS    runs per tool; the fastest wall time and the largest RSS are shown (default 1)
#
# Each tool's stdout/stderr go to $LOGDIR (printed at the end), so a tool's own
# report can be checked after the table. The exit code column is the tool's own:
# for assay 0 = clean, 1 = findings at/above --fail-on, 2 = error.
set -u

if [ $# -ne 1 ] || [ ! -e "$1" ]; then
    echo "usage: $0 DIR   (a file or folder to scan)" >&2
    exit 2
fi
TARGET=$1
REPO=$(cd "$(dirname "$0")/.." && pwd)
FIXENV=${FIXENV:-/work/fixenv}
ASSAY=${ASSAY:-$REPO/target/release/assay}
RUNS=${RUNS:-1}
TIME=/usr/bin/time
if [ ! -x "$TIME" ]; then
    echo "$TIME not found (Debian: apt-get install time)" >&2
    exit 2
fi
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/assay-compare.XXXXXX")

# secs "h:mm:ss.ss" | "m:ss.ss" -> seconds
secs() {
    awk -F: '{ if (NF == 3) print $1 * 3600 + $2 * 60 + $3; else print $1 * 60 + $2 }' <<<"$1"
}

printf '%-12s %6s %10s %12s  %s\n' tool exit "wall (s)" "max RSS MB" command
printf '%-12s %6s %10s %12s  %s\n' ------------ ------ ---------- ------------ -------

bench() {
    local name=$1; shift
    if ! command -v "$1" >/dev/null 2>&1; then
        printf '%-12s %6s %10s %12s  %s\n' "$name" - - - "$1 not found"
        return
    fi
    local best="" rss=0 rc=0 i
    for ((i = 1; i <= RUNS; i++)); do
        "$TIME" -v -o "$LOGDIR/$name.time" "$@" >"$LOGDIR/$name.out" 2>"$LOGDIR/$name.err"
        rc=$?
        local wall kb
        wall=$(secs "$(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$LOGDIR/$name.time")")
        kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$LOGDIR/$name.time")
        if [ -z "$best" ] || awk -v a="$wall" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$wall; fi
        if [ "${kb:-0}" -gt "$rss" ]; then rss=$kb; fi
    done
    # /usr/bin/time reports "Command exited with non-zero status N" and still exits N
    printf '%-12s %6s %10.2f %12.1f  %s\n' "$name" "$rc" "$best" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$*"
}

bench assay      "$ASSAY" scan "$TARGET"
bench picklescan "$FIXENV/bin/picklescan" -p "$TARGET"
bench modelscan  "$FIXENV/bin/modelscan" -p "$TARGET"

echo
echo "input: $TARGET ($(du -sh "$TARGET" 2>/dev/null | cut -f1)), runs per tool: $RUNS"
echo "logs:  $LOGDIR/{assay,picklescan,modelscan}.{out,err,time}"
