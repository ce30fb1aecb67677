#!/bin/bash
# tests/gpu/check.sh: the GPU check of the cuda backend, run by hand from the
# repository root on a machine with an NVIDIA GPU and CUDA in /usr/local/cuda:
#
#	bash tests/gpu/check.sh
#
# 1. builds with --with-cuda=yes (autoreconf, configure, make -j16) and runs
#    tests/test_svd_cuda; when the full build cannot be done here (missing
#    packages), builds just the svd sources with gcc and says what is missing;
# 2. times svd_values() on the cuda backend (BF16, median of REPS after a
#    warm-up, matrix uploaded from host memory each call) with
#    tests/bench/svd_methods, and torch.linalg.svdvals (fp32) on the same GPU;
# 3. prints one table.
# Environment: BUILD (build dir, default build-gpu), SHAPES, REPS, PYTHON,
# CUDA_HOME, ROUTES (extra SPECTRUMD_CUDA_EIG routes to time), WORKERS,
# LAYERS (of the 7B-shaped checkpoint, default 32), SKIP_TORCH, KIT.
# BACKEND=cpu runs every step with the cpu backend and torch on the CPU in
# place of cuda: a dry run of this script on a machine without a GPU
# (with small SHAPES and LAYERS=1 it takes about a minute). Without a GPU
# and without BACKEND=cpu it stops after the build and the (skipped) test.
# Before any test, every binary must resolve its libraries with ldd, and
# the cuBLAS/cuSOLVER sonames they load at run time must be found (and
# resolve theirs) in LD_LIBRARY_PATH, $CUDA_HOME/lib64, ldconfig's cache or
# the NVIDIA wheels in $PYTHON's site-packages (nvidia/*/lib); those
# directories and the kit's lib/ are given to our binaries only, never to
# torch or the Python steps.
# Exit status: 0 when every step ran and passed; 1 when one failed or did
# not run (a skipped test_svd_cuda on a host where nvidia-smi sees a GPU
# fails; without a GPU, in cuda mode, the timings and the end-to-end step
# do not run); the summary at the end lists each step.
set -eu -o pipefail

ROOT=$PWD
B=${BUILD:-build-gpu}
SHAPES=${SHAPES:-"4096x4096 4096x11008 11008x4096 32000x4096"}
REPS=${REPS:-5}
CUDA=${CUDA_HOME:-/usr/local/cuda}
PY=${PYTHON:-python3}
BE=${BACKEND:-cuda}
LAYERS=${LAYERS:-32}
missing=()
status=0
TEST=""
BENCH=""
KITLIB=""
SPD_LD=${LD_LIBRARY_PATH:-}
results=()

say() { printf '\n=== %s\n' "$*"; }

# result STEP PASS|FAIL|SKIP|"NOT RUN" [WHY]: records a step's outcome;
# FAIL and NOT RUN fail the run.
result() {
	local s=$1 r=$2
	shift 2
	results+=("$(printf '%-26s %-8s %s' "$s" "$r" "$*")")
	case $r in PASS | SKIP) ;; *) status=1 ;; esac
}

# Prints every step's outcome and exits with the status.
finish() {
	say "steps"
	printf '%s\n' "${results[@]}"
	[ "$status" -eq 0 ] && echo "all steps ran and passed" ||
		echo "FAILED: a step failed or did not run"
	exit "$status"
}

# Runs one of our binaries with the kit's and CUDA's libraries on its path.
spd_run() {
	LD_LIBRARY_PATH=$SPD_LD "$@"
}

if [ ! -f configure.ac ] || [ ! -f src/svd_cuda.c ]; then
	echo "run this from the spectrumd repository root" >&2
	exit 2
fi
mkdir -p "$B"
B=$(cd "$B" && pwd)

say "environment"
nvidia-smi --query-gpu=name,driver_version,memory.total \
	--format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"
GPU=0
if nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
	GPU=1
fi
for t in gcc make pkg-config autoreconf; do
	command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
for pc in openblas lapacke libcjson libmicrohttpd sqlite3; do
	pkg-config --exists "$pc" 2>/dev/null || missing+=("$pc.pc")
done
[ -f "$CUDA/include/cusolverDn.h" ] || missing+=("$CUDA/include/cusolverDn.h")
"$PY" -c 'import torch' 2>/dev/null || missing+=("torch for $PY")
echo "missing: ${missing[*]:-nothing}"

# The full autotools build; sets TEST (and BENCH when Makefile.am has it).
build_full() {
	local w=yes
	[ "$CUDA" = /usr/local/cuda ] || w=$CUDA
	command -v autoreconf >/dev/null 2>&1 || return 1
	echo "autoreconf -fi, configure --with-cuda=$w, make -j16 (logs in $B)"
	autoreconf -fi >"$B/autoreconf.log" 2>&1 || return 1
	(cd "$B" && "$ROOT/configure" -q --with-cuda="$w") \
		>"$B/configure.log" 2>&1 || return 1
	if ! make -C "$B" -j16 >"$B/make.log" 2>&1; then
		echo "make -j16 failed; going on with the svd targets:"
		grep -E 'error|Error' "$B/make.log" | head -5 || true
	fi
	make -C "$B" tests/test_svd_cuda >>"$B/make.log" 2>&1 || return 1
	TEST=$B/tests/test_svd_cuda
	if make -C "$B" tests/bench/svd_methods >>"$B/make.log" 2>&1; then
		BENCH=$B/tests/bench/svd_methods
	fi
	return 0
}

# gcc on the svd sources alone; a stub cpu backend without LAPACKE.
build_direct() {
	local d=$B/direct cf lf srcs
	mkdir -p "$d"
	echo "direct gcc build of the svd sources in $d"
	cf=$(pkg-config --cflags openblas lapacke 2>/dev/null ||
		echo "-I/usr/include/x86_64-linux-gnu/openblas-pthread")
	lf=$(pkg-config --libs openblas lapacke 2>/dev/null ||
		echo "-lopenblas -llapacke")
	echo '#define HAVE_CUDA 1' >"$d/config.h"
	# The sonames src/cuda_dl.c loads, as configure finds them.
	for l in cublas cusolver; do
		so=$(objdump -p "$CUDA/lib64/lib$l.so" 2>/dev/null |
			awk '$1 == "SONAME" { print $2; exit }') || true
		[ -n "$so" ] || so=$(readlink "$CUDA/lib64/lib$l.so" | sed 's|.*/||') || true
		echo "#define $(echo "$l" | tr a-z A-Z)_SONAME \"$so\"" \
			>>"$d/config.h"
	done
	srcs="src/common.c src/tensor.c src/snr.c src/svd.c src/svd_kit.c \
src/svd_cuda.c src/cuda_dl.c"
	if ! "$CUDA/bin/nvcc" -O3 -std=c++17 -Xcompiler -fPIC -Isrc -Iinclude \
	    -c -o "$d/svd_cuda_kern.o" src/svd_cuda_kern.cu \
	    >"$d/build.log" 2>&1; then
		tail -20 "$d/build.log"
		return 1
	fi
	srcs="$srcs $d/svd_cuda_kern.o"
	# shellcheck disable=SC2086
	if echo '#include <lapacke.h>
#include <cblas.h>' | gcc $cf -E - >/dev/null 2>&1; then
		printf '#define HAVE_LAPACKE_H 1\n#define HAVE_CBLAS_H 1\n' \
			>>"$d/config.h"
		srcs="$srcs src/svd_cpu.c"
	else
		echo "no lapacke.h/cblas.h: cpu backend stubbed, the test" \
			"cannot compare against it"
		cat >"$d/svd_cpu_stub.c" <<'EOF'
#include "config.h"
#include "spectrumd/svd.h"
#include "svd_backend.h"
static enum spd_err
stub_probe(bool named, struct spd_errbuf *eb)
{
	(void)named;
	return spd_fail(eb, SPD_ENODEV, "cpu: not built (no LAPACKE)");
}
static enum spd_err
stub_new(const struct svd_opts *o, void **c, struct spd_errbuf *eb)
{
	(void)o; (void)c;
	return stub_probe(true, eb);
}
static void stub_free(void *c) { (void)c; }
static enum spd_err
stub_values(void *c, const struct svd_matrix *m, bool dbl, float *sv,
    struct svd_route *rt, struct spd_errbuf *eb)
{
	(void)c; (void)m; (void)dbl; (void)sv; (void)rt;
	return stub_probe(true, eb);
}
const struct svd_backend svd_cpu_backend = { .name = "cpu",
    .method = SVD_METHOD("cpu"), .probe = stub_probe, .ctx_new = stub_new,
    .ctx_free = stub_free, .values = stub_values };
EOF
		srcs="$srcs $d/svd_cpu_stub.c"
		lf=""
	fi
	cf="-std=gnu11 -O2 -pthread -D_GNU_SOURCE -I$d -Iinclude -Isrc \
-I$CUDA/include $cf"
	# As configure links: the runtime static, cuBLAS/cuSOLVER by dlopen().
	lf="-L$CUDA/lib64 -Wl,-rpath,$CUDA/lib64 -lcudart_static -ldl -lrt \
-lpthread -lstdc++ $lf -lm"
	if [ -z "$TEST" ]; then
		# shellcheck disable=SC2086
		gcc $cf -o "$d/test_svd_cuda" tests/test_svd_cuda.c $srcs $lf \
			>>"$d/build.log" 2>&1 && TEST=$d/test_svd_cuda
	fi
	# shellcheck disable=SC2086
	gcc $cf -o "$d/svd_methods" tests/bench/svd_methods.c $srcs $lf \
		>>"$d/build.log" 2>&1 && BENCH=$d/svd_methods
	if [ -z "$TEST" ] || [ -z "$BENCH" ]; then
		tail -20 "$d/build.log"
		return 1
	fi
}

# A prebuilt kit (tests/gpu/mkkit.sh, for GPU machines without the Debian
# -dev packages): binaries plus the shared libraries they need, but for
# CUDA's: cuBLAS and cuSOLVER are loaded at run time from this machine.
use_kit() {
	echo "using the prebuilt kit $KIT"
	tar -xJf "$KIT" -C "$B" || return 1
	[ ! -f "$B/SONAMES" ] || echo "it loads $(cat "$B/SONAMES")"
	KITLIB=$B/lib
	TEST=$B/tests/test_svd_cuda
	BENCH=$B/tests/bench/svd_methods
}

# The sonames the binaries dlopen(): the kit's SONAMES, else config.h's.
cuda_sonames() {
	local f
	if [ -f "$B/SONAMES" ]; then
		cat "$B/SONAMES"
		return
	fi
	for f in "$B/config.h" "$B/direct/config.h"; do
		[ -f "$f" ] || continue
		sed -n 's/^#define CU[A-Z]*_SONAME "\(.*\)"$/\1/p' "$f"
		return
	done
}

# Sets SPD_LD, our binaries' library path: the kit's lib/, the caller's
# LD_LIBRARY_PATH, $CUDA/lib64 and every library directory of the NVIDIA
# wheels in $PY's site-packages (where torch's CUDA libraries live).
spd_libpath() {
	local d sp dirs=()
	[ -z "$KITLIB" ] || dirs+=("$KITLIB")
	[ -z "${LD_LIBRARY_PATH:-}" ] || dirs+=("$LD_LIBRARY_PATH")
	[ ! -d "$CUDA/lib64" ] || dirs+=("$CUDA/lib64")
	for sp in $("$PY" -c 'import site
print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' \
	    2>/dev/null); do
		[ -d "$sp/nvidia" ] || continue
		while read -r d; do
			dirs+=("$d")
		done < <(find "$sp/nvidia" -maxdepth 4 -name 'lib*.so*' \
		    -printf '%h\n' 2>/dev/null | sort -u)
	done
	SPD_LD=$(IFS=:; echo "${dirs[*]}")
}

# Finds library so as the dynamic linker would with SPD_LD; prints its path.
find_lib() {
	local so=$1 d
	(
		IFS=:
		for d in $SPD_LD; do
			if [ -e "$d/$so" ]; then
				echo "$d/$so"
				exit 0
			fi
		done
		exit 1
	) && return 0
	PATH=$PATH:/sbin:/usr/sbin ldconfig -p 2>/dev/null |
		awk -v so="$so" '$1 == so { print $NF; f = 1; exit } END { exit !f }'
}

# Checks that every binary and every run-time CUDA library resolves its
# libraries (ldd) with SPD_LD, before any time is spent; 1 and why if not.
check_libs() {
	local f so p bad=0
	for f in "$@"; do
		[ -x "$f" ] || continue
		if LD_LIBRARY_PATH=$SPD_LD ldd "$f" 2>&1 | grep 'not found'; then
			echo "$f: unresolved libraries (above)"
			bad=1
		fi
	done
	for so in $(cuda_sonames); do
		if ! p=$(find_lib "$so"); then
			echo "$so: not found in LD_LIBRARY_PATH, $CUDA/lib64," \
			    "ldconfig or $PY's site-packages/nvidia"
			bad=1
		elif LD_LIBRARY_PATH=$SPD_LD ldd "$p" 2>&1 | grep 'not found'
		then
			echo "$p: unresolved libraries (above)"
			bad=1
		else
			echo "$so: $p"
		fi
	done
	return $bad
}

say "build"
if [ -n "${KIT:-}" ] && use_kit; then
	:
elif ! build_full; then
	echo "full build failed:"
	tail -5 "$B/configure.log" "$B/make.log" 2>/dev/null || true
	build_direct || echo "direct build failed too"
fi
if [ -n "$TEST" ] && [ -z "$BENCH" ]; then
	echo "the bench did not build: building it directly"
	build_direct || echo "direct build of the bench failed"
fi
SPD=$B/spectrumd
FIX=$B/tests/spectrumd-fixture

say "libraries (ldd, and the CUDA libraries loaded at run time)"
spd_libpath
echo "our binaries' LD_LIBRARY_PATH: ${SPD_LD:-(none)}"
if check_libs "$TEST" "$BENCH" "$SPD" "$FIX"; then
	result libraries PASS
elif [ "$BE" = cuda ]; then
	result libraries FAIL "a binary or a CUDA library does not resolve"
	finish
else
	result libraries FAIL "(dry run goes on: the cpu backend needs none)"
fi

say "tests/test_svd_cuda"
if [ -n "$TEST" ]; then
	rc=0
	top_srcdir=$ROOT top_builddir=$B spd_run "$TEST" \
		>"$B/test_svd_cuda.log" 2>&1 || rc=$?
	grep -E '^not ok|#' "$B/test_svd_cuda.log" | head -40 || true
	echo "$(grep -c '^ok' "$B/test_svd_cuda.log" || true) passed," \
		"$(grep -c '^not ok' "$B/test_svd_cuda.log" || true) failed," \
		"exit $rc (77 = skipped; log $B/test_svd_cuda.log)"
	if [ "$rc" -eq 0 ]; then
		result test_svd_cuda PASS
	elif [ "$rc" -ne 77 ]; then
		result test_svd_cuda FAIL "exit $rc"
	elif [ "$GPU" = 1 ]; then
		# Everything after needs the device: stop here.
		echo "FAIL: test_svd_cuda skipped, but nvidia-smi sees a GPU:" \
		    "$(grep -m1 SKIP "$B/test_svd_cuda.log" || true)"
		result test_svd_cuda FAIL "skipped although nvidia-smi sees a GPU"
		result "timings, end to end" "NOT RUN" "the test could not use the GPU"
		finish
	else
		result test_svd_cuda SKIP "no GPU here"
	fi
	if [ "$rc" -eq 77 ] && [ "$BE" = cuda ]; then
		echo "no CUDA device here: the build and the skip are" \
			"verified; timings and the end-to-end checks need a" \
			"GPU (BACKEND=cpu runs them on the CPU as a dry run)"
		result "timings, end to end" "NOT RUN" "no GPU"
		finish
	fi
else
	echo "not built"
	result test_svd_cuda "NOT RUN" "not built"
fi

say "timing: spectrumd $BE backend, BF16, median of $REPS"
declare -A ours theirs host
if [ -n "$BENCH" ]; then
	bst=PASS
	# shellcheck disable=SC2086
	[ "$BE" = cuda ] || ROUTES=""
	for route in ${ROUTES-f32 f64}; do
		echo "route $route (float32/float64 Gram and solve):"
		# shellcheck disable=SC2086
		SPECTRUMD_CUDA_EIG=$route spd_run "$BENCH" -b "$BE" -d BF16 \
		    -m prod -n -r "$REPS" $SHAPES 2>&1 || bst=FAIL
	done
	echo "the default route (cuda: mixed, float32 Gram, float64 solve):"
	# shellcheck disable=SC2086
	spd_run "$BENCH" -b "$BE" -d BF16 -m prod -n -r "$REPS" $SHAPES 2>&1 \
		| tee "$B/bench.log" || bst=FAIL
	while read -r shape _ method t _; do
		[ "$method" = prod ] && ours[$shape]=$t
	done <"$B/bench.log"
	result "timing: spectrumd" $bst
else
	echo "bench not built"
	result "timing: spectrumd" "NOT RUN" "bench not built"
fi

say "timing: torch.linalg.svdvals fp32, median of $REPS"
: >"$B/torch.err"
# shellcheck disable=SC2086
if [ -z "${SKIP_TORCH:-}" ] &&
    "$PY" - "$REPS" "$BE" $SHAPES >"$B/torch.log" 2>"$B/torch.err" <<'EOF'; then
import statistics, sys, time
import torch
reps, dev, shapes = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
if dev == "cuda":
    print("# torch", torch.__version__, "cuda", torch.version.cuda,
          torch.cuda.get_device_name(0), file=sys.stderr)
else:
    print("# torch", torch.__version__, "on the CPU (dry run)",
          file=sys.stderr)
    torch.cuda.synchronize = lambda: None
for sh in shapes:
    r, c = map(int, sh.split("x"))
    g = torch.Generator().manual_seed(0)
    w = (torch.randn(r, c, generator=g) * 0.02).to(torch.bfloat16)
    wd = w.to(dev)
    res = []
    for f in (lambda: torch.linalg.svdvals(wd.float()),
              lambda: torch.linalg.svdvals(w.to(dev).float())):
        f()
        torch.cuda.synchronize()
        ts = []
        for _ in range(reps):
            torch.cuda.synchronize()
            t = time.perf_counter()
            f()
            torch.cuda.synchronize()
            ts.append(time.perf_counter() - t)
        res.append(statistics.median(ts))
    print(sh, "%.4f %.4f" % tuple(res), flush=True)
EOF
	cat "$B/torch.err" "$B/torch.log"
	while read -r shape a b; do
		theirs[$shape]=$a
		host[$shape]=$b
	done <"$B/torch.log"
	result "timing: torch" PASS
elif [ -n "${SKIP_TORCH:-}" ]; then
	result "timing: torch" SKIP "SKIP_TORCH"
else
	tail -3 "$B/torch.err"
	echo "torch timing failed (is torch with CUDA installed for $PY?)"
	result "timing: torch" FAIL "see $B/torch.err"
fi

# --- end to end: spectrumd scan on whole checkpoints ---------------------------
E2E=${E2E_DIR:-/tmp/spd-gpu}
say "$BE vs cpu backend on fixtures of every dtype (SNR <= 1e-5 relative)"
if [ -x "$SPD" ] && [ -x "$FIX" ]; then
	est=PASS
	rm -rf "$E2E"; mkdir -p "$E2E"
	for dt in F32 F16 BF16 F64 F8_E4M3 F8_E5M2; do
		# the directory name is the slug: no '_'
		spd_run "$FIX" checkpoint "$E2E/${dt//_/-}" --layers 2 \
		    --hidden 256 --intermediate 688 --vocab 1024 --dtype "$dt" -q
	done
	spd_run "$FIX" checkpoint "$E2E/l7b" --layers 1 --hidden 4096 \
	    --intermediate 11008 --vocab 32000 --dtype BF16 --shards 2 -q
	for c in F32 F16 BF16 F64 F8-E4M3 F8-E5M2 l7b; do
		for be in cpu "$BE"; do
			spd_run "$SPD" scan -q --backend "$be" --out \
			    "$E2E/out-$be" --format json "$E2E/$c" >/dev/null \
			    2>"$E2E/$c.$be.err" ||
			    { echo "$c $be: $(cat "$E2E/$c.$be.err")"; est=FAIL; }
		done
		"$PY" - "$E2E/out-cpu/snr_results_$c.json" \
		    "$E2E/out-$BE/snr_results_$c.json" "$c" <<'EOF' || est=FAIL
import json, math, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a.keys() == b.keys(), "different matrices"
# Every matrix counts: a finite SNR on one side and not on the other fails
# (max() would drop a NaN).
err, bad = 0.0, []
for k in a:
    x, y = a[k]["snr"], b[k]["snr"]
    if not all(isinstance(v, (int, float)) and math.isfinite(v)
               for v in (x, y)):
        same = x == y or (isinstance(x, float) and isinstance(y, float)
                          and math.isnan(x) and math.isnan(y))
        if not same:
            bad.append("%s: cpu %r, other %r" % (k, x, y))
        continue
    d = abs(x - y) / abs(x) if x != 0 else abs(y)
    if not d <= 1e-5:
        bad.append("%s: cpu %r, other %r" % (k, x, y))
    err = max(err, d)
print("%-8s %3d matrices  max SNR rel diff vs cpu %.2e  %s"
      % (sys.argv[3], len(a), err, "FAIL" if bad else "ok"))
for line in bad[:10]:
    print("  " + line)
sys.exit(1 if bad else 0)
EOF
	done
	rm -rf "$E2E/F32" "$E2E/F16" "$E2E/F64" "$E2E/F8-E4M3" "$E2E/F8-E5M2"

	say "Llama-7B-shaped checkpoint ($LAYERS layers, BF16), end to end"
	t0=$(date +%s.%N)
	spd_run "$FIX" checkpoint "$E2E/7b" --layers "$LAYERS" --hidden 4096 \
	    --intermediate 11008 --vocab 32000 --dtype BF16 --shards 3 -q
	t1=$(date +%s.%N)
	echo "fixture written: $(du -sh "$E2E/7b" | cut -f1) in" \
	    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') s"
	for w in ${WORKERS-1 2 4}; do
		echo "workers per device: $w"
		# shellcheck disable=SC2016
		SPECTRUMD_CUDA_WORKERS=$w SPD_LD=$SPD_LD "$PY" - "$SPD" "$E2E" \
		    "$BE" <<'EOF' || est=FAIL
import os, resource, subprocess, sys, time
spd, e2e, be = sys.argv[1:4]
# spectrumd gets the kit's and CUDA's libraries; this Python does not.
env = dict(os.environ, LD_LIBRARY_PATH=os.environ.pop("SPD_LD", ""))
t = time.monotonic()
p = subprocess.run([spd, "scan", "-q", "--backend", be, "--out",
                    e2e + "/out-7b", "--timings", e2e + "/t7b.tsv",
                    e2e + "/7b"], capture_output=True, text=True, env=env)
wall = time.monotonic() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print("scan (page-cached): %.2f s wall, peak RSS %.0f MiB, exit %d %s"
      % (wall, rss, p.returncode, p.stderr.strip()[-300:]))
sys.exit(p.returncode)
EOF
	done
	awk -F'\t' '!/^(name|#)/ { k = $2 "x" $3; n[k]++; s[k] += $5 }
	    END { for (k in n) printf "  %-12s %3d matrices  %.4f s mean\n",
	    k, n[k], s[k] / n[k] }' "$E2E/t7b.tsv"
	rm -rf "$E2E"
	result "end to end" $est
else
	echo "NOT RUN: spectrumd or the fixture writer was not built (a" \
	    "direct build has neither: use a full build or KIT=)"
	result "end to end" "NOT RUN" "spectrumd not built (no kit, no full build)"
fi

say "summary (seconds per matrix; ours reads BF16 from host memory each call)"
printf '%-12s %16s %20s %20s %9s\n' shape "spectrumd $BE" \
	"torch fp32 on $BE" "torch from host" "speed-up"
for s in $SHAPES; do
	o=${ours[$s]:-n/a} t=${theirs[$s]:-n/a} h=${host[$s]:-n/a}
	x=n/a
	[ "$o" != n/a ] && [ "$t" != n/a ] &&
		x=$(awk -v a="$t" -v b="$o" 'BEGIN { printf "%.1fx", a / b }')
	printf '%-12s %16s %20s %20s %9s\n' "$s" "$o" "$t" "$h" "$x"
done
finish
