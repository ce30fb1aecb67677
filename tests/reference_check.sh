#!/bin/sh
# SNRs from `spectrumd scan` agree with an independent float64 computation
# (tests/ref/spectrum_ref.py: its own safetensors reader, numpy SVD) to 1e-5
# relative, for every dtype, single-file and sharded, and the selections
# agree too.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
PY=/usr/bin/python3
if ! $PY -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP /usr/bin/python3 has no numpy (apt-get install python3-numpy)"
	exit 77
fi
REF=$top_srcdir/tests/ref/spectrum_ref.py
T=$(mktemp -d "${TMPDIR:-/tmp}/spd-ref.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
n=0 fails=0

ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"
	else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}

for dt in F32 F16 BF16 F64 F8_E4M3 F8_E5M2; do
	for shards in 1 3; do
		name=$(echo "ckpt-$dt-$shards" | tr '_' '-')
		"$top_builddir/tests/spectrumd-fixture" checkpoint "$T/$name" \
		    --layers 3 --hidden 48 --intermediate 80 --kv-dim 24 \
		    --vocab 96 --dtype "$dt" --shards "$shards" \
		    --seed 7 >/dev/null || { ok 1 "fixture $name"; continue; }
		"$top_builddir/spectrumd" scan -q --out "$T/out" \
		    --top-percent 34 "$T/$name" >/dev/null 2>"$T/err"
		ok $? "scan $dt, $shards shard(s)"
		$PY "$REF" "$T/$name" \
		    --compare "$T/out/snr_results_$name.json" --tol 1e-5 \
		    --select 34 \
		    --yaml "$T/out/snr_results_${name}_unfrozenparameters_34percent.yaml" \
		    >"$T/cmp" 2>&1
		ok $? "$dt, $shards shard(s): $(tail -1 "$T/cmp")"
	done
done
echo "1..$n"
[ "$fails" -eq 0 ]
