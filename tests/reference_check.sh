#!/bin/sh
# SNRs from `spectrumd scan` agree with an independent float64 computation
# (tests/ref/spectrum_ref.py: its own safetensors reader, numpy SVD) to 1e-5
# relative, for every dtype, single-file and sharded, and the selections
# agree too. Then planted spectra (spectrumd-fixture planted: tall
# embedding-like with high SNR, power-law, low-rank, partial null space,
# values clustered at tau) in every dtype, on every backend available, each
# SNR within 1e-5 of the reference, including the 8002x256 embedding-like
# matrix in F32 and BF16 that the old float32 redo rule got wrong
# (docs/snr-error-bound.md). SPECTRUMD=binary runs another spectrumd.
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
SPD=${SPECTRUMD:-$top_builddir/spectrumd}
FIX=$top_builddir/tests/spectrumd-fixture
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
		"$SPD" scan -q --out "$T/out" \
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
# One backend's run over planted DIR: scan, then the reference comparison.
planted_check() {	# planted_check BACKEND DIR WHAT
	rm -rf "$T/pout"
	"$SPD" scan -q --backend "$1" --out "$T/pout" "$2" >/dev/null \
	    2>"$T/err"
	ok $? "scan --backend $1 $3"
	$PY "$REF" "$2" --max-dim 40000 --tol 1e-5 \
	    --compare "$T/pout/snr_results_$(basename "$2").json" >"$T/cmp" 2>&1
	rc=$?
	ok $rc "$1 $3: $(tail -1 "$T/cmp")"
	[ $rc -eq 0 ] || sed 's/^/# /' "$T/cmp" | tail -5
}

backends=cpu
"$FIX" planted "$T/probe" --spec lowrank:40x30 -q &&
    "$SPD" scan -q --backend cuda --out "$T/probe-out" "$T/probe" \
    >/dev/null 2>&1 && backends="cpu cuda"
i=0
for dt in F32 F16 BF16 F64 F8_E4M3 F8_E5M2; do
	alpha=$((2 + i % 3)); i=$((i + 1))
	d=$T/planted-$(echo "$dt" | tr '_' '-')
	"$FIX" planted "$d" --dtype "$dt" --seed "$i" --alpha "$alpha" -q \
	    --spec embed:2000x128 --spec embed:160x1200 \
	    --spec heavy:600x200 --spec heavy:96x96 \
	    --spec lowrank:300x500 --spec null:400x160 \
	    --spec null:120x120 --spec cluster:500x250 \
	    --spec cluster:64x300 || { ok 1 "planted $dt"; continue; }
	for b in $backends; do
		planted_check "$b" "$d" "planted $dt (alpha $alpha)"
	done
done
# The embedding-like 8002x256 case (s1/s_min 16, SNR 25.6): seed 20 is one
# where the old svd_need_f64() estimate kept float32 values 1.8e-5 off.
for dt in F32 BF16; do
	d=$T/embed-$dt
	"$FIX" planted "$d" --dtype "$dt" --seed 20 -q \
	    --spec embed:8002x256 || { ok 1 "planted embed $dt"; continue; }
	for b in $backends; do
		planted_check "$b" "$d" "embed 8002x256 $dt"
	done
done
echo "1..$n"
[ "$fails" -eq 0 ]
