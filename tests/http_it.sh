#!/bin/sh
# Runs the HTTP hardening integration tests (tests/it/http_it.py, Python
# standard library only) against the built daemon: many held connections,
# slow clients, per-address limits, rejected bursts.
if [ ! -x /usr/bin/python3 ]; then
	echo "1..0 # SKIP /usr/bin/python3 missing"
	exit 77
fi
exec /usr/bin/python3 "${top_srcdir:-.}/tests/it/http_it.py" "${top_builddir:-.}"
