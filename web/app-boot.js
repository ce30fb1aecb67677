// app-boot.js: starts the dashboard's first requests while the chart
// library and the modules load (a classic script, first in <head>): /runs
// and /health, then, for the run the page will show (the #hash's, else
// the first), the five that draw it. app-api.js's api() takes each
// answer once, until the page has drawn (takePrefetched), and waits for
// the second round to be asked for before it asks itself; the modules ask
// for exactly these URLs (app-checkpoints.js, app-selection.js,
// app-selhist.js, app-heatmap.js with HEAT_POINTS = 400, app.js).
(function () {
	'use strict';
	var pre = new Map();

	// The key of a request: its path and sorted parameters.
	function key(u) {
		var q = Array.from(u.searchParams.entries()).sort(function (a, b) {
			return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
		});
		return u.pathname + '?' + new URLSearchParams(q).toString();
	}

	function get(path, params) {
		var u = new URL(path, location.origin);
		Object.keys(params || {}).forEach(function (k) {
			u.searchParams.set(k, String(params[k]));
		});
		var p = fetch(u, { cache: 'no-store' });
		p.catch(function () { /* api() sees the failure itself */ });
		pre.set(key(u), p);
		return p;
	}

	var boot = { pre: pre, key: key, pending: null };
	window.spectrumdPrefetch = boot;
	var h = new URLSearchParams(location.hash.slice(1));
	get('/health');
	// pending: settled once the second round is asked for (or not).
	boot.pending = get('/runs').then(function (r) {
		return r.ok ? r.clone().json() : null;
	}).then(function (runs) {
		if (!Array.isArray(runs) || runs.length === 0 ||
		    window.spectrumdPrefetch !== boot)
			return;		/* none, or the page has drawn */
		var want = h.get('run');
		var run = runs.find(function (r) { return r.name === want; }) ||
		    runs[0];
		if (!run.counts || !(run.counts.done > 0))
			return;
		var arg = runs.length > 1 ? { run: run.name } : {};
		var with_ = function (o) { return Object.assign({}, arg, o); };
		var tp = parseInt(h.get('tp'), 10);
		var selArg = tp >= 1 && tp <= 100 ? with_({ top_percent: tp }) :
		    arg;
		get('/selection', selArg);
		get('/selection/history', selArg);
		get('/history', with_({ metric: 'snr', max_points: 400 }));
		get('/snr', with_({ step: 'latest' }));
		get('/checkpoints', arg);
	}).catch(function () { /* the modules ask again */ });
})();
