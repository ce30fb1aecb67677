#!/bin/sh
# Runs the closed-loop integration test (tests/it/loop_it.py): a tiny
# Llama-style model fine-tuned by examples/train_loop.py while the built
# daemon re-selects at every save. Skips (77) without torch.
if [ ! -x /usr/bin/python3 ]; then
	echo "1..0 # SKIP /usr/bin/python3 missing"
	exit 77
fi
exec /usr/bin/python3 "${top_srcdir:-.}/tests/it/loop_it.py" \
    "${top_builddir:-.}" "${top_srcdir:-.}"
