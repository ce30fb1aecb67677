#!/bin/sh
# Runs the dashboard tests (tests/browser/<name>.test.mjs for each name in
# $SPECTRUMD_BROWSER_TESTS, default "dashboard alerts": the alerts test runs the
# banner against the daemon's own /alerts): a real headless Chromium,
# driven by playwright-core, on the page that the built daemon serves from
# web/ while it watches fixture runs. Skips (77) when node, playwright-core
# (npm ci) or Chromium (apt-get install chromium) is missing. The full-page
# screenshot goes to $top_builddir/tests/dashboard.png.
srcdir=${top_srcdir:-.}
builddir=${top_builddir:-.}
chromium=${CHROMIUM:-/usr/bin/chromium}

skip() {
	echo "1..0 # SKIP $*"
	exit 77
}

command -v node >/dev/null 2>&1 || skip "node missing"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null)
[ "${major:-0}" -ge 18 ] 2>/dev/null || skip "node ${major:-?} is older than 18"
[ -x "$chromium" ] || skip "$chromium missing (apt-get install chromium)"
[ -f "$srcdir/node_modules/playwright-core/package.json" ] ||
	skip "playwright-core missing (run npm ci in $srcdir)"
if [ ! -f "$srcdir/web/assets/uPlot.iife.min.js" ]; then
	echo "not ok 1 - web/assets/uPlot.iife.min.js missing: the build" \
	    "copies it from node_modules/uplot (make web-assets)"
	exit 1
fi
[ -x "$builddir/spectrumd" ] && [ -x "$builddir/tests/spectrumd-fixture" ] ||
	skip "spectrumd or tests/spectrumd-fixture not built in $builddir"

export top_srcdir="$srcdir" top_builddir="$builddir"
rc=0
for t in ${SPECTRUMD_BROWSER_TESTS:-dashboard alerts}; do
	node --test-reporter=tap "$srcdir/tests/browser/$t.test.mjs" || rc=1
done
exit $rc
