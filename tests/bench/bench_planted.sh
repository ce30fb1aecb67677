#!/bin/sh
# The large planted cases of issue 10, too slow for make check: tall
# embedding-like matrices up to 32768x1024 (s1/s_min 16, SNR ~25) in F32
# and BF16 (the fixture writer needs ~2 minutes for them: its Householder
# products are plain C). Prints scan's time per matrix and the reference
# comparison (1e-5 relative).
# usage: tests/bench/bench_planted.sh BUILDDIR [SPECTRUMD]
b=${1:-build}
spd=${2:-$b/spectrumd}
here=$(dirname "$0")
T=$(mktemp -d "${TMPDIR:-/tmp}/spd-planted.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
for dt in F32 BF16; do
	"$b/tests/spectrumd-fixture" planted "$T/p-$dt" --dtype "$dt" -q \
	    --spec embed:32768x1024 --spec embed:16384x512 \
	    --spec embed:8192x256 || exit 1
	/usr/bin/time -f "scan $dt: wall %e s, user %U s, sys %S s" \
	    "$spd" scan -q --out "$T/out-$dt" --timings "$T/t-$dt.tsv" \
	    "$T/p-$dt" >/dev/null
	sed 's/^/  /' "$T/t-$dt.tsv"
	/usr/bin/python3 "$here/../ref/spectrum_ref.py" "$T/p-$dt" \
	    --max-dim 40000 --tol 1e-5 \
	    --compare "$T/out-$dt/snr_results_p-$dt.json" | tail -3
done
