#!/bin/sh
# Runs tests/it/consumers_it.py (Python standard library only): the
# reference script's and Axolotl's selection rules applied to spectrumd's
# snr_results JSON give spectrumd's YAML, with NaN, Inf, ties and zeros.
if [ ! -x /usr/bin/python3 ]; then
	echo "1..0 # SKIP /usr/bin/python3 missing"
	exit 77
fi
exec /usr/bin/python3 "${top_srcdir:-.}/tests/it/consumers_it.py" "${top_builddir:-.}"
