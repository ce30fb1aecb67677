#!/bin/sh
# One CUDA build for GPU and CPU hosts: the binary links no CUDA library
# (the runtime is static, cuBLAS and cuSOLVER are loaded at run time). With
# the CUDA libraries hidden (a private mount namespace: tmpfs over the
# toolkit, /dev/null over any other copy the dynamic linker knows of),
# `scan` runs on the CPU with backend auto and one plain line, and
# --backend cuda fails naming the missing library; with them visible and
# no GPU, auto still falls back with one plain line. Skipped (77) without a
# CUDA build or without mount namespaces.
set -u
top_builddir=${top_builddir:-.}
SPD=$top_builddir/spectrumd
FIX=$top_builddir/tests/spectrumd-fixture
H=$top_builddir/config.h
LIBS='libcudart libcublas libcublasLt libcusolver'
PATH=$PATH:/sbin:/usr/sbin	# ldconfig, mount

if ! grep -q '^#define HAVE_CUDA 1' "$H" 2>/dev/null; then
	echo "1..0 # SKIP this build has no CUDA backend"
	exit 77
fi
if [ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null; then
	NS="unshare -m"
elif unshare -rm true 2>/dev/null; then
	NS="unshare -rm"
else
	echo "1..0 # SKIP unshare -m is not permitted here"
	exit 77
fi
cublas=$(sed -n 's/^#define CUBLAS_SONAME "\(.*\)"$/\1/p' "$H")
cusolver=$(sed -n 's/^#define CUSOLVER_SONAME "\(.*\)"$/\1/p' "$H")
# The toolkit the build used (CUDA_CPPFLAGS = -IDIR/include).
cuda=$(sed -n 's/^CUDA_CPPFLAGS = -I\(.*\)\/include$/\1/p' \
    "$top_builddir/Makefile")
T=$(mktemp -d "${TMPDIR:-/tmp}/spd-nocuda.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
n=0 fails=0

ok() {	# ok COND-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"
	else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}

# one_line FILE WORD...: FILE is one line holding every WORD.
# one_line FILE WORD...: one diagnostic line ("spectrumd ...": scan's list
# of the files it wrote does not count) holding every WORD.
one_line() {
	f=$1; shift
	[ "$(grep -c '^spectrumd' "$f")" -eq 1 ] || return 1
	for w; do grep -qF -- "$w" "$f" || return 1; done
}

"$FIX" checkpoint "$T/ck" --layers 2 --hidden 64 --intermediate 128 \
    --vocab 128 -q || exit 1

ldd "$SPD" >"$T/ldd" 2>&1
! grep -Eq 'libcudart|libcublas|libcusolver' "$T/ldd"
ok $? "spectrumd links no CUDA library ($(grep -Ec 'cuda|cublas|cusolver' \
    "$T/ldd") CUDA lines in ldd)"
[ -n "$cublas" ] && [ -n "$cusolver" ] && [ -n "$cuda" ]
ok $? "config.h names the sonames ($cublas, $cusolver), toolkit $cuda"

# Every copy of the libraries the dynamic linker could find: the toolkit
# is hidden whole, any other file by /dev/null bound over it.
top=$(readlink -f "$cuda")
files=$( { ldconfig -p 2>/dev/null | awk '{ print $NF }'
	for d in "$cuda/lib64" $(echo "${LD_LIBRARY_PATH:-}" | tr ':' ' '); do
		ls -d "$d"/lib*.so* 2>/dev/null
	done; } | while read -r f; do
	for l in $LIBS; do
		case ${f##*/} in "$l".so*) readlink -f "$f" ;; esac
	done
done | sort -u)
cat >"$T/inner.sh" <<EOF
mount -t tmpfs -o size=1m none '$top' || exit 3
for f in $(echo "$files" | grep -v "^$top/" | tr '\n' ' '); do
	mount --bind /dev/null "\$f" || exit 3
done
for f in $(echo "$files" | tr '\n' ' '); do
	if [ -s "\$f" ]; then echo "still visible: \$f"; exit 3; fi
done
ldd '$SPD' >'$T/ldd.ns' 2>&1
'$SPD' scan --out '$T/out-ns' '$T/ck' >'$T/ns.out' 2>'$T/ns.err'
echo \$? >'$T/ns.st'
'$SPD' scan --backend cuda --out '$T/out-nscuda' '$T/ck' \
    >'$T/nscuda.out' 2>'$T/nscuda.err'
echo \$? >'$T/nscuda.st'
EOF
$NS sh "$T/inner.sh" >"$T/inner.log" 2>&1
ok $? "CUDA libraries hidden in a mount namespace ($NS; $(echo "$files" |
    wc -l) files; $(head -c 200 "$T/inner.log"))"
! grep -q 'not found' "$T/ldd.ns" 2>/dev/null && [ -s "$T/ldd.ns" ]
ok $? "hidden: ldd finds every library spectrumd needs"
[ "$(cat "$T/ns.st" 2>/dev/null)" = 0 ] && grep -q '(cpu)' "$T/ns.out" &&
    [ -s "$T/out-ns/snr_results_ck.json" ]
ok $? "hidden: scan, backend auto, runs on the CPU (exit $(cat \
    "$T/ns.st" 2>/dev/null))"
# No GPU: "no GPU: using the CPU"; a GPU: why cuda cannot run (cuBLAS).
one_line "$T/ns.err" "using the CPU" &&
    { grep -q ': no GPU: using the CPU$' "$T/ns.err" ||
    grep -qF "$cublas" "$T/ns.err"; }
ok $? "hidden: one plain line: $(head -c 200 "$T/ns.err")"
[ "$(cat "$T/nscuda.st" 2>/dev/null)" = 2 ] &&
    one_line "$T/nscuda.err" "cannot load $cublas" &&
    [ ! -e "$T/out-nscuda" ]
ok $? "hidden: --backend cuda exits $(cat "$T/nscuda.st" 2>/dev/null),\
 naming the library: $(head -c 300 "$T/nscuda.err")"

# Only cuSOLVER hidden: the message names that library, not cuBLAS.
m=""
for f in $(echo "$files" | grep '/libcusolver\.so'); do
	m="$m mount --bind /dev/null '$f' &&"
done
$NS sh -c "$m '$SPD' scan --backend cuda --out '$T/out-nosolver' '$T/ck'" \
    >"$T/nosolver.out" 2>"$T/nosolver.err"
st=$?
[ "$st" -eq 2 ] && one_line "$T/nosolver.err" "cannot load $cusolver" &&
    ! grep -qF "$cublas" "$T/nosolver.err"
ok $? "only $cusolver hidden: --backend cuda exits $st, naming it:\
 $(head -c 300 "$T/nosolver.err")"

"$SPD" scan --out "$T/out" "$T/ck" >"$T/vis.out" 2>"$T/vis.err"
st=$?
if grep -q '(cuda)' "$T/vis.out"; then
	echo "ok $((n + 1)) # SKIP a GPU is present: auto takes cuda"
	echo "ok $((n + 2)) # SKIP a GPU is present"
	echo "ok $((n + 3)) # SKIP a GPU is present"
	n=$((n + 3))
else
	[ "$st" -eq 0 ] && cmp -s "$T/out/snr_results_ck.json" \
	    "$T/out-ns/snr_results_ck.json"
	ok $? "visible: scan, backend auto, on the CPU, same results (exit $st)"
	one_line "$T/vis.err" "using the CPU" &&
	    ! grep -qi 'insufficient' "$T/vis.err"
	ok $? "visible, no GPU: one plain line: $(head -c 200 "$T/vis.err")"
	"$SPD" scan --backend cuda --out "$T/out-cuda" "$T/ck" \
	    >"$T/cuda.out" 2>"$T/cuda.err"
	st=$?
	[ "$st" -eq 2 ] && one_line "$T/cuda.err" "cuda: " &&
	    grep -Eq 'no GPU|NVIDIA driver' "$T/cuda.err" &&
	    ! grep -Eqi 'insufficient|cannot load|lacks' "$T/cuda.err"
	ok $? "visible, no GPU: --backend cuda exits $st, the libraries load:\
 $(head -c 200 "$T/cuda.err")"
fi
echo "1..$n"
[ "$fails" -eq 0 ]
