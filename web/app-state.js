// app-state.js: the dashboard's one state object, what is read from it by
// several panels (the current run, the analysed checkpoints, the type
// order), the notice line and the page URL's #hash (the view's settings).

export const $ = (id) => document.getElementById(id);
export const uPlot = window.uPlot;
export const HAVE_PLOT = typeof uPlot === 'function';
export const HEAT_POINTS = 400;	// history columns at most (server-side)

export const state = {
	health: null,
	runs: [],
	run: null,
	cmp: '',		// the run compared with it ('' none)
	ckpts: [],
	snr: null,		// /snr?step=latest
	sel: null,		// /selection?top_percent=tp
	tp: null,		// slider value (null: the daemon's default)
	tpDefault: null,	// the daemon's top_percent, once seen
	hist: null,		// /history of every matrix (heatmap, lookups)
	selHist: null,		// /selection/history at tp (app-selhist.js)
	chart: { metric: 'snr', type: '', match: '', log: true, ema: 0,
	    x: 'step' },
	chartHist: null,	// /history for the chart's type + match
	heat: { type: '', mode: 'snr' },
	spec: { module: null, step: 'latest', view: 'sorted', log: true },
	curStep: null,		// checkpoint picked in the bar
};

// The run argument: omitted when the daemon watches a single run.
export function runArg() {
	return state.runs.length > 1 ? { run: state.run } : {};
}

export function currentRun() {
	return state.runs.find((r) => r.name === state.run) || null;
}

export function doneCkpts() {
	return state.ckpts.filter((c) => c.status === 'done');
}

// The types in checkpoint order (the selection's, then the others).
export function typeOrder() {
	const seen = [];
	const add = (t) => {
		if (!seen.includes(t))
			seen.push(t);
	};
	if (state.snr)
		for (const m of state.snr.matrices)
			add(m.type);
	if (state.hist)
		for (const s of state.hist.series)
			add(s.type);
	return seen;
}

export function notice(text) {
	const n = $('notice');
	n.hidden = !text;
	n.textContent = text || '';
}

export function report(e) {
	// Shown on the page; the console stays for the developer's own use.
	notice(`Cannot reach the daemon: ${e.message}`);
}

export function debounce(fn, ms) {
	let t = null;
	return (...a) => {
		clearTimeout(t);
		t = setTimeout(() => fn(...a), ms);
	};
}

/* --------------------------------------------------------- url state */

export function readHash() {
	const h = new URLSearchParams(location.hash.slice(1));
	if (h.has('run'))
		state.run = h.get('run');
	state.cmp = h.get('cmp') || '';
	if (h.has('metric'))
		state.chart.metric = h.get('metric');
	if (h.has('type'))
		state.chart.type = h.get('type');
	if (h.has('match'))
		state.chart.match = h.get('match');
	if (h.has('log'))
		state.chart.log = h.get('log') !== '0';
	if (h.has('ema'))
		state.chart.ema = Math.min(0.99, Math.max(0, Number(h.get('ema')) ||
		    0));
	if (h.get('x') === 'wall')
		state.chart.x = 'wall';
	if (h.has('tp')) {
		const tp = parseInt(h.get('tp'), 10);
		if (tp >= 1 && tp <= 100)
			state.tp = tp;
	}
	if (h.has('htype'))
		state.heat.type = h.get('htype');
	if (['rank', 'alpha'].includes(h.get('hmode')))
		state.heat.mode = h.get('hmode');
	if (h.has('matrix'))
		state.spec.module = h.get('matrix');
	$('c-match').value = state.chart.match;
	$('c-log').checked = state.chart.log;
	$('c-ema').value = String(state.chart.ema);
	$('c-ema-v').textContent = String(state.chart.ema);
	$('c-x').value = state.chart.x;
	$('h-mode').value = state.heat.mode;
}

export function saveHash() {
	const h = new URLSearchParams();
	if (state.runs.length > 1 && state.run)
		h.set('run', state.run);
	if (state.cmp)
		h.set('cmp', state.cmp);
	if (state.chart.metric !== 'snr')
		h.set('metric', state.chart.metric);
	if (state.chart.type)
		h.set('type', state.chart.type);
	if (state.chart.match)
		h.set('match', state.chart.match);
	if (!state.chart.log)
		h.set('log', '0');
	if (state.chart.ema > 0)
		h.set('ema', String(state.chart.ema));
	if (state.chart.x === 'wall')
		h.set('x', 'wall');
	if (state.tp !== null && state.tp !== state.tpDefault)
		h.set('tp', String(state.tp));
	if (state.heat.type)
		h.set('htype', state.heat.type);
	if (state.heat.mode !== 'snr')
		h.set('hmode', state.heat.mode);
	if (state.spec.module)
		h.set('matrix', state.spec.module);
	const s = h.toString();
	history.replaceState(null, '', s ? `#${s}` : location.pathname);
}
