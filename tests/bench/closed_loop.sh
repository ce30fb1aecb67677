#!/bin/sh
# The closed-loop benchmark (issue 16): the same fine-tuning four ways
# (full, Spectrum 25 % static, Spectrum 25 % dynamic, random 25 % per
# type) with the built daemon steering the dynamic run. Not run by CI.
#   tests/bench/closed_loop.sh [BUILDDIR] [WORKDIR] [closed_loop.py options]
# Writes WORKDIR/results.json, WORKDIR/table.md and WORKDIR/closed_loop.png.
# Needs /usr/bin/python3 with torch; python3-matplotlib for the plot.
set -e
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
work=${2:-$(mktemp -d "${TMPDIR:-/tmp}/spd-closed-loop.XXXXXX")}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] && shift
exec /usr/bin/python3 "$src/tests/bench/closed_loop.py" "$build" "$src" \
    "$work" --md "$work/table.md" --png "$work/closed_loop.png" "$@"
