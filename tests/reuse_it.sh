#!/bin/sh
# Runs the reuse integration tests (tests/it/reuse_it.py, Python standard
# library only) against the built daemon and scan.
if [ ! -x /usr/bin/python3 ]; then
	echo "1..0 # SKIP /usr/bin/python3 missing"
	exit 77
fi
exec /usr/bin/python3 "${top_srcdir:-.}/tests/it/reuse_it.py" "${top_builddir:-.}"
