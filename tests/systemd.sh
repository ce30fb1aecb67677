#!/bin/sh
# The shipped unit, checked offline as an operator's systemd would read it:
# `systemd-analyze verify` must accept it without a warning, and
# `systemd-analyze security` must score it at most 2.0 (exit 77 when
# systemd-analyze is not installed).
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
if ! command -v systemd-analyze >/dev/null; then
	echo "1..0 # SKIP systemd-analyze missing (Debian package systemd)"
	exit 77
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/spd-unit.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
n=0 fails=0
ok() {	# ok COND-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"
	else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}

spd=$(cd "$top_builddir" && pwd)/spectrumd
sed -e "s|@bindir@/spectrumd|$spd|" -e "s|@sysconfdir@|/etc|" \
    "$top_srcdir/systemd/spectrumd.service.in" >"$T/spectrumd.service"
systemd-analyze verify --man=no "$T/spectrumd.service" >"$T/verify" 2>&1
st=$?
ok "$(test "$st" -eq 0 && ! grep -q . "$T/verify"; echo $?)" \
    "systemd-analyze verify: exit $st, $(head -c 300 "$T/verify")"
systemd-analyze security --offline=yes --threshold=20 "$T/spectrumd.service" \
    >"$T/security" 2>&1
st=$?
score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$T/security")
ok "$st" "systemd-analyze security: exposure $score (at most 2.0)"
[ "$st" -eq 0 ] || grep '✗' "$T/security"
for key in 'DeviceAllow=char-nvidia rw' 'DeviceAllow=char-nvidia-uvm rw' \
    'LimitNOFILE=' 'Type=notify'; do
	grep -q "^$key" "$T/spectrumd.service"
	ok $? "the unit keeps $key"
done
echo "1..$n"
[ "$fails" -eq 0 ]
