// app-spectrum.js: the spectrum panel: the singular values of one matrix
// at one step with τ, sorted or as a histogram (a table line without
// uPlot). Other panels open it with openSpectrum().

import { api, apiNumber } from './app-api.js';
import { $, state, uPlot, HAVE_PLOT, runArg, doneCkpts, saveHash } from
    './app-state.js';
import { esc, fmt, showTip, hideTip } from './app-view.js';
import { metricAt } from './app-metrics.js';

let specPlot = null;
let specSeq = 0;

export function openSpectrum(module, step) {
	state.spec.module = module;
	const last = doneCkpts().at(-1);
	state.spec.step = last && step === last.step ? 'latest' : step;
	$('p-mat').value = module;
	$('p-step').value = String(state.spec.step);
	saveHash();
	loadSpectrum();
	$('spec').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
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

// The matrix picker (by type) and the step picker (analysed steps).
export function fillSpectrumPickers() {
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

// Fetches the spectrum picked (the default matrix when none is):
// {seq, d} or {seq, err}.
export async function fetchSpectrum() {
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

export function renderSpectrumResult(r) {
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

let shown = null;	// the spectrum drawn (its stats are redrawn)

// The stats line of the spectrum drawn; alpha once its history is in.
export function renderSpectrumStats() {
	const d = shown;
	if (!d)
		return;
	const stat = (k, v) => `<span><span class="k">${k}</span>` +
	    `<b>${v}</b></span>`;
	$('p-stats').innerHTML = [
	    stat('matrix', `<span class="mono">${esc(d.module)}</span>`),
	    stat('step', d.step), stat('k', d.k),
	    stat('MP rank', `${d.mp_rank} <span class="muted">(${fmt(100 *
	    d.mp_rank / Math.max(1, d.k))} %)</span>`),
	    stat('SNR', fmt(apiNumber(d, 'snr'), 4)),
	    stat('s₁', fmt(apiNumber(d, 's1'), 4)),
	    stat('σ̂', fmt(apiNumber(d, 'sigma_hat'), 4)),
	    stat('τ', fmt(apiNumber(d, 'tau'), 4)),
	    stat('α', fmt(metricAt('alpha', d.module, d.step)))].join('');
}

export function renderSpectrum(d) {
	const box = $('spec');
	if (specPlot) {
		specPlot.destroy();
		specPlot = null;
	}
	box.innerHTML = '';
	if (!d) {
		shown = null;
		$('p-stats').innerHTML = '';
		box.dataset.k = '0';
		return;
	}
	const vals = d.values.map((v, i) => v !== null ? v :
	    d.values_class && d.values_class[i] === 'inf' ? Infinity : NaN);
	const tau = apiNumber(d, 'tau');
	shown = d;
	renderSpectrumStats();
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

// Follows the page's width.
export function resizeSpectrum() {
	if (specPlot)
		specPlot.setSize({ width: $('spec').clientWidth, height: 260 });
}

export function bindSpectrum() {
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
}
