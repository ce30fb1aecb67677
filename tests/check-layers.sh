#!/bin/sh
# Enforces the module graph of STYLE.md §3 and C2:
#  1. each third-party header is included by exactly the one file that owns
#     it;
#  2. every #include "..." of include/spectrumd/, src/ and daemon/ is an
#     edge listed in the graph below (tests/ may include anything):
#     include/spectrumd/*.h include only other include/spectrumd headers;
#     src/*.c and src/*.h include their module's public header, the public
#     headers of the modules their row lists, and private src/ headers
#     (only those their row lists); nothing in src/ includes daemon/;
#     daemon/ includes the public headers its row lists and its own
#     headers, never a private src/ header.
# A new module, or a new edge, fails until it is added here on purpose.
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
    src/select.c src/api_util.c src/api_status.c src/api_runs.c \
    src/api_history.c src/api_selection.c src/api_alerts.c src/layout.c \
    src/cfg.c \
    daemon/worker.c

# The module graph: what each module (its public header, its .c file and
# its private headers) may include besides itself, config.h and log.h
# (any module may log, STYLE C7). Names without a dot are public modules
# (include/spectrumd/NAME.h); NAME.h names a private header in src/.
graph() {
	case $1 in
	common|log|budget)	echo "" ;;
	tensor|snr|names|heavytail|match|health|hub|cfg|alerts)
				echo "common" ;;
	safetensors|fingerprint)	echo "common tensor" ;;
	model)			echo "common safetensors" ;;
	layout)			echo "common model safetensors" ;;
	watch)			echo "common layout" ;;
	report)			echo "common fingerprint heavytail snr tensor" ;;
	select)			echo "common report names" ;;
	store)			echo "alerts common heavytail report select" ;;
	# svd.c → the backends (through svd_backend.h's table) → svd_kit;
	# the backends and the kit take only the types of spectrumd/svd.h,
	# and the objects check below proves they call nothing of svd.c.
	svd)			echo "common snr tensor svd_backend.h" ;;
	svd_backend)		echo "common" ;;
	svd_kit)		echo "common svd tensor" ;;
	svd_cpu)		echo "common svd tensor svd_backend.h" \
				    "svd_kit.h" ;;
	cuda_dl)		echo "common" ;;
	svd_cuda_kern)		echo "" ;;
	svd_cuda)		echo "common svd tensor svd_backend.h" \
				    "svd_kit.h cuda_dl.h svd_cuda_kern.h" ;;
	analyze)		echo "common report budget fingerprint heavytail model" \
				    "names snr svd" ;;
	api)			echo "common health hub store api_int.h" ;;
	api_int)		echo "api common store" ;;
	api_util|api_status|api_metrics|api_static|api_alerts)
				echo "api common health hub store api_int.h" ;;
	api_runs)		echo "api common health names report store" \
				    "api_int.h" ;;
	api_history)		echo "api common match store api_int.h" ;;
	api_selection)		echo "api common hub report select store" \
				    "api_int.h" ;;
	daemon/)		echo "alerts analyze api cfg common health hub layout" \
				    "model names report select store watch" ;;
	*)			return 1 ;;
	esac
}

# edge FILE MODULE INCLUDED: fails unless MODULE may include INCLUDED.
edge_ok() {
	file=$1 mod=$2 inc=$3
	case $inc in
	config.h|spectrumd/log.h)	return 0 ;;
	../*|*/../*)
		echo "#   $file: \"$inc\" climbs out of its directory"
		return 1 ;;
	esac
	case $file in
	include/spectrumd/*)
		case $inc in
		spectrumd/*) ;;
		*) echo "#   $file: \"$inc\" is not an include/spectrumd header"
		   return 1 ;;
		esac ;;
	daemon/*)
		case $inc in
		spectrumd/*) ;;
		*) [ -f "daemon/$inc" ] && return 0
		   echo "#   $file: \"$inc\" is neither public nor in daemon/"
		   return 1 ;;
		esac ;;
	src/*)
		case $inc in
		spectrumd/*) ;;
		*) [ -f "src/$inc" ] || {
			echo "#   $file: \"$inc\" is not a src/ header" \
			    "(src/ never includes daemon/)"
			return 1; } ;;
		esac ;;
	esac
	case $inc in
	spectrumd/*) want=${inc#spectrumd/}; want=${want%.h} ;;
	*) want=$inc ;;
	esac
	[ "$want" = "$mod" ] || [ "$want" = "$mod.h" ] && return 0
	if [ ! -f "include/spectrumd/$want.h" ] && [ ! -f "src/$want" ]; then
		echo "#   $file: \"$inc\" does not exist"
		return 1
	fi
	case " $(graph "$mod") " in
	*" $want "*) return 0 ;;
	esac
	echo "#   $file: edge $mod -> $want is not in the module graph" \
	    "(tests/check-layers.sh)"
	return 1
}

for f in include/spectrumd/*.h src/*.c src/*.h src/*.cu daemon/*.c \
    daemon/*.h; do
	[ -f "$f" ] || continue
	case $f in
	daemon/*) mod=daemon/ ;;
	*) mod=$(basename "$f"); mod=${mod%.*} ;;
	esac
	n=$((n + 1))
	if ! graph "$mod" >/dev/null; then
		echo "not ok $n - $f: module $mod has no row in the graph"
		fails=$((fails + 1))
		continue
	fi
	bad=0
	# shellcheck disable=SC2013 # include names hold no blanks
	for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
		edge_ok "$f" "$mod" "$inc" || bad=1
	done
	if [ "$bad" -eq 0 ]; then
		echo "ok $n - $f: includes follow the module graph"
	else
		echo "not ok $n - $f: includes break the module graph"
		fails=$((fails + 1))
	fi
done
# The svd call graph, which includes alone cannot show (spectrumd/svd.h
# declares svd.c's functions next to the types): in the built library no
# backend object and not svd_kit.o uses a symbol svd.o defines, svd_kit.o
# uses none of a backend's, and svd.o reaches a backend only through its
# table (svd_cpu_backend, svd_cuda_backend). A build without CUDA has no
# svd_cuda.o: its pairs hold trivially.
lib=${top_builddir:-.}/libspectrumd.a
# cross FROM TO: the symbols archive member FROM uses that member TO defines.
cross() {
	${NM:-nm} -A "$lib" 2>/dev/null | awk -v f="$1" -v t="$2" '
	{ split($1, a, ":"); ty = $(NF - 1) }
	a[2] == f && ty == "U" { use[$NF] = 1 }
	a[2] == t && ty ~ /^[A-TV-Z]$/ { def[$NF] = 1 }
	END { for (s in use) if (s in def) print s }' | sort | tr '\n' ' ' |
	    sed 's/ $//'
}
callcheck() {	# callcheck FROM TO ALLOWED...
	from=$1 to=$2; shift 2
	n=$((n + 1))
	got=$(cross "$from" "$to")
	for sym in $got; do
		case " $* " in
		*" $sym "*) ;;
		*) echo "not ok $n - $from calls into $to: $got (allowed: $*)"
		   fails=$((fails + 1)); return ;;
		esac
	done
	echo "ok $n - $from uses of $to: ${got:-none}"
}
if [ -f "$lib" ]; then
	for o in svd_cpu.o svd_cuda.o svd_kit.o cuda_dl.o; do
		callcheck $o svd.o
	done
	callcheck svd_kit.o svd_cpu.o
	callcheck svd_kit.o svd_cuda.o
	callcheck svd.o svd_cpu.o svd_cpu_backend
	callcheck svd.o svd_cuda.o svd_cuda_backend
else
	n=$((n + 1))
	echo "ok $n # SKIP the svd call graph: no $lib (build first)"
fi
echo "1..$n"
[ "$fails" -eq 0 ]
