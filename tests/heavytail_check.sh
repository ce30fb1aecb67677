#!/bin/sh
# heavytail_compute() (through tests/heavytail_tool) agrees with an
# independent float64 brute-force fit (tests/ref/heavytail_ref.py) on
# planted power laws, random-matrix spectra, edge cases and the matrices
# of a fixture checkpoint: the same status, xmin and tail size, and alpha,
# D, sigma, alpha_weighted and log_spectral_norm within 1e-9 relative.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
PY=/usr/bin/python3
if ! $PY -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP /usr/bin/python3 has no numpy (apt-get install python3-numpy)"
	exit 77
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/spd-ht.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
# A fixture checkpoint too: its matrices' spectra (noise + low rank).
"$top_builddir/tests/spectrumd-fixture" checkpoint "$T/ckpt" --layers 2 \
    --hidden 96 --intermediate 160 --kv-dim 48 --vocab 200 --dtype BF16 \
    --seed 11 -q || exit 1
$PY "$top_srcdir/tests/ref/heavytail_ref.py" \
    --check "$top_builddir/tests/heavytail_tool" --fixture "$T/ckpt"
