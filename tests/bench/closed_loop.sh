#!/bin/sh
# The closed-loop benchmark (issue 16): the same fine-tuning seven ways
# (full; Spectrum 25 % static; Spectrum 25 % dynamic without and with
# hysteresis, with the daemon's LR scales and with their mean as a flat
# LR factor; random 25 % per type), the built daemon steering the dynamic
# runs. Not run by CI. E.g.
#   tests/bench/closed_loop.sh build /tmp/cl --seeds 0,1,2
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
