// app-curves.js: the curves panel: one uPlot curve per matrix of SNR or
// another per-matrix metric of /history (app-metrics.js), with type and
// regex filters, log y, EMA smoothing, step or wall time, the selected
// curves thick, and a second run overlaid dashed (app-compare.js); a table
// without uPlot.

import { api, pointValue } from './app-api.js';
import { $, state, uPlot, HAVE_PLOT, runArg, typeOrder, debounce,
    saveHash, HEAT_POINTS } from './app-state.js';
import { esc, fmt, fmtTime, layerColor, rgba, typeOptions, showTip,
    hideTip } from './app-view.js';
import { selSets } from './app-selection.js';
import { openSpectrum } from './app-spectrum.js';
import { METRICS, metricName, metricPositive } from './app-metrics.js';
import { cmp, compareLine, compareLegend, loadCompare } from
    './app-compare.js';

let chartPlot = null;
let histSeq = 0;	// the newest loadChartHist()
let chartRows = null;
let chartFocus = null;

export function fillCurvePickers() {
	if (!METRICS.some(([m]) => m === state.chart.metric))
		state.chart.metric = 'snr';
	$('c-metric').innerHTML = METRICS.map(([m, label]) =>
	    `<option value="${m}"${m === state.chart.metric ? ' selected' :
	    ''}>${esc(label)}</option>`).join('');
	const types = typeOrder();
	if (state.chart.type && !types.includes(state.chart.type))
		state.chart.type = '';
	$('c-type').innerHTML = typeOptions(types, state.chart.type);
}

// The chart's curves: the heatmap's history when no filter is set (same
// downsampling), else /history?type=&match= (at most 2 points a pixel).
export async function loadChartHist() {
	const my = ++histSeq;
	const w = $('chart').clientWidth || 800;
	const metric = state.chart.metric;
	const p = { ...runArg(), metric,
	    max_points: Math.max(50, Math.min(HEAT_POINTS, Math.floor(w / 2))) };
	if (state.chart.type)
		p.type = state.chart.type;
	if (state.chart.match)
		p.match = state.chart.match;
	$('c-error').hidden = true;
	$('c-match').classList.remove('bad');
	const theirs = { ...p };	/* the compared run's: run set there */
	delete theirs.run;
	const other = loadCompare(theirs);
	if (metric === 'snr' && !p.type && !p.match && state.hist &&
	    !state.hist.series.some((s) => s.points.length > p.max_points)) {
		state.chartHist = state.hist;
		await other;
		return;
	}
	try {
		const [h] = await Promise.all([api('/history', p), other]);
		if (my === histSeq)	/* else a newer request answers */
			state.chartHist = h;
	} catch (e) {
		if (my !== histSeq)
			return;
		state.chartHist = { series: [] };
		$('c-error').hidden = false;
		$('c-error').textContent = e.message;
		if (e.status === 400)
			$('c-match').classList.add('bad');
	}
}

// Builds the aligned uPlot data of the chart history, with the compared
// run's curves of the same matrices (step axis only) in cmpRows.
function chartData() {
	const hist = state.chartHist;
	const wall = state.chart.x === 'wall';
	const other = !wall && cmp.hist ? cmp.hist : null;
	const { all } = selSets();
	const xs = new Map();	// x → step
	for (const s of hist.series)
		for (const p of s.points)
			if ((wall ? p[1] : p[0]) !== null)
				xs.set(wall ? p[1] : p[0], p[0]);
	const own = xs.size;	/* this run's checkpoints */
	const theirs = new Map();	// module → compareLine
	for (const s of other ? other.series : []) {
		const line = compareLine(s.points, (j) => pointValue(s, j));
		theirs.set(s.module, line);
		if (line.flat === undefined)
			for (const step of line.steps.keys())
				xs.set(step, step);
	}
	const X = [...xs.keys()].sort((a, b) => a - b);
	const at = new Map(X.map((x, i) => [x, i]));
	let maxLayer = 0;
	for (const s of hist.series)
		maxLayer = Math.max(maxLayer, s.layer);
	// Unselected first, so the selected curves are drawn on top.
	const order = hist.series.map((s, i) => i).sort((a, b) =>
	    all.has(hist.series[a].module) - all.has(hist.series[b].module) ||
	    a - b);
	const rows = order.map((i) => {
		const s = hist.series[i];
		const raw = new Array(X.length).fill(null);
		s.points.forEach((p, j) => {
			const x = wall ? p[1] : p[0];
			if (x !== null)
				raw[at.get(x)] = pointValue(s, j);
		});
		if (own === 1 && other)	/* one checkpoint: a level line too */
			raw.fill(pointValue(s, 0));
		return { s, raw, y: smooth(raw), selected: all.has(s.module) };
	});
	const cmpRows = [];
	for (const r of rows) {
		const line = theirs.get(r.s.module);
		if (!line)
			continue;
		const raw = X.map((x) => line.flat !== undefined ? line.flat :
		    line.steps.has(x) ? line.steps.get(x) : null);
		cmpRows.push({ s: r.s, raw, y: smooth(raw), flat: line.flat !==
		    undefined, cmp: true });
	}
	return { X, steps: X.map((x) => xs.get(x)), rows, cmpRows, maxLayer,
	    own };
}

// TensorBoard's debiased EMA over the finite values of raw (none: raw's
// finite values), non-positive ones left out on a log axis.
function smooth(raw) {
	const w = state.chart.ema;
	const log = logY();
	const y = new Array(raw.length).fill(null);
	let last = 0, n = 0;
	for (let j = 0; j < raw.length; j++) {
		const v = raw[j];
		if (v === null || !Number.isFinite(v) || (log && v <= 0))
			continue;
		if (w > 0) {
			last = last * w + (1 - w) * v;
			n++;
			y[j] = last / (1 - Math.pow(w, n));
		} else
			y[j] = v;
	}
	return y;
}

// Log y when asked and the metric is positive by definition.
function logY() {
	return state.chart.log && metricPositive(state.chart.metric);
}

export function renderChart() {
	const box = $('chart');
	const hist = state.chartHist;
	$('c-title').textContent = `${metricName(state.chart.metric)} over time`;
	$('c-log').disabled = !metricPositive(state.chart.metric);
	box.dataset.metric = state.chart.metric;
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
	box.dataset.points = String(d.own);
	const nsel = d.rows.filter((r) => r.selected).length;
	$('c-count').textContent = `${d.rows.length} matrices` +
	    (nsel ? `, ${nsel} selected` : '') + ` · ${d.own} ` +
	    `checkpoint${d.own === 1 ? '' : 's'}`;
	$('c-lmax').textContent = String(d.maxLayer);
	box.dataset.compared = String(d.cmpRows.length);
	compareLegend($('c-cmp'), state.chart.x === 'wall' ? 'overlaid on ' +
	    'the step axis only' : d.cmpRows.some((r) => r.flat) ?
	    `${d.cmpRows.length} curves; one checkpoint: level lines` :
	    `${d.cmpRows.length} curves`);
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
	const name = metricName(state.chart.metric);
	const many = d.rows.length > 40;
	const series = [{ label: wall ? 'wall time' : 'step' }];
	for (const r of d.cmpRows) {
		const c = layerColor(r.s.layer, d.maxLayer);
		series.push({ label: `${r.s.module} · ${state.cmp}`,
		    stroke: rgba(c, many ? 0.55 : 0.85), width: many ? 1 : 1.4,
		    dash: [6, 4], spanGaps: true, points: { show: false } });
	}
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
			y: logY() ? { distr: 3, log: 10 } : {},
		},
		axes: [
			{ ...axis, label: wall ? 'wall time' : 'step',
			    labelFont: axis.font, labelSize: 18 },
			{ ...axis, size: 58, label: state.chart.ema > 0 ?
			    `${name} (EMA ${state.chart.ema})` : name,
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
	d.lines = d.cmpRows.concat(d.rows);	/* the order of the series */
	chartPlot = new uPlot(opts, [d.X, ...d.lines.map((r) => r.y)], box);
	chartPlot.over.addEventListener('mouseleave', hideTip);
	chartPlot.over.addEventListener('click', () => {
		const u = chartPlot;
		const r = chartFocus === null ? null : d.lines[chartFocus - 1];
		if (!r || r.cmp || u.cursor.idx === null)
			return;
		openSpectrum(r.s.module, d.steps[u.cursor.idx]);
	});
}

function chartTip(u) {
	const idx = u.cursor.idx;
	if (idx === null || idx === undefined || chartFocus === null ||
	    chartFocus === undefined || u.cursor.left < 0) {
		hideTip();
		return;
	}
	const r = chartRows.lines[chartFocus - 1];
	if (!r)
		return;
	const x = chartRows.X[idx], step = chartRows.steps[idx];
	const lines = [`<span class="m">${esc(r.s.module)}</span>` +
	    (r.cmp ? ` <span class="k">run</span> ${esc(state.cmp)}` +
	    (r.flat ? ' (one checkpoint)' : '') : ''),
	    `<span class="k">type</span> ${esc(r.s.type)} ` +
	    `<span class="k">layer</span> ${r.s.layer < 0 ? '—' : r.s.layer}`,
	    `<span class="k">step</span> ${step}` + (state.chart.x === 'wall' ?
	    ` <span class="k">at</span> ${fmtTime(x)}` : ''),
	    `<span class="k">${esc(metricName(state.chart.metric))}</span> ` +
	    `<b>${fmt(r.raw[idx], 4)}</b>` +
	    (state.chart.ema > 0 ? ` <span class="k">EMA</span> ` +
	    `${fmt(r.y[idx], 4)}` : ''),
	    r.selected ? '<span class="k">selected at latest</span>' : ''];
	const rect = u.over.getBoundingClientRect();
	showTip(lines.filter(Boolean).join('<br>'), rect.left + u.cursor.left,
	    rect.top + u.cursor.top);
}

// Without uPlot: the chart's matrices as a table (first and latest value).
function chartTable(box, d) {
	const name = esc(metricName(state.chart.metric));
	const rows = d.rows.slice().reverse().map((r) => {
		const vals = r.raw.filter((v) => v !== null);
		return `<tr><td class="mono">${esc(r.s.module)}</td>` +
		    `<td>${r.s.layer < 0 ? '—' : r.s.layer}</td>` +
		    `<td>${fmt(vals[0])}</td><td>${fmt(vals[vals.length - 1])}` +
		    `</td><td>${r.selected ? '✓' : ''}</td></tr>`;
	}).join('');
	box.innerHTML = '<div class="fallback">Chart library not installed: ' +
	    'table view.</div><div class="tblwrap"><table class="tbl"><thead>' +
	    `<tr><th>matrix</th><th>layer</th><th>first ${name}</th>` +
	    `<th>latest ${name}</th><th>selected</th></tr></thead>` +
	    `<tbody>${rows}</tbody></table></div>`;
}

// The modules of the curves drawn (for tests and the console).
export function chartSeries() {
	return chartRows ? chartRows.rows.map((r) => r.s.module) : [];
}

// The steps and values of the curve of module (cmp: the compared run's),
// or null (tests, the console).
export function chartLine(module, cmpRun = false) {
	const r = chartRows && (cmpRun ? chartRows.cmpRows : chartRows.rows)
	    .find((x) => x.s.module === module);
	return r ? { steps: chartRows.steps, values: r.raw } : null;
}

// The labels of the compared run's curves drawn (tests, the console).
export function compareSeries() {
	return chartPlot && chartRows ? chartPlot.series.slice(1, 1 +
	    chartRows.cmpRows.length).map((s) => s.label) : [];
}

// Follows the page's width.
export function resizeChart(w) {
	if (chartPlot)
		chartPlot.setSize({ width: w, height: 330 });
}

const renderChartSoon = debounce(renderChart, 60);

export function bindCurves() {
	$('c-metric').addEventListener('change', async (e) => {
		state.chart.metric = e.target.value;
		saveHash();
		await loadChartHist();
		renderChart();
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
}
