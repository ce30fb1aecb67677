#!/bin/sh
# Runs the operator-fault integration tests (tests/it/faults_it.py,
# Python standard library only) against the built daemon. The full-disk
# test mounts a small tmpfs: as root directly, else inside a user and
# mount namespace when unshare(1) may make one (it skips otherwise).
if [ ! -x /usr/bin/python3 ]; then
	echo "1..0 # SKIP /usr/bin/python3 missing"
	exit 77
fi
py="${top_srcdir:-.}/tests/it/faults_it.py"
if [ "$(id -u)" != 0 ] && unshare --user --map-root-user --mount true \
    2>/dev/null; then
	exec unshare --user --map-root-user --mount /usr/bin/python3 "$py" \
	    "${top_builddir:-.}"
fi
exec /usr/bin/python3 "$py" "${top_builddir:-.}"
