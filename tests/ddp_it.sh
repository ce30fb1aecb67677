#!/bin/sh
# Runs the distributed Trainer-callback test (tests/it/ddp_it.py: two CPU
# processes under torch.distributed, gloo on loopback) against the daemon.
if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
	echo "1..0 # SKIP /usr/bin/python3 with torch missing (python3-torch)"
	exit 77
fi
exec /usr/bin/python3 "${top_srcdir:-.}/tests/it/ddp_it.py" "${top_builddir:-.}" "${top_srcdir:-.}"
