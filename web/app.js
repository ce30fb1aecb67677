// app.js: the spectrumd dashboard. Plain ES module, no build step. Reads
// the daemon's JSON API (DESIGN.md §5), draws the SNR curves and the
// spectrum with uPlot (served from /assets/, installed by the build) and
// the layer × step heatmap on its own canvas, and follows /events (SSE).
// Without uPlot the page still works: tables instead of the two charts.

import { apiNumber, snrResultsJson } from './pyjson.js';

const $ = (id) => document.getElementById(id);
const uPlot = window.uPlot;
const HAVE_PLOT = typeof uPlot === 'function';

const state = {
	health: null,
	runs: [],
	run: null,
	ckpts: [],
	snr: null,		// /snr?step=latest
	sel: null,		// /selection?top_percent=tp
	tp: null,		// slider value (null: the daemon's default)
	tpDefault: null,	// the daemon's top_percent, once seen
	hist: null,		// /history of every matrix (heatmap, lookups)
	chart: { type: '', match: '', log: true, ema: 0, x: 'step' },
	chartHist: null,	// /history for the chart's type + match
	heat: { type: '', mode: 'snr' },
	spec: { module: null, step: 'latest', view: 'sorted', log: true },
	curStep: null,		// checkpoint picked in the bar
};

let chartPlot = null;
let specPlot = null;
let heatLayout = null;

/* ---------------------------------------------------------------- api */

// Fetches an API path with query params (empty values left out). JSON
// bodies are parsed; errors throw with the daemon's message.
async function api(path, params = {}, text = false) {
	const u = new URL(path, location.origin);
	for (const [k, v] of Object.entries(params))
		if (v !== undefined && v !== null && v !== '')
			u.searchParams.set(k, String(v));
	const r = await fetch(u, { cache: 'no-store' });
	if (!r.ok) {
		let msg = `${r.status} ${r.statusText}`;
		try {
			const j = await r.json();
			msg = j.error.message;
		} catch (e) { /* not JSON */ }
		const err = new Error(msg);
		err.status = r.status;
		throw err;
	}
	return text ? r.text() : r.json();
}

// The run argument: omitted when the daemon watches a single run.
function runArg() {
	return state.runs.length > 1 ? { run: state.run } : {};
}

/* ----------------------------------------------------------- formatting */

// A number for people: 3 significant digits, exponent form when tiny or
// huge; +∞ / NaN for the API's non-finite classes.
function fmt(v, digits = 3) {
	if (v === null || v === undefined)
		return '—';
	if (Number.isNaN(v))
		return 'NaN';
	if (v === Infinity)
		return '+∞';
	if (v === -Infinity)
		return '−∞';
	const a = Math.abs(v);
	if (a !== 0 && (a >= 1e5 || a < 1e-3))
		return v.toExponential(digits - 1);
	return String(Number(v.toPrecision(digits)));
}

function fmtBytes(b) {
	if (b === null || b === undefined)
		return '—';
	const u = ['B', 'kB', 'MB', 'GB', 'TB'];
	let i = 0;
	while (b >= 1000 && i < u.length - 1) {
		b /= 1000;
		i++;
	}
	return `${fmt(b)} ${u[i]}`;
}

function fmtSecs(s) {
	if (s === null || s === undefined)
		return '—';
	if (s < 60)
		return `${fmt(s, 2)} s`;
	if (s < 3600)
		return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
	return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

function fmtTime(t) {
	if (!t)
		return '—';
	return new Date(t * 1000).toLocaleString();
}

function esc(s) {
	return String(s).replace(/[&<>"']/g, (c) => ({
		'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'
	}[c]));
}

/* ---------------------------------------------------------------- colours */

// Layer ramp (also the CSS .ramp gradient): blue → teal → green → yellow →
// orange → pink; readable on the dark background.
const LAYER_STOPS = ['#3f6fff', '#22b8cf', '#44d17a', '#d6d84a', '#ff9a3c',
    '#ff5a70'].map(hexRgb);
const NO_LAYER = [154, 163, 173];

// Viridis, 9 stops, for the heatmap.
const VIRIDIS = ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c',
    '#28ae80', '#5ec962', '#addc30', '#fde725'].map(hexRgb);

function hexRgb(h) {
	return [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
}

// Interpolates the colour stops at t in [0, 1].
function ramp(stops, t) {
	t = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0));
	const x = t * (stops.length - 1), i = Math.min(stops.length - 2,
	    Math.floor(x)), f = x - i;
	return stops[i].map((c, k) => Math.round(c + (stops[i + 1][k] - c) * f));
}

function rgba(c, a = 1) {
	return `rgba(${c[0]},${c[1]},${c[2]},${a})`;
}

// The colour of a layer among maxLayer + 1 (grey without a layer).
function layerColor(layer, maxLayer) {
	if (layer < 0)
		return NO_LAYER;
	return ramp(LAYER_STOPS, maxLayer > 0 ? layer / maxLayer : 0);
}

/* ------------------------------------------------------------ selection */

// The modules of the current selection, and those outside any type
// (embeddings and lm_head, added whatever their SNR).
function selSets() {
	const all = new Set(state.sel ? state.sel.modules : []);
	const typed = new Set();
	if (state.sel)
		for (const mods of Object.values(state.sel.by_type))
			for (const m of mods)
				typed.add(m);
	const always = new Set([...all].filter((m) => !typed.has(m)));
	return { all, always };
}

// The value of a history point (non-finite classes restored).
function pointValue(series, j) {
	const v = series.points[j][2];
	if (v !== null)
		return v;
	const c = series.classes ? series.classes[j] : null;
	return c === 'inf' ? Infinity : c === '-inf' ? -Infinity : NaN;
}

// Orders two SNRs as the selection does: +inf highest, NaN last.
function snrDesc(a, b) {
	const na = Number.isNaN(a), nb = Number.isNaN(b);
	if (na || nb)
		return na - nb;
	return b > a ? 1 : b < a ? -1 : 0;
}

/* ------------------------------------------------------------ runs, bar */

async function loadRuns() {
	const [health, runs] = await Promise.all([api('/health'),
	    api('/runs')]);
	state.health = health;
	state.runs = runs;
	$('version').textContent = health.version || '';
	$('backend').innerHTML = `backend <b>${esc(health.backend || '?')}</b>`;
	const sel = $('run');
	const want = state.run;
	sel.innerHTML = runs.map((r) => `<option value="${esc(r.name)}">` +
	    `${esc(r.name)}</option>`).join('');
	sel.disabled = runs.length < 2;
	if (runs.length === 0) {
		state.run = null;
		notice('No runs are watched. Start spectrumd with --watch DIR ' +
		    'or a [run NAME] section in its configuration.');
		return;
	}
	state.run = runs.some((r) => r.name === want) ? want : runs[0].name;
	sel.value = state.run;
	const r = currentRun();
	$('run-dir').textContent = r.dir;
	$('run-dir').title = r.dir;
}

function currentRun() {
	return state.runs.find((r) => r.name === state.run) || null;
}

function notice(text) {
	const n = $('notice');
	n.hidden = !text;
	n.textContent = text || '';
}

async function loadCkpts() {
	state.ckpts = await api('/checkpoints', runArg());
	renderCkpts();
}

function doneCkpts() {
	return state.ckpts.filter((c) => c.status === 'done');
}

function renderCkpts() {
	const strip = $('ck-strip');
	const atEnd = strip.scrollLeft + strip.clientWidth >=
	    strip.scrollWidth - 8;
	strip.innerHTML = state.ckpts.map(ckptChip).join('');
	if (atEnd)
		strip.scrollLeft = strip.scrollWidth;
	const n = {};
	for (const c of state.ckpts)
		n[c.status] = (n[c.status] || 0) + 1;
	const parts = [`${state.ckpts.length} checkpoint` +
	    (state.ckpts.length === 1 ? '' : 's')];
	for (const s of ['done', 'analyzing', 'pending', 'incomplete',
	    'failed', 'unsupported', 'vanished'])
		if (n[s])
			parts.push(`${n[s]} ${s}`);
	const nf = state.ckpts.filter((c) => c.nonfinite > 0).length;
	if (nf > 0)
		parts.push(`⚠ ${nf} with NaN/Inf matrices`);
	const fin = state.ckpts.filter((c) => c.finished)
	    .sort((a, b) => b.finished - a.finished);
	if (fin.length > 0) {
		const c = fin[0];
		const rate = c.seconds > 0 && c.bytes ? ` (${fmtBytes(c.bytes /
		    c.seconds)}/s)` : '';
		parts.push(`last analysis: step ${c.step}, ` +
		    `${c.progress.total} matrices (${c.analysed || 0} ` +
		    `analysed, ${c.reused || 0} reused) in ` +
		    `${fmtSecs(c.seconds)}${rate} on ${c.backend || '?'}`);
		const secs = fin.map((x) => x.seconds).sort((a, b) => a - b);
		if (secs.length > 2)
			parts.push(`median ${fmtSecs(secs[secs.length >> 1])}`);
	}
	$('ck-summary').textContent = parts.join(' · ');
}

function ckptChip(c) {
	const p = c.progress || { done: 0, total: 0 };
	let sub;
	if (c.status === 'done')
		sub = fmtSecs(c.seconds) +
		    (c.reused ? ` · ${c.reused} reused` : '') +
		    (c.nonfinite > 0 ? ` · ⚠ ${c.nonfinite} NaN` : '');
	else if (c.status === 'analyzing')
		sub = `${p.done}/${p.total || '?'}`;
	else
		sub = c.status;
	const pct = p.total > 0 ? Math.round(100 * p.done / p.total) : 0;
	const bar = c.status === 'analyzing' ?
	    `<div class="bar"><i style="width:${pct}%"></i></div>` : '';
	const title = [`step ${c.step} — ${c.status}`, c.path,
	    c.error ? `error: ${c.error}` : '',
	    `written ${fmtTime(c.wall_time)}`,
	    c.finished ? `analysed in ${fmtSecs(c.seconds)}, ` +
	    `${fmtBytes(c.bytes)} on ${c.backend}` : '',
	    `${p.done}/${p.total} matrices` + (c.status === 'done' ?
	    `: ${c.analysed} analysed, ${c.reused} reused` :
	    p.reused ? `, ${p.reused} reused` : ''),
	    c.nonfinite > 0 ? `${c.nonfinite} with NaN/Inf weights or a ` +
	    'NaN SNR: never selected' : ''].filter(Boolean).join('\n');
	const cur = state.curStep === c.step ? ' cur' : '';
	const nf = c.nonfinite > 0 ? ' nonfinite' : '';
	return `<div class="ck ${esc(c.status)}${cur}${nf}" role="listitem" ` +
	    `data-step="${c.step}" data-status="${esc(c.status)}" ` +
	    `title="${esc(title)}"><div class="st">${c.step}</div>` +
	    `<div class="sub">${esc(sub)}</div>${bar}</div>`;
}

// A progress event: moves the bar of the checkpoint being analysed.
function onProgress(d) {
	const c = state.ckpts.find((x) => x.step === d.step);
	if (!c) {
		scheduleCkpts();
		return;
	}
	c.status = d.done < d.total ? 'analyzing' : c.status;
	c.progress = { done: d.done, total: d.total, reused: d.reused || 0 };
	const el = document.querySelector(`.ck[data-step="${d.step}"]`);
	if (el)
		el.outerHTML = ckptChip(c);
}

/* ------------------------------------------------------------- loading */

let refreshing = null;
let refreshAgain = false;

// Reloads everything that depends on analysed checkpoints.
async function refresh() {
	if (refreshing) {
		refreshAgain = true;
		return refreshing;
	}
	refreshing = (async () => {
		do {
			refreshAgain = false;
			await refreshOnce();
		} while (refreshAgain);
	})();
	try {
		await refreshing;
	} finally {
		refreshing = null;
	}
}

async function refreshOnce() {
	await loadRuns();
	if (!state.run) {
		markReady();
		return;
	}
	const run = currentRun();
	if (!run.counts || !(run.counts.done > 0)) {
		await loadCkpts();
		run.counts = { done: doneCkpts().length };
	}
	if (run.counts.done === 0) {
		notice(`Run '${state.run}' has no analysed checkpoint yet: ` +
		    'the page fills in as soon as one is done.');
		emptyPanels();
		markReady();
		return;
	}
	notice(HAVE_PLOT ? '' : 'The chart library (uPlot) is not installed ' +
	    'in the web directory, so the curves and the spectrum are shown ' +
	    'as tables. Install it with `npm ci` and `make` in the source ' +
	    'tree (see README).');
	// One round of requests; the spectrum follows the selection (its
	// default matrix) without waiting for the histories.
	const spec = loadSelection().then(() => fetchSpectrum());
	await Promise.all([spec, loadHist().then(() => loadChartHist()),
	    loadSnr(), loadCkpts()]);
	mark('spectrumd-data');
	fillPickers();
	renderSelection();
	renderChart();
	renderHeat();
	let sr = await spec;
	if (sr.d && sr.d.module !== state.spec.module)
		sr = await fetchSpectrum();	/* the picker moved it */
	renderSpectrumResult(sr);
	mark('spectrumd-drawn');
	markReady();
}

let readyCount = 0;

function mark(name) {
	if (!document.documentElement.dataset.ready)
		performance.mark(name);
}

// Tells tests and the load-time probe that the page has drawn its data.
function markReady() {
	readyCount++;
	const root = document.documentElement;
	root.dataset.updates = String(readyCount);
	if (!root.dataset.ready) {
		performance.mark('spectrumd-ready');
		root.dataset.ready = '1';
	}
}

function emptyPanels() {
	state.sel = state.hist = state.chartHist = state.snr = null;
	renderSelection();
	renderChart();
	renderHeat();
	renderSpectrum(null);
}

async function loadSelection() {
	const p = { ...runArg() };
	if (state.tp !== null)
		p.top_percent = state.tp;
	try {
		state.sel = await api('/selection', p);
	} catch (e) {
		if (e.status !== 404)
			throw e;
		state.sel = null;
	}
	if (state.sel && state.tp === null) {
		state.tp = state.sel.top_percent;
		state.tpDefault = state.sel.top_percent;
	}
	$('s-tp').value = state.tp ?? 25;
	$('s-tp-v').textContent = `${state.tp ?? 25} %`;
}

const HEAT_POINTS = 400;	// heatmap columns at most (server-side)

async function loadHist() {
	state.hist = await api('/history', { ...runArg(), metric: 'snr',
	    max_points: HEAT_POINTS });
}

// The chart's curves: the heatmap's history when no filter is set (same
// downsampling), else /history?type=&match= (at most 2 points a pixel).
async function loadChartHist() {
	const w = $('chart').clientWidth || 800;
	const p = { ...runArg(), metric: 'snr',
	    max_points: Math.max(50, Math.min(HEAT_POINTS, Math.floor(w / 2))) };
	if (state.chart.type)
		p.type = state.chart.type;
	if (state.chart.match)
		p.match = state.chart.match;
	$('c-error').hidden = true;
	$('c-match').classList.remove('bad');
	if (!p.type && !p.match && state.hist &&
	    !state.hist.series.some((s) => s.points.length > p.max_points)) {
		state.chartHist = state.hist;
		return;
	}
	try {
		state.chartHist = await api('/history', p);
	} catch (e) {
		state.chartHist = { series: [] };
		$('c-error').hidden = false;
		$('c-error').textContent = e.message;
		if (e.status === 400)
			$('c-match').classList.add('bad');
	}
}

async function loadSnr() {
	state.snr = await api('/snr', { ...runArg(), step: 'latest' });
}

// The types in checkpoint order (the selection's, then the others).
function typeOrder() {
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

function fillPickers() {
	const types = typeOrder();
	const opts = (cur) => '<option value="">all types</option>' +
	    types.map((t) => `<option value="${esc(t)}"` +
	    `${t === cur ? ' selected' : ''}>${esc(t)}</option>`).join('');
	if (state.chart.type && !types.includes(state.chart.type))
		state.chart.type = '';
	if (state.heat.type && !types.includes(state.heat.type))
		state.heat.type = '';
	$('c-type').innerHTML = opts(state.chart.type);
	$('h-type').innerHTML = opts(state.heat.type);

	const mats = state.snr ? state.snr.matrices : [];
	const byType = new Map();
	for (const m of mats) {
		if (!byType.has(m.type))
			byType.set(m.type, []);
		byType.get(m.type).push(m.module);
	}
	if (!mats.some((m) => m.module === state.spec.module))
		state.spec.module = defaultSpecModule();
	$('p-mat').innerHTML = [...byType].map(([t, ms]) =>
	    `<optgroup label="${esc(t)}">` + ms.map((m) =>
	    `<option value="${esc(m)}"${m === state.spec.module ?
	    ' selected' : ''}>${esc(m)}</option>`).join('') + '</optgroup>')
	    .join('');
	const steps = doneCkpts().map((c) => c.step);
	if (state.spec.step !== 'latest' && !steps.includes(state.spec.step))
		state.spec.step = 'latest';
	$('p-step').innerHTML = '<option value="latest">latest</option>' +
	    steps.slice().reverse().map((s) => `<option value="${s}"` +
	    `${s === state.spec.step ? ' selected' : ''}>${s}</option>`)
	    .join('');
}

// The first selected matrix of the first type, else the first matrix.
function defaultSpecModule() {
	if (state.sel) {
		for (const mods of Object.values(state.sel.by_type))
			if (mods.length > 0)
				return mods[0];
	}
	return state.snr && state.snr.matrices.length > 0 ?
	    state.snr.matrices[0].module : null;
}

/* -------------------------------------------------------------- chart */

// Builds the aligned uPlot data of the chart history.
function chartData() {
	const hist = state.chartHist;
	const wall = state.chart.x === 'wall';
	const { all } = selSets();
	const xs = new Map();	// x → step
	for (const s of hist.series)
		for (const p of s.points)
			if ((wall ? p[1] : p[0]) !== null)
				xs.set(wall ? p[1] : p[0], p[0]);
	const X = [...xs.keys()].sort((a, b) => a - b);
	const at = new Map(X.map((x, i) => [x, i]));
	let maxLayer = 0;
	for (const s of hist.series)
		maxLayer = Math.max(maxLayer, s.layer);
	// Unselected first, so the selected curves are drawn on top.
	const order = hist.series.map((s, i) => i).sort((a, b) =>
	    all.has(hist.series[a].module) - all.has(hist.series[b].module) ||
	    a - b);
	const w = state.chart.ema;
	const rows = order.map((i) => {
		const s = hist.series[i];
		const raw = new Array(X.length).fill(null);
		s.points.forEach((p, j) => {
			const x = wall ? p[1] : p[0];
			if (x !== null)
				raw[at.get(x)] = pointValue(s, j);
		});
		// TensorBoard's debiased EMA over the finite values.
		const y = new Array(X.length).fill(null);
		let last = 0, n = 0;
		for (let j = 0; j < X.length; j++) {
			const v = raw[j];
			if (v === null || !Number.isFinite(v) ||
			    (state.chart.log && v <= 0))
				continue;
			if (w > 0) {
				last = last * w + (1 - w) * v;
				n++;
				y[j] = last / (1 - Math.pow(w, n));
			} else
				y[j] = v;
		}
		return { s, raw, y, selected: all.has(s.module) };
	});
	return { X, steps: X.map((x) => xs.get(x)), rows, maxLayer };
}

function renderChart() {
	const box = $('chart');
	const hist = state.chartHist;
	if (chartPlot) {
		chartPlot.destroy();
		chartPlot = null;
	}
	box.innerHTML = '';
	box.dataset.series = '0';
	if (!hist) {
		box.innerHTML = '<div class="fallback">No analysed checkpoint ' +
		    'yet.</div>';
		$('c-count').textContent = '';
		return;
	}
	const d = chartData();
	box.dataset.series = String(d.rows.length);
	box.dataset.points = String(d.X.length);
	const nsel = d.rows.filter((r) => r.selected).length;
	$('c-count').textContent = `${d.rows.length} matrices` +
	    (nsel ? `, ${nsel} selected` : '') + ` · ${d.X.length} ` +
	    `checkpoint${d.X.length === 1 ? '' : 's'}`;
	$('c-lmax').textContent = String(d.maxLayer);
	if (d.rows.length === 0) {
		box.innerHTML = '<div class="fallback">No matrix matches this ' +
		    'type and name.</div>';
		return;
	}
	chartRows = d;
	chartFocus = null;
	if (!HAVE_PLOT) {
		chartTable(box, d);
		return;
	}
	const wall = state.chart.x === 'wall';
	const many = d.rows.length > 40;
	const series = [{ label: wall ? 'wall time' : 'step' }];
	for (const r of d.rows) {
		const c = layerColor(r.s.layer, d.maxLayer);
		const anySel = d.rows.length > 1 && r.selected;
		series.push({
			label: r.s.module,
			stroke: rgba(c, anySel || !many ? 1 : 0.45),
			width: anySel ? 2.8 : many ? 1 : 1.5,
			spanGaps: true,
			points: { show: d.X.length <= 30, size: anySel ? 5 : 3,
			    fill: rgba(c) },
		});
	}
	const axis = {
		stroke: '#8d97a5',
		grid: { stroke: '#262c35', width: 1 },
		ticks: { stroke: '#2a313b', width: 1 },
		font: '11px system-ui, "DejaVu Sans", sans-serif',
	};
	const opts = {
		width: Math.max(300, box.clientWidth),
		height: 330,
		legend: { show: false },
		cursor: {
			focus: { prox: 24 },
			points: { one: true, size: 8 },
			drag: { x: true, y: false },
		},
		focus: { alpha: 0.25 },
		scales: {
			x: { time: wall },
			y: state.chart.log ? { distr: 3, log: 10 } : {},
		},
		axes: [
			{ ...axis, label: wall ? 'wall time' : 'step',
			    labelFont: axis.font, labelSize: 18 },
			{ ...axis, size: 58, label: state.chart.ema > 0 ?
			    `SNR (EMA ${state.chart.ema})` : 'SNR',
			    labelFont: axis.font, labelSize: 18,
			    values: (u, v) => v.map((x) => x === null ? '' :
			    fmt(x, 2)) },
		],
		series,
		hooks: {
			setSeries: [(u, i) => {
				chartFocus = i;
				chartTip(u);
			}],
			setCursor: [(u) => chartTip(u)],
		},
	};
	chartPlot = new uPlot(opts, [d.X, ...d.rows.map((r) => r.y)], box);
	chartPlot.over.addEventListener('mouseleave', hideTip);
	chartPlot.over.addEventListener('click', () => {
		const u = chartPlot;
		if (chartFocus === null || u.cursor.idx === null)
			return;
		openSpectrum(d.rows[chartFocus - 1].s.module,
		    d.steps[u.cursor.idx]);
	});
}

let chartRows = null;
let chartFocus = null;

function chartTip(u) {
	const idx = u.cursor.idx;
	if (idx === null || idx === undefined || chartFocus === null ||
	    chartFocus === undefined || u.cursor.left < 0) {
		hideTip();
		return;
	}
	const r = chartRows.rows[chartFocus - 1];
	if (!r)
		return;
	const x = chartRows.X[idx], step = chartRows.steps[idx];
	const lines = [`<span class="m">${esc(r.s.module)}</span>`,
	    `<span class="k">type</span> ${esc(r.s.type)} ` +
	    `<span class="k">layer</span> ${r.s.layer < 0 ? '—' : r.s.layer}`,
	    `<span class="k">step</span> ${step}` + (state.chart.x === 'wall' ?
	    ` <span class="k">at</span> ${fmtTime(x)}` : ''),
	    `<span class="k">SNR</span> <b>${fmt(r.raw[idx], 4)}</b>` +
	    (state.chart.ema > 0 ? ` <span class="k">EMA</span> ` +
	    `${fmt(r.y[idx], 4)}` : ''),
	    r.selected ? '<span class="k">selected at latest</span>' : ''];
	const rect = u.over.getBoundingClientRect();
	showTip(lines.filter(Boolean).join('<br>'), rect.left + u.cursor.left,
	    rect.top + u.cursor.top);
}

// Without uPlot: the chart's matrices as a table (first and latest SNR).
function chartTable(box, d) {
	const rows = d.rows.slice().reverse().map((r) => {
		const vals = r.raw.filter((v) => v !== null);
		return `<tr><td class="mono">${esc(r.s.module)}</td>` +
		    `<td>${r.s.layer < 0 ? '—' : r.s.layer}</td>` +
		    `<td>${fmt(vals[0])}</td><td>${fmt(vals[vals.length - 1])}` +
		    `</td><td>${r.selected ? '✓' : ''}</td></tr>`;
	}).join('');
	box.innerHTML = '<div class="fallback">Chart library not installed: ' +
	    'table view.</div><div class="tblwrap"><table class="tbl"><thead>' +
	    '<tr><th>matrix</th><th>layer</th><th>first SNR</th>' +
	    '<th>latest SNR</th><th>selected</th></tr></thead>' +
	    `<tbody>${rows}</tbody></table></div>`;
}

/* ------------------------------------------------------------ heatmap */

// The heatmap model: blocks (one per type, rows = layers; one for the
// matrices without a layer, rows = modules), columns = steps.
function heatModel() {
	const hist = state.hist;
	const stepSet = new Set();
	for (const s of hist.series)
		for (const p of s.points)
			stepSet.add(p[0]);
	const steps = [...stepSet].sort((a, b) => a - b);
	const col = new Map(steps.map((s, i) => [s, i]));
	const order = typeOrder();
	const byType = new Map();
	const other = [];
	for (const s of hist.series) {
		if (state.heat.type && s.type !== state.heat.type)
			continue;
		if (s.layer < 0) {
			other.push(s);
			continue;
		}
		if (!byType.has(s.type))
			byType.set(s.type, []);
		byType.get(s.type).push(s);
	}
	const blocks = [];
	const types = [...byType.keys()].sort((a, b) => order.indexOf(a) -
	    order.indexOf(b));
	for (const t of types) {
		const ser = byType.get(t);
		const layers = [...new Set(ser.map((s) => s.layer))]
		    .sort((a, b) => a - b);
		blocks.push({ title: t, layered: true, series: ser,
		    rows: layers.map((l) => ({ label: String(l),
		    series: ser.filter((s) => s.layer === l) })) });
	}
	if (other.length > 0)
		blocks.push({ title: 'no layer', layered: false, series: other,
		    rows: other.map((s) => ({ label: s.module,
		    series: [s] })) });
	// cells[b][row][col] = {module, value, rank, n, sel}
	const { always } = selSets();
	const tp = state.tp ?? 25;
	const typeOf = new Map();
	for (const s of hist.series) {
		if (!typeOf.has(s.type))
			typeOf.set(s.type, []);
		typeOf.get(s.type).push(s);
	}
	// Per step and type: rank by SNR (ties by layer) and the top ⌊n·p/100⌋.
	const rankOf = new Map();	// module → Int32Array(rank per col)
	const nOf = new Map();		// type → Int32Array(members per col)
	for (const [t, ser] of typeOf) {
		const n = new Int32Array(steps.length);
		const per = steps.map(() => []);
		for (const s of ser) {
			rankOf.set(s.module, new Int32Array(steps.length));
			s.points.forEach((p, j) => per[col.get(p[0])].push({
			    s, v: pointValue(s, j) }));
		}
		per.forEach((list, c) => {
			list.sort((a, b) => snrDesc(a.v, b.v) ||
			    a.s.layer - b.s.layer);
			n[c] = list.length;
			list.forEach((e, r) => {
				rankOf.get(e.s.module)[c] = r + 1;
			});
		});
		nOf.set(t, n);
	}
	let lo = Infinity, hi = -Infinity;
	let ncells = 0, nmarked = 0;
	for (const b of blocks) {
		b.cells = b.rows.map((row) => {
			const cells = new Array(steps.length).fill(null);
			for (const s of row.series)
				s.points.forEach((p, j) => {
					const c = col.get(p[0]);
					const v = pointValue(s, j);
					const rank = rankOf.get(s.module)[c];
					const n = nOf.get(s.type)[c];
					const keep = Math.floor(n * tp / 100);
					const sel = rank <= keep ||
					    always.has(s.module);
					cells[c] = { module: s.module, type: s.type,
					    layer: s.layer, step: p[0], v, rank,
					    n, sel };
					ncells++;
					nmarked += sel;
					if (Number.isFinite(v) && v > 0) {
						lo = Math.min(lo, v);
						hi = Math.max(hi, v);
					}
				});
			return cells;
		});
	}
	if (!(lo < hi)) {
		lo = Number.isFinite(lo) ? lo / 2 : 0.1;
		hi = Number.isFinite(hi) ? hi * 2 : 10;
	}
	return { steps, blocks, lo: Math.log10(lo), hi: Math.log10(hi), ncells,
	    nmarked };
}

// 256 viridis fill styles, so cells reuse parsed colour strings.
const VIRIDIS_LUT = Array.from({ length: 256 }, (_, i) =>
    rgba(ramp(VIRIDIS, i / 255)));
const NAN_FILL = '#55505a';

// The fill style of a heatmap cell (grey for NaN).
function cellFill(m, cell) {
	let t;
	if (state.heat.mode === 'rank') {
		t = cell.n > 1 ? 1 - (cell.rank - 1) / (cell.n - 1) : 1;
	} else {
		const v = cell.v;
		if (Number.isNaN(v))
			return NAN_FILL;
		t = v === Infinity ? 1 : !(v > 0) ? 0 :
		    (Math.log10(v) - m.lo) / (m.hi - m.lo);
	}
	return VIRIDIS_LUT[Math.round(255 * Math.min(1, Math.max(0, t)))];
}

// Lays the blocks out as small multiples that share the layer axis.
function heatGeometry(m, width) {
	const layered = m.blocks.filter((b) => b.layered);
	const other = m.blocks.find((b) => !b.layered);
	const ncol = Math.max(1, m.steps.length);
	const axisW = 34, gap = 14, titleH = 17, tickH = 16;
	const single = layered.length === 1;
	const minBlock = Math.max(single ? 200 : 110, Math.min(ncol * 3, 400));
	let per = Math.max(1, Math.min(layered.length, Math.floor((width -
	    axisW + gap) / (minBlock + gap))));
	// Balance the rows of blocks (7 types: 4 + 3, not 6 + 1).
	const nrow = Math.ceil(layered.length / per);
	per = nrow > 0 ? Math.ceil(layered.length / nrow) : 1;
	const blockW = (width - axisW - (per - 1) * gap) / per;
	const maxRows = Math.max(1, ...layered.map((b) => b.rows.length));
	const cellH = Math.max(3, Math.min(single ? 22 : 14, Math.floor(
	    (single ? 420 : 240) / maxRows)));
	const geo = [];
	let y = 0;
	for (let r = 0; r < nrow; r++) {
		const row = layered.slice(r * per, (r + 1) * per);
		const h = Math.max(...row.map((b) => b.rows.length)) * cellH;
		row.forEach((b, i) => geo.push({ b, x: axisW + i * (blockW + gap),
		    y: y + titleH, w: blockW, cw: blockW / ncol, ch: cellH,
		    axis: i === 0 }));
		y += titleH + h + tickH + 8;
	}
	if (other) {
		const labelW = Math.min(260, Math.max(90, 7 * Math.max(...other
		    .rows.map((row) => row.label.length))));
		const ch = Math.max(8, Math.min(16, cellH));
		const w = width - labelW - 6;
		geo.push({ b: other, x: labelW + 6, y: y + titleH, w,
		    cw: w / ncol, ch, axis: true, labelW });
		y += titleH + other.rows.length * ch + tickH + 8;
	}
	return { geo, height: Math.max(60, y), ncol };
}

function renderHeat() {
	const canvas = $('heat-canvas');
	const box = $('heat');
	const ctx = canvas.getContext('2d');
	if (!state.hist) {
		canvas.width = canvas.height = 0;
		heatLayout = null;
		canvas.dataset.cells = '0';
		return;
	}
	const m = heatModel();
	const width = Math.max(320, box.clientWidth);
	const g = heatGeometry(m, width);
	const dpr = window.devicePixelRatio || 1;
	canvas.width = Math.round(width * dpr);
	canvas.height = Math.round(g.height * dpr);
	canvas.style.width = `${width}px`;
	canvas.style.height = `${g.height}px`;
	ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
	ctx.clearRect(0, 0, width, g.height);
	ctx.font = '11px system-ui, "DejaVu Sans", sans-serif';
	ctx.textBaseline = 'middle';
	const curCol = m.steps.indexOf(state.curStep);
	for (const gb of g.geo) {
		const { b, x, y, cw, ch } = gb;
		const h = b.rows.length * ch;
		ctx.fillStyle = '#c6ced9';
		ctx.textAlign = 'left';
		ctx.fillText(b.title, x, y - 9);
		ctx.fillStyle = '#262c35';
		ctx.fillRect(x, y, gb.w, h);
		const mark = [];
		b.cells.forEach((cells, r) => cells.forEach((cell, c) => {
			if (!cell)
				return;
			const cx = x + c * cw, cy = y + r * ch;
			ctx.fillStyle = cellFill(m, cell);
			ctx.fillRect(cx, cy, Math.max(1, cw - (cw > 5 ? 1 : 0)),
			    ch - (ch > 5 ? 1 : 0));
			if (cell.sel)
				mark.push([cx, cy]);
		}));
		ctx.strokeStyle = '#ffffff';
		ctx.fillStyle = '#ffffff';
		ctx.lineWidth = 1.5;
		for (const [cx, cy] of mark) {
			if (cw >= 6 && ch >= 6)
				ctx.strokeRect(cx + 1.25, cy + 1.25,
				    Math.max(1, cw - 3.5), ch - 3.5);
			else
				ctx.fillRect(cx + cw / 2 - 1, cy + ch / 2 - 1,
				    2, 2);
		}
		if (curCol >= 0) {
			ctx.strokeStyle = '#5cc8ff';
			ctx.lineWidth = 1;
			ctx.strokeRect(x + curCol * cw + 0.5, y - 2.5, cw - 1,
			    h + 4);
		}
		// Row labels: layer numbers (every few rows), or module names.
		ctx.fillStyle = '#8d97a5';
		ctx.textAlign = 'right';
		const every = Math.ceil(12 / ch);
		b.rows.forEach((row, r) => {
			if (gb.labelW) {
				ctx.fillText(shorten(row.label, gb.labelW),
				    x - 6, y + (r + 0.5) * ch);
			} else if (gb.axis && (r % every === 0 ||
			    r === b.rows.length - 1) && (r % every === 0 ||
			    b.rows.length - 1 - r >= every / 2)) {
				ctx.fillText(row.label, x - 5, y + (r + 0.5) * ch);
			}
		});
		// Step ticks under the block.
		ctx.textAlign = 'center';
		const nt = Math.max(1, Math.floor(gb.w / 48));
		const stride = Math.max(1, Math.ceil(m.steps.length / nt));
		for (let c = 0; c < m.steps.length; c += stride)
			ctx.fillText(String(m.steps[c]), x + (c + 0.5) * cw,
			    y + h + 8);
	}
	ctx.save();
	ctx.translate(8, 40);
	ctx.rotate(-Math.PI / 2);
	ctx.fillStyle = '#8d97a5';
	ctx.textAlign = 'right';
	ctx.fillText('layer', 0, 0);
	ctx.restore();
	heatLayout = { m, g };
	canvas.dataset.cells = String(m.ncells);
	canvas.dataset.marked = String(m.nmarked);
	canvas.dataset.cols = String(m.steps.length);
	canvas.dataset.rows = String(m.blocks.reduce((n, b) => n +
	    b.rows.length, 0));
	heatScale(m);
}

function shorten(s, px) {
	const max = Math.floor(px / 6.3);
	return s.length <= max ? s : '…' + s.slice(s.length - max + 1);
}

function heatScale(m) {
	const el = $('h-scale');
	const c = document.createElement('canvas');
	c.width = 120;
	c.height = 10;
	const ctx = c.getContext('2d');
	for (let i = 0; i < 120; i++) {
		ctx.fillStyle = rgba(ramp(VIRIDIS, i / 119));
		ctx.fillRect(i, 0, 1, 10);
	}
	const [a, b] = state.heat.mode === 'rank' ? ['last', 'rank 1'] :
	    [fmt(Math.pow(10, m.lo)), fmt(Math.pow(10, m.hi))];
	el.innerHTML = `<span>${state.heat.mode === 'rank' ?
	    'rank within type' : 'SNR'}</span><span>${a}</span>`;
	el.appendChild(c);
	el.insertAdjacentHTML('beforeend', `<span>${b}</span>`);
}

// The heatmap cell under canvas point (x, y), or null.
function heatHit(x, y) {
	if (!heatLayout)
		return null;
	for (const gb of heatLayout.g.geo) {
		const r = Math.floor((y - gb.y) / gb.ch);
		const c = Math.floor((x - gb.x) / gb.cw);
		if (x >= gb.x && x < gb.x + gb.w && r >= 0 &&
		    r < gb.b.rows.length && c >= 0 && c < heatLayout.m.steps.length)
			return gb.b.cells[r][c];
	}
	return null;
}

// Every heatmap cell (for tests and the debugging console).
function heatCells() {
	if (!heatLayout)
		return [];
	const out = [];
	for (const b of heatLayout.m.blocks)
		for (const cells of b.cells)
			for (const c of cells)
				if (c)
					out.push({ module: c.module, step: c.step,
					    value: Number.isFinite(c.v) ? c.v :
					    String(c.v), rank: c.rank, selected: c.sel });
	return out;
}

// Where the cell of module at step is drawn (page coordinates), or null.
function heatCellRect(module, step) {
	if (!heatLayout)
		return null;
	const c = heatLayout.m.steps.indexOf(step);
	const box = $('heat-canvas').getBoundingClientRect();
	for (const gb of heatLayout.g.geo) {
		const r = gb.b.cells.findIndex((cells) => cells[c] &&
		    cells[c].module === module);
		if (c >= 0 && r >= 0)
			return { x: box.left + gb.x + c * gb.cw,
			    y: box.top + gb.y + r * gb.ch, w: gb.cw, h: gb.ch };
	}
	return null;
}

function heatEvents() {
	const canvas = $('heat-canvas');
	const pos = (e) => {
		const r = canvas.getBoundingClientRect();
		return [e.clientX - r.left, e.clientY - r.top];
	};
	canvas.addEventListener('mousemove', (e) => {
		const cell = heatHit(...pos(e));
		if (!cell) {
			hideTip();
			return;
		}
		showTip(`<span class="m">${esc(cell.module)}</span><br>` +
		    `<span class="k">step</span> ${cell.step} ` +
		    `<span class="k">layer</span> ${cell.layer < 0 ? '—' :
		    cell.layer}<br><span class="k">SNR</span> <b>` +
		    `${fmt(cell.v, 4)}</b> <span class="k">rank</span> ` +
		    `${cell.rank}/${cell.n} in ${esc(cell.type)}` +
		    (cell.sel ? `<br><span class="k">selected at ` +
		    `${state.tp ?? 25} %</span>` : ''), e.clientX, e.clientY);
	});
	canvas.addEventListener('mouseleave', hideTip);
	canvas.addEventListener('click', (e) => {
		const cell = heatHit(...pos(e));
		if (cell)
			openSpectrum(cell.module, cell.step);
	});
}

/* ---------------------------------------------------------- selection */

// The SNR of module at step from the heatmap history (or undefined).
function histValue(module, step) {
	if (!state.hist)
		return undefined;
	const s = state.hist.series.find((x) => x.module === module);
	if (!s)
		return undefined;
	const j = s.points.findIndex((p) => p[0] === step);
	return j < 0 ? undefined : pointValue(s, j);
}

function renderSelection() {
	const list = $('s-list');
	const sel = state.sel;
	if (!sel) {
		list.innerHTML = '<div class="muted">No selection yet.</div>';
		$('s-info').textContent = '';
		list.dataset.version = '';
		return;
	}
	const { always } = selSets();
	const maxLayer = state.hist ? Math.max(0, ...state.hist.series.map(
	    (s) => s.layer)) : 0;
	const layerOf = new Map((state.snr ? state.snr.matrices : []).map(
	    (m) => [m.module, m]));
	const members = new Map();
	for (const m of state.snr ? state.snr.matrices : [])
		members.set(m.type, (members.get(m.type) || 0) + 1);
	const item = (mod) => {
		const m = layerOf.get(mod);
		const c = layerColor(m ? m.layer : -1, maxLayer);
		return `<li data-module="${esc(mod)}" title="${esc(mod)}: ` +
		    'click for its spectrum"><span><span class="sw" ' +
		    `style="background:${rgba(c)}"></span>${esc(mod)}</span>` +
		    `<span class="v">${fmt(histValue(mod, sel.step))}</span></li>`;
	};
	const groups = [];
	if (always.size > 0)
		groups.push(['embeddings and head (always)', [...always], null]);
	for (const [t, mods] of Object.entries(sel.by_type))
		groups.push([t, mods, members.get(t)]);
	list.innerHTML = groups.map(([t, mods, n]) =>
	    `<div class="sel-group" data-type="${esc(t)}"><h3>${esc(t)}` +
	    `<span>${mods.length}${n ? ` of ${n}` : ''}</span></h3><ul>` +
	    mods.map(item).join('') + '</ul></div>').join('');
	list.dataset.version = String(sel.version);
	list.dataset.step = String(sel.step);
	// Share of the 2-D weights' parameters that the trainer unfreezes.
	let total = 0, chosen = 0;
	const { all } = selSets();
	for (const m of state.snr ? state.snr.matrices : []) {
		const n = m.rows * m.cols;
		total += n;
		if (all.has(m.module))
			chosen += n;
	}
	const share = total > 0 ? ` · ${fmt(100 * chosen / total, 3)} % of ` +
	    `the ${fmtCount(total)} analysed weights` : '';
	$('s-info').textContent = `${sel.modules.length} modules at step ` +
	    `${sel.step} · version ${sel.version}${share}`;
}

function fmtCount(n) {
	if (n >= 1e9)
		return `${fmt(n / 1e9)} G`;
	if (n >= 1e6)
		return `${fmt(n / 1e6)} M`;
	if (n >= 1e3)
		return `${fmt(n / 1e3)} k`;
	return String(n);
}

function message(text, bad = false) {
	const el = $('s-msg');
	el.textContent = text;
	el.classList.toggle('bad', bad);
	clearTimeout(message.t);
	message.t = setTimeout(() => {
		el.textContent = '';
	}, 4000);
}

async function copyYaml() {
	const p = { ...runArg(), format: 'yaml' };
	if (state.tp !== null)
		p.top_percent = state.tp;
	let yaml;
	try {
		yaml = await api('/selection', p, true);
	} catch (e) {
		message(`YAML: ${e.message}`, true);
		return;
	}
	try {
		await navigator.clipboard.writeText(yaml);
		message(`Copied ${yaml.split('\n').filter((l) =>
		    l.startsWith('- ')).length} patterns (Axolotl ` +
		    'unfrozen_parameters).');
		return;
	} catch (e) {
		/* not a secure context: fall back below */
	}
	const ta = document.createElement('textarea');
	ta.value = yaml;
	ta.style.position = 'fixed';
	ta.style.opacity = '0';
	document.body.appendChild(ta);
	ta.select();
	let ok = false;
	try {
		ok = document.execCommand('copy');
	} catch (e) {
		ok = false;
	}
	ta.remove();
	if (ok)
		message('Copied the Axolotl YAML.');
	else
		message('The browser refused the clipboard: open ' +
		    '/selection?format=yaml instead.', true);
}

async function downloadJson() {
	let snr;
	try {
		snr = await api('/snr', { ...runArg(), step: 'latest' });
	} catch (e) {
		message(`snr_results: ${e.message}`, true);
		return;
	}
	const blob = new Blob([snrResultsJson(snr)],
	    { type: 'application/json' });
	const a = document.createElement('a');
	a.href = URL.createObjectURL(blob);
	a.download = `snr_results_${snr.run}.json`;
	document.body.appendChild(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(a.href), 10000);
	message(`Saved ${a.download} (step ${snr.step}, ` +
	    `${snr.matrices.length} matrices).`);
}

/* ----------------------------------------------------------- spectrum */

function openSpectrum(module, step) {
	state.spec.module = module;
	const last = doneCkpts().at(-1);
	state.spec.step = last && step === last.step ? 'latest' : step;
	$('p-mat').value = module;
	$('p-step').value = String(state.spec.step);
	saveHash();
	loadSpectrum();
	$('spec').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

let specSeq = 0;

// Fetches the spectrum picked (the default matrix when none is):
// {seq, d} or {seq, err}.
async function fetchSpectrum() {
	const seq = ++specSeq;
	if (!state.spec.module)
		state.spec.module = defaultSpecModule();
	if (!state.spec.module)
		return { seq, d: null };
	try {
		return { seq, d: await api('/spectrum', { ...runArg(),
		    step: state.spec.step, matrix: state.spec.module }) };
	} catch (e) {
		return { seq, err: e };
	}
}

function renderSpectrumResult(r) {
	if (r.seq !== specSeq)
		return;		/* a newer request is on its way */
	$('p-error').hidden = !r.err;
	if (r.err) {
		$('p-error').textContent = r.err.message;
		renderSpectrum(null);
		return;
	}
	renderSpectrum(r.d);
}

async function loadSpectrum() {
	renderSpectrumResult(await fetchSpectrum());
}

function renderSpectrum(d) {
	const box = $('spec');
	if (specPlot) {
		specPlot.destroy();
		specPlot = null;
	}
	box.innerHTML = '';
	if (!d) {
		$('p-stats').innerHTML = '';
		box.dataset.k = '0';
		return;
	}
	const vals = d.values.map((v, i) => v !== null ? v :
	    d.values_class && d.values_class[i] === 'inf' ? Infinity : NaN);
	const tau = apiNumber(d, 'tau');
	const snr = apiNumber(d, 'snr');
	const stat = (k, v) => `<span><span class="k">${k}</span>` +
	    `<b>${v}</b></span>`;
	$('p-stats').innerHTML = [
	    stat('matrix', `<span class="mono">${esc(d.module)}</span>`),
	    stat('step', d.step), stat('k', d.k),
	    stat('MP rank', `${d.mp_rank} <span class="muted">(${fmt(100 *
	    d.mp_rank / Math.max(1, d.k))} %)</span>`),
	    stat('SNR', fmt(snr, 4)), stat('s₁', fmt(apiNumber(d, 's1'), 4)),
	    stat('σ̂', fmt(apiNumber(d, 'sigma_hat'), 4)),
	    stat('τ', fmt(tau, 4))].join('');
	box.dataset.k = String(d.k);
	if (!HAVE_PLOT) {
		box.innerHTML = '<div class="fallback">Chart library not ' +
		    `installed. ${d.mp_rank} of ${d.k} singular values lie ` +
		    `above τ = ${fmt(tau, 4)}; largest: ` +
		    vals.slice(0, 8).map((v) => fmt(v)).join(', ') + '.</div>';
		return;
	}
	const axis = {
		stroke: '#8d97a5',
		grid: { stroke: '#262c35', width: 1 },
		ticks: { stroke: '#2a313b', width: 1 },
		font: '11px system-ui, "DejaVu Sans", sans-serif',
		labelFont: '11px system-ui, "DejaVu Sans", sans-serif',
		labelSize: 18,
	};
	const hist = state.spec.view === 'hist';
	const SIG = '#5cc8ff', NOISE = '#6c7686';
	let data, scalesY, xlab, ylab;
	if (hist) {
		const fin = vals.filter(Number.isFinite);
		const top = Math.max(...fin, tau) * 1.02 || 1;
		const nb = Math.max(12, Math.min(80, Math.round(Math.sqrt(
		    fin.length) * 2)));
		const w = top / nb;
		const cnt = new Array(nb).fill(0);
		for (const v of fin)
			cnt[Math.min(nb - 1, Math.floor(v / w))]++;
		const X = cnt.map((c, i) => (i + 0.5) * w);
		data = [X, X.map((x, i) => x > tau ? cnt[i] : null),
		    X.map((x, i) => x <= tau ? cnt[i] : null)];
		scalesY = {};
		xlab = 'singular value';
		ylab = 'count';
	} else {
		const X = vals.map((v, i) => i + 1);
		const pos = (v) => Number.isFinite(v) && v > 0 ? v : null;
		data = [X, vals.map((v) => v > tau ? pos(v) : null),
		    vals.map((v) => v <= tau ? pos(v) : null)];
		scalesY = state.spec.log ? { distr: 3, log: 10 } : {};
		xlab = 'index (descending)';
		ylab = 'singular value';
	}
	const bars = uPlot.paths && uPlot.paths.bars ?
	    uPlot.paths.bars({ size: [0.9, 40] }) : undefined;
	const mk = (label, c) => ({ label, stroke: c, fill: c + 'cc',
	    width: 0, paths: bars, points: { show: false } });
	specPlot = new uPlot({
		width: Math.max(300, box.clientWidth),
		height: 260,
		legend: { show: false },
		cursor: { drag: { x: true, y: false }, points: { show: false } },
		scales: { x: { time: false }, y: scalesY },
		axes: [{ ...axis, label: xlab },
		    { ...axis, label: ylab, size: 52,
		    values: (u, v) => v.map((x) => x === null ? '' : fmt(x, 2)) }],
		series: [{}, mk('above τ (signal)', SIG),
		    mk('at or below τ (noise)', NOISE)],
		hooks: {
			draw: [(u) => drawTau(u, tau, hist)],
			setCursor: [(u) => specTip(u, data, hist)],
		},
	}, data, box);
	specPlot.over.addEventListener('mouseleave', hideTip);
}

// Draws τ: a dashed line across (sorted values) or up (histogram).
function drawTau(u, tau, vertical) {
	if (!Number.isFinite(tau))
		return;
	const ctx = u.ctx;
	const { left, top, width, height } = u.bbox;
	const p = u.valToPos(tau, vertical ? 'x' : 'y', true);
	if (!(vertical ? p >= left && p <= left + width :
	    p >= top && p <= top + height))
		return;
	ctx.save();
	ctx.strokeStyle = '#ffcc66';
	ctx.lineWidth = 1.5 * devicePixelRatio;
	ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
	ctx.beginPath();
	if (vertical) {
		ctx.moveTo(p, top);
		ctx.lineTo(p, top + height);
	} else {
		ctx.moveTo(left, p);
		ctx.lineTo(left + width, p);
	}
	ctx.stroke();
	ctx.setLineDash([]);
	ctx.fillStyle = '#ffcc66';
	ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
	ctx.fillText(`τ = ${fmt(tau, 4)}`, vertical ? p + 5 * devicePixelRatio :
	    left + width - 80 * devicePixelRatio, vertical ? top +
	    12 * devicePixelRatio : p - 5 * devicePixelRatio);
	ctx.restore();
}

function specTip(u, data, hist) {
	const i = u.cursor.idx;
	if (i === null || i === undefined || u.cursor.left < 0) {
		hideTip();
		return;
	}
	const v = data[1][i] ?? data[2][i];
	const above = data[1][i] !== null;
	const rect = u.over.getBoundingClientRect();
	const txt = hist ? `<span class="k">bin</span> ${fmt(data[0][i])}` +
	    `<br><span class="k">count</span> <b>${v ?? 0}</b>` :
	    `<span class="k">s<sub>${data[0][i]}</sub></span> <b>${fmt(v, 4)}` +
	    `</b><br><span class="k">${above ? 'above τ (signal)' :
	    'at or below τ (noise)'}</span>`;
	showTip(txt, rect.left + u.cursor.left, rect.top + u.cursor.top);
}

/* ---------------------------------------------------------------- tip */

function showTip(html, x, y) {
	const t = $('tip');
	t.innerHTML = html;
	t.hidden = false;
	const w = t.offsetWidth, h = t.offsetHeight;
	let left = x + 14, top = y + 14;
	if (left + w > window.innerWidth - 4)
		left = x - w - 14;
	if (top + h > window.innerHeight - 4)
		top = y - h - 14;
	t.style.left = `${Math.max(4, left)}px`;
	t.style.top = `${Math.max(4, top)}px`;
}

function hideTip() {
	$('tip').hidden = true;
}

/* --------------------------------------------------------- url state */

function readHash() {
	const h = new URLSearchParams(location.hash.slice(1));
	if (h.has('run'))
		state.run = h.get('run');
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
	if (h.get('hmode') === 'rank')
		state.heat.mode = 'rank';
	if (h.has('matrix'))
		state.spec.module = h.get('matrix');
	$('c-match').value = state.chart.match;
	$('c-log').checked = state.chart.log;
	$('c-ema').value = String(state.chart.ema);
	$('c-ema-v').textContent = String(state.chart.ema);
	$('c-x').value = state.chart.x;
	$('h-mode').value = state.heat.mode;
}

function saveHash() {
	const h = new URLSearchParams();
	if (state.runs.length > 1 && state.run)
		h.set('run', state.run);
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
	if (state.heat.mode === 'rank')
		h.set('hmode', 'rank');
	if (state.spec.module)
		h.set('matrix', state.spec.module);
	const s = h.toString();
	history.replaceState(null, '', s ? `#${s}` : location.pathname);
}

/* ------------------------------------------------------------ live */

let ckptTimer = null;
let refreshTimer = null;

function scheduleCkpts() {
	clearTimeout(ckptTimer);
	ckptTimer = setTimeout(() => loadCkpts().catch(report), 150);
}

function scheduleRefresh() {
	clearTimeout(refreshTimer);
	refreshTimer = setTimeout(() => refresh().catch(report), 250);
}

function setLive(mode, text) {
	const el = $('live');
	el.className = `live ${mode}`;
	el.querySelector('.txt').textContent = text;
}

function connectEvents() {
	if (typeof EventSource !== 'function') {
		setLive('off', 'no live updates');
		return;
	}
	const es = new EventSource('/events');
	let lost = false;
	es.onopen = () => {
		setLive('on', 'live');
		if (lost)
			scheduleRefresh();	// events missed while away
		lost = false;
	};
	es.onerror = () => {
		lost = true;
		setLive(es.readyState === EventSource.CLOSED ? 'off' : '',
		    'reconnecting');
	};
	const mine = (e) => {
		try {
			const d = JSON.parse(e.data);
			return d.run === state.run || !state.run ? d : null;
		} catch (err) {
			return null;
		}
	};
	es.addEventListener('progress', (e) => {
		const d = mine(e);
		if (d)
			onProgress(d);
	});
	es.addEventListener('checkpoint', (e) => {
		const d = mine(e);
		if (!d)
			return;
		if (d.status === 'done' || !state.run)
			scheduleRefresh();
		else
			scheduleCkpts();
	});
	es.addEventListener('selection', (e) => {
		if (mine(e))
			scheduleRefresh();
	});
	window.addEventListener('pagehide', () => es.close());
}

/* ----------------------------------------------------------- controls */

function debounce(fn, ms) {
	let t = null;
	return (...a) => {
		clearTimeout(t);
		t = setTimeout(() => fn(...a), ms);
	};
}

function report(e) {
	// Shown on the page; the console stays for the developer's own use.
	notice(`Cannot reach the daemon: ${e.message}`);
}

function bind() {
	$('run').addEventListener('change', (e) => {
		state.run = e.target.value;
		state.tp = null;
		state.spec.module = null;
		saveHash();
		refresh().catch(report);
	});
	$('c-type').addEventListener('change', async (e) => {
		state.chart.type = e.target.value;
		saveHash();
		await loadChartHist();
		renderChart();
	});
	$('c-match').addEventListener('input', debounce(async (e) => {
		state.chart.match = e.target.value.trim();
		saveHash();
		await loadChartHist();
		renderChart();
	}, 300));
	$('c-log').addEventListener('change', (e) => {
		state.chart.log = e.target.checked;
		saveHash();
		renderChart();
	});
	$('c-ema').addEventListener('input', (e) => {
		state.chart.ema = Number(e.target.value);
		$('c-ema-v').textContent = e.target.value;
		renderChartSoon();
	});
	$('c-ema').addEventListener('change', saveHash);
	$('c-x').addEventListener('change', (e) => {
		state.chart.x = e.target.value;
		saveHash();
		renderChart();
	});
	$('h-type').addEventListener('change', (e) => {
		state.heat.type = e.target.value;
		saveHash();
		renderHeat();
	});
	$('h-mode').addEventListener('change', (e) => {
		state.heat.mode = e.target.value;
		saveHash();
		renderHeat();
	});
	const tpFetch = debounce(async () => {
		await loadSelection();
		renderSelection();
		renderChart();
		renderHeat();
		saveHash();
	}, 120);
	$('s-tp').addEventListener('input', (e) => {
		state.tp = Number(e.target.value);
		$('s-tp-v').textContent = `${state.tp} %`;
		tpFetch();
	});
	$('s-copy').addEventListener('click', copyYaml);
	$('s-dl').addEventListener('click', downloadJson);
	$('s-list').addEventListener('click', (e) => {
		const li = e.target.closest('li[data-module]');
		if (li)
			openSpectrum(li.dataset.module, state.sel.step);
	});
	$('p-mat').addEventListener('change', (e) => {
		state.spec.module = e.target.value;
		saveHash();
		loadSpectrum();
	});
	$('p-step').addEventListener('change', (e) => {
		state.spec.step = e.target.value === 'latest' ? 'latest' :
		    Number(e.target.value);
		loadSpectrum();
	});
	$('p-view').addEventListener('change', (e) => {
		state.spec.view = e.target.value;
		$('p-log').disabled = state.spec.view === 'hist';
		loadSpectrum();
	});
	$('p-log').addEventListener('change', (e) => {
		state.spec.log = e.target.checked;
		loadSpectrum();
	});
	$('ck-strip').addEventListener('click', (e) => {
		const el = e.target.closest('.ck[data-step]');
		if (!el)
			return;
		const step = Number(el.dataset.step);
		state.curStep = state.curStep === step ? null : step;
		renderCkpts();
		renderHeat();
		if (state.curStep !== null && el.dataset.status === 'done' &&
		    state.spec.module)
			openSpectrum(state.spec.module, step);
	});
	heatEvents();
	let lastW = 0;
	new ResizeObserver(debounce(() => {
		const w = $('chart').clientWidth;
		if (w === lastW)
			return;
		lastW = w;
		if (chartPlot)
			chartPlot.setSize({ width: w, height: 330 });
		if (specPlot)
			specPlot.setSize({ width: $('spec').clientWidth,
			    height: 260 });
		renderHeat();
	}, 100)).observe(document.body);
}

const renderChartSoon = debounce(renderChart, 60);

/* --------------------------------------------------------------- start */

async function main() {
	readHash();
	bind();
	connectEvents();
	try {
		await refresh();
	} catch (e) {
		report(e);
		markReady();
	}
}

// A read-only handle for tests and the developer console.
window.spectrumd = {
	state,
	heatCells,
	heatCellRect,
	chartSeries: () => chartPlot ? chartPlot.series.slice(1).map((s) =>
	    s.label) : chartRows ? chartRows.rows.map((r) => r.s.module) : [],
	havePlot: HAVE_PLOT,
};

main();
