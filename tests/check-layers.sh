#!/bin/sh
# Enforces STYLE.md C2: each third-party header is included by exactly the
# one file that owns it, and src/ never includes daemon/ code.
cd "${top_srcdir:-.}" || exit 1
fails=0
n=0
check() {	# check HEADER-REGEX ALLOWED-FILES...
	pat=$1; shift
	n=$((n + 1))
	found=$(grep -lE "#include <($pat)>" src/*.c src/*.h daemon/*.c \
	    daemon/*.h include/spectrumd/*.h 2>/dev/null | sort | tr '\n' ' ')
	want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
	for f in $found; do
		case " $want " in
		*" $f "*) ;;
		*) echo "not ok $n - <$pat> included by $f (allowed: $want)"
		   fails=$((fails + 1)); return ;;
		esac
	done
	echo "ok $n - <$pat> only in: $want"
}
check 'microhttpd\.h' daemon/http.c
check 'sqlite3\.h' src/store.c
check 'lapacke\.h|cblas\.h' src/svd_cpu.c
check 'cusolverDn\.h|cublas_v2\.h' src/cuda_dl.h
check 'cuda_runtime\.h' src/svd_cuda.c
check 'sys/inotify\.h' src/watch.c
check 'pcre2\.h' src/match.c
check 'xxhash\.h' src/fingerprint.c
check 'cjson/cJSON\.h' src/safetensors.c src/model.c src/report.c \
    src/select.c src/api.c src/watch.c src/cfg.c \
    daemon/worker.c
n=$((n + 1))
if grep -l '#include "\.\./daemon\|#include "scan\.h"\|#include "http\.h"' \
    src/*.c include/spectrumd/*.h >/dev/null 2>&1; then
	echo "not ok $n - src/ includes daemon/ headers"
	fails=$((fails + 1))
else
	echo "ok $n - src/ does not reach up into daemon/"
fi
echo "1..$n"
[ "$fails" -eq 0 ]
