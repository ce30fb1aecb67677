#!/bin/sh
# Runs the reuse benchmark (tests/bench/bench_reuse.py) against a build
# directory: tests/bench/bench_reuse.sh BUILDDIR [options]
b=${1:-build}
[ $# -gt 0 ] && shift
exec /usr/bin/python3 "$(dirname "$0")/bench_reuse.py" "$b" "$@"
