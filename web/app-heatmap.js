// app-heatmap.js: the layer × step heatmap on its own canvas: one block
// per type (rows = layers) and one for the matrices without a layer,
// coloured by SNR or rank within type (display only, from the history),
// selected cells outlined as the daemon served the selection at each step
// (/selection/history, app-selhist.js). It loads the history of every
// matrix (state.hist), which other panels read too.

import { api, pointValue } from './app-api.js';
import { $, state, runArg, typeOrder, saveHash, HEAT_POINTS } from
    './app-state.js';
import { esc, fmt, ramp, rgba, snrDesc, typeOptions, VIRIDIS, showTip,
    hideTip } from './app-view.js';
import { selectedAt } from './app-selhist.js';
import { openSpectrum } from './app-spectrum.js';
import { metricAt, metricHist, preloadMetric } from './app-metrics.js';

let heatLayout = null;

export async function loadHist() {
	state.hist = await api('/history', { ...runArg(), metric: 'snr',
	    max_points: HEAT_POINTS });
}

export function fillHeatPickers() {
	const types = typeOrder();
	if (state.heat.type && !types.includes(state.heat.type))
		state.heat.type = '';
	$('h-type').innerHTML = typeOptions(types, state.heat.type);
}

let ranksMemo = null;

// For hist (an SNR /history), the steps and each point's rank within its
// type at its step (highest SNR first, ties by layer; a display, not the
// selection): { steps, rank: module → Int32Array (0: no point), n: type →
// Int32Array (the type's points with an SNR that is not NaN) }.
function typeRanks(hist) {
	if (ranksMemo && ranksMemo.hist === hist)
		return ranksMemo.out;
	const steps = [...new Set(hist.series.flatMap((s) =>
	    s.points.map((p) => p[0])))].sort((a, b) => a - b);
	const col = new Map(steps.map((s, i) => [s, i]));
	const byType = new Map();
	for (const s of hist.series) {
		if (!byType.has(s.type))
			byType.set(s.type, []);
		byType.get(s.type).push(s);
	}
	const rank = new Map(), n = new Map();
	for (const [t, ser] of byType) {
		const per = steps.map(() => []);
		for (const s of ser) {
			rank.set(s.module, new Int32Array(steps.length));
			s.points.forEach((p, j) => per[col.get(p[0])].push({ s,
			    v: pointValue(s, j) }));
		}
		const nt = new Int32Array(steps.length);
		per.forEach((list, c) => {
			list.sort((a, b) => snrDesc(a.v, b.v) ||
			    a.s.layer - b.s.layer);
			list.forEach((e, r) => {
				rank.get(e.s.module)[c] = r + 1;
			});
			nt[c] = list.filter((e) => !Number.isNaN(e.v)).length;
		});
		n.set(t, nt);
	}
	const out = { steps, rank, n };
	ranksMemo = { hist, out };
	return out;
}

// The heatmap model: blocks (one per type, rows = layers; one for the
// matrices without a layer, rows = modules), columns = steps.
function heatModel() {
	const hist = state.hist;
	const rs = typeRanks(hist);
	const steps = rs.steps;
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
	// cells[b][row][col] = {module, value, rank, n, sel, a (alpha)}
	const alpha = state.heat.mode === 'alpha';
	let lo = Infinity, hi = -Infinity;
	let ncells = 0, nmarked = 0;
	for (const b of blocks) {
		b.cells = b.rows.map((row) => {
			const cells = new Array(steps.length).fill(null);
			for (const s of row.series)
				s.points.forEach((p, j) => {
					const c = col.get(p[0]);
					const v = pointValue(s, j);
					const rank = rs.rank.get(s.module)[c];
					const n = rs.n.get(s.type)[c];
					const sel = selectedAt(s.module, p[0]);
					cells[c] = { module: s.module, type: s.type,
					    layer: s.layer, step: p[0], v, rank,
					    n, sel, a: alpha ? metricAt('alpha',
					    s.module, p[0]) : undefined };
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
	    nmarked, alpha: alpha ? alphaRange() : null };
}

// The range of the finite alphas of the loaded history (colour scale).
function alphaRange() {
	const h = metricHist('alpha');
	let lo = Infinity, hi = -Infinity;
	for (const s of h ? h.series : [])
		for (const p of s.points)
			if (p[2] !== null) {
				lo = Math.min(lo, p[2]);
				hi = Math.max(hi, p[2]);
			}
	return lo < hi ? { lo, hi } : { lo: 1, hi: 8 };
}

// 256 viridis fill styles, so cells reuse parsed colour strings.
const VIRIDIS_LUT = Array.from({ length: 256 }, (_, i) =>
    rgba(ramp(VIRIDIS, i / 255)));
const NAN_FILL = '#55505a';

// The fill style of a heatmap cell (grey for NaN).
function cellFill(m, cell) {
	let t;
	if (m.alpha) {
		const a = cell.a;
		if (a === undefined || a === null || !Number.isFinite(a))
			return NAN_FILL;
		t = (a - m.alpha.lo) / (m.alpha.hi - m.alpha.lo);
	} else if (state.heat.mode === 'rank') {
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

export function renderHeat() {
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
		// One path per colour, one for the marks: few canvas calls.
		const byFill = new Map();
		const marks = new Path2D();
		const cwf = Math.max(1, cw - (cw > 5 ? 1 : 0));
		const chf = ch - (ch > 5 ? 1 : 0);
		const boxed = cw >= 6 && ch >= 6;
		b.cells.forEach((cells, r) => cells.forEach((cell, c) => {
			if (!cell)
				return;
			const cx = x + c * cw, cy = y + r * ch;
			const f = cellFill(m, cell);
			let p = byFill.get(f);
			if (!p)
				byFill.set(f, p = new Path2D());
			p.rect(cx, cy, cwf, chf);
			if (cell.sel && boxed)
				marks.rect(cx + 1.25, cy + 1.25, Math.max(1,
				    cw - 3.5), ch - 3.5);
			else if (cell.sel)
				marks.rect(cx + cw / 2 - 1, cy + ch / 2 - 1, 2, 2);
		}));
		for (const [f, p] of byFill) {
			ctx.fillStyle = f;
			ctx.fill(p);
		}
		ctx.strokeStyle = '#ffffff';
		ctx.fillStyle = '#ffffff';
		ctx.lineWidth = 1.5;
		if (boxed)
			ctx.stroke(marks);
		else
			ctx.fill(marks);
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
	const [a, b] = m.alpha ? [fmt(m.alpha.lo), fmt(m.alpha.hi)] :
	    state.heat.mode === 'rank' ? ['last', 'rank 1'] :
	    [fmt(Math.pow(10, m.lo)), fmt(Math.pow(10, m.hi))];
	el.innerHTML = `<span>${m.alpha ? 'alpha (grey: no fit)' :
	    state.heat.mode === 'rank' ? 'rank within type' : 'SNR'}</span>` +
	    `<span>${a}</span>`;
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
export function heatCells() {
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
export function heatCellRect(module, step) {
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

export function bindHeatmap() {
	$('h-type').addEventListener('change', (e) => {
		state.heat.type = e.target.value;
		saveHash();
		renderHeat();
	});
	$('h-mode').addEventListener('change', async (e) => {
		state.heat.mode = e.target.value;
		saveHash();
		if (state.heat.mode === 'alpha' && !metricHist('alpha'))
			await preloadMetric('alpha');
		renderHeat();
	});
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
		const a = metricAt('alpha', cell.module, cell.step);
		showTip(`<span class="m">${esc(cell.module)}</span><br>` +
		    `<span class="k">step</span> ${cell.step} ` +
		    `<span class="k">layer</span> ${cell.layer < 0 ? '—' :
		    cell.layer}<br><span class="k">SNR</span> <b>` +
		    `${fmt(cell.v, 4)}</b>` + (a !== undefined ?
		    ` <span class="k">α</span> <b>${fmt(a, 3)}</b>` : '') +
		    (cell.rank <= cell.n ? ` <span class="k">rank</span> ` +
		    `${cell.rank}/${cell.n} in ${esc(cell.type)}` : '') +
		    (cell.sel ? `<br><span class="k">selected at ` +
		    `${state.selHist.tp} %</span>` : ''), e.clientX, e.clientY);
	});
	canvas.addEventListener('mouseleave', hideTip);
	canvas.addEventListener('click', (e) => {
		const cell = heatHit(...pos(e));
		if (cell)
			openSpectrum(cell.module, cell.step);
	});
}
