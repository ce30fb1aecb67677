#!/bin/sh
# The example alert rules of docs/alerts.yml: `promtool check rules` must
# accept them and `promtool test rules` must pass tests/alerts_test.yml
# (each alert fires on its condition and not before). Exit 77 when
# promtool is not installed (Debian package prometheus).
set -u
top_srcdir=${top_srcdir:-.}
if ! command -v promtool >/dev/null; then
	echo "1..0 # SKIP promtool missing (Debian package prometheus)"
	exit 77
fi
n=0 fails=0
ok() {	# ok COND-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"
	else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}

out=$(promtool check rules "$top_srcdir/docs/alerts.yml" 2>&1)
ok $? "promtool check rules docs/alerts.yml: $(echo "$out" | tail -1)"
out=$(promtool test rules "$top_srcdir/tests/alerts_test.yml" 2>&1)
st=$?
ok "$st" "promtool test rules tests/alerts_test.yml"
[ "$st" -eq 0 ] || echo "$out" | sed 's/^/# /'
echo "1..$n"
[ "$fails" -eq 0 ]
