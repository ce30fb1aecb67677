// app-curves.js: the "SNR over time" panel: one uPlot curve per matrix
// (type and regex filters, log y, EMA smoothing, step or wall time, the
// selected curves thick), or a table without uPlot.

import { api, pointValue } from './app-api.js';
import { $, state, uPlot, HAVE_PLOT, runArg, typeOrder, debounce,
    saveHash } from './app-state.js';
import { esc, fmt, fmtTime, layerColor, rgba, typeOptions, showTip,
    hideTip } from './app-view.js';
import { selSets } from './app-selection.js';
import { HEAT_POINTS } from './app-heatmap.js';
import { openSpectrum } from './app-spectrum.js';

let chartPlot = null;
let chartRows = null;
let chartFocus = null;

export function fillCurvePickers() {
	const types = typeOrder();
	if (state.chart.type && !types.includes(state.chart.type))
		state.chart.type = '';
	$('c-type').innerHTML = typeOptions(types, state.chart.type);
}

// The chart's curves: the heatmap's history when no filter is set (same
// downsampling), else /history?type=&match= (at most 2 points a pixel).
export async function loadChartHist() {
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

export function renderChart() {
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

// The modules of the curves drawn (for tests and the console).
export function chartSeries() {
	return chartPlot ? chartPlot.series.slice(1).map((s) => s.label) :
	    chartRows ? chartRows.rows.map((r) => r.s.module) : [];
}

// Follows the page's width.
export function resizeChart(w) {
	if (chartPlot)
		chartPlot.setSize({ width: w, height: 330 });
}

const renderChartSoon = debounce(renderChart, 60);

export function bindCurves() {
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
