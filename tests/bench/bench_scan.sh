#!/bin/sh
# Runs the scan benchmark (tests/bench/bench_scan.py) against a build
# directory: tests/bench/bench_scan.sh BUILDDIR [options]
b=${1:-build}
[ $# -gt 0 ] && shift
exec /usr/bin/python3 "$(dirname "$0")/bench_scan.py" "$b" "$@"
