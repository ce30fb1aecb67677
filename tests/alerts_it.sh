#!/bin/sh
# Runs the alert integration tests (tests/it/alerts_it.py, Python standard
# library only) against the built daemon.
if [ ! -x /usr/bin/python3 ]; then
	echo "1..0 # SKIP /usr/bin/python3 missing"
	exit 77
fi
exec /usr/bin/python3 "${top_srcdir:-.}/tests/it/alerts_it.py" "${top_builddir:-.}"
