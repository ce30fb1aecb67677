// app-trainlog.js: the "Training log" panel: the run's loss (left axis) and
// a second metric of its trainer_state.json log_history (right axis,
// learning rate by default) over steps, from /train_log and
// /history?metric=<name>, with the steps where the daemon's selection
// changed marked (/selection/history, app-selhist.js) and a second run's
// loss dashed (app-compare.js).
// Hidden when the run has no training log; a table without uPlot.

import { api } from './app-api.js';
import { $, state, uPlot, HAVE_PLOT, runArg } from './app-state.js';
import { esc, fmt, showTip, hideTip } from './app-view.js';
import { selectionChanges } from './app-selhist.js';
import { cmp, compareLine, compareLegend } from './app-compare.js';

let trainPlot = null;
let trainData = null;	// { names, loss, other }

// Loads the run's training-log names and the two series drawn; never
// throws (no log, or a failed request: no panel).
export async function loadTrainLog() {
	trainData = null;
	let names;
	try {
		names = (await api('/train_log', runArg())).metrics.map(
		    (m) => m.name);
	} catch (e) {
		return;		/* an older daemon: no panel */
	}
	if (!names.includes('loss'))
		return;
	const sel = $('t-metric');
	const want = sel.value && names.includes(sel.value) ? sel.value :
	    names.includes('learning_rate') ? 'learning_rate' :
	    names.find((n) => n !== 'loss') || '';
	sel.innerHTML = names.filter((n) => n !== 'loss').map((n) =>
	    `<option value="${esc(n)}"${n === want ? ' selected' : ''}>` +
	    `${esc(n)}</option>`).join('');
	const get = (m) => api('/history', { ...runArg(), metric: m,
	    max_points: 2000 }).then((h) => h.series[0] || null);
	try {
		const [loss, other] = await Promise.all([get('loss'),
		    want ? get(want) : null]);
		trainData = { names, loss, other, otherName: want };
	} catch (e) {
		trainData = null;	/* the panel stays hidden */
	}
}

// The steps of the analysed checkpoints drawn in the SNR chart.
function snrSteps() {
	const h = state.chartHist;
	const xs = new Set();
	if (h)
		for (const s of h.series)
			for (const p of s.points)
				xs.add(p[0]);
	return [...xs];
}

// A uPlot draw hook: a dashed vertical line at each step of marks.
function drawMarks(marks) {
	return (u) => {
		const ctx = u.ctx;
		const { top, height } = u.bbox;
		ctx.save();
		ctx.strokeStyle = 'rgba(92, 200, 255, 0.55)';
		ctx.lineWidth = Math.max(1, devicePixelRatio);
		ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
		for (const c of marks) {
			const x = Math.round(u.valToPos(c.step, 'x', true));
			if (x < u.bbox.left || x > u.bbox.left + u.bbox.width)
				continue;
			ctx.beginPath();
			ctx.moveTo(x + 0.5, top);
			ctx.lineTo(x + 0.5, top + height);
			ctx.stroke();
		}
		ctx.restore();
	};
}

// Draws the panel (or hides it when the run has no training log).
export function renderTrainLog() {
	const panel = $('p-train');
	const box = $('train');
	if (trainPlot) {
		trainPlot.destroy();
		trainPlot = null;
	}
	box.innerHTML = '';
	if (!trainData || !trainData.loss) {
		panel.hidden = true;
		box.dataset.points = '0';
		return;
	}
	panel.hidden = false;
	const { loss, other, otherName } = trainData;
	const at = new Map();	// step → [loss, other, the compared loss]
	const put = (step, i, v) => {
		if (!at.has(step))
			at.set(step, [null, null, null]);
		at.get(step)[i] = v;
	};
	for (const p of loss.points)
		put(p[0], 0, p[2]);
	if (other)
		for (const p of other.points)
			put(p[0], 1, p[2]);
	const theirs = cmp.loss ? compareLine(cmp.loss.points,
	    (j) => cmp.loss.points[j][2]) : null;
	if (theirs && theirs.flat === undefined)
		for (const [step, v] of theirs.steps)
			put(step, 2, v);
	const X = [...at.keys()].sort((a, b) => a - b);
	if (theirs && theirs.flat !== undefined)
		for (const x of X)
			at.get(x)[2] = theirs.flat;
	box.dataset.compared = theirs ? String(cmp.loss.points.length) : '0';
	compareLegend($('t-cmp'), theirs ? theirs.flat !== undefined ?
	    'loss, one point: a level line' : 'loss' : state.cmp ?
	    'has no loss logged' : '');
	const marks = selectionChanges();
	box.dataset.points = String(loss.points.length);
	box.dataset.metric = otherName || '';
	box.dataset.marks = marks.map((c) => c.step).join(',');
	$('t-count').textContent = `${loss.points.length} loss points` +
	    (other ? ` · ${other.points.length} ${otherName}` : '') +
	    ` · steps ${X[0]}–${X[X.length - 1]}`;
	$('t-marks').innerHTML = marks.length === 0 ? '' :
	    '<span class="vmark"></span> ' +
	    `selection changed at ${marks.length} step` +
	    `${marks.length === 1 ? '' : 's'} (top ${state.selHist.tp} %, ` +
	    `stickiness ${state.selHist.stickiness})`;
	$('t-marks').title = marks.map((c) => `step ${c.step}: +` +
	    `${c.added.length} −${c.removed.length}`).join('\n');
	if (!HAVE_PLOT) {
		const last = loss.points[loss.points.length - 1];
		box.innerHTML = '<div class="tblwrap"><table class="tbl"><thead>' +
		    '<tr><th>metric</th><th>first</th><th>latest</th></tr>' +
		    `</thead><tbody><tr><td>loss</td><td>${fmt(loss.points[0][2])}` +
		    `</td><td>${fmt(last[2])} (step ${last[0]})</td></tr>` +
		    '</tbody></table></div>';
		return;
	}
	// The step axis spans the SNR chart's checkpoints too.
	const steps = snrSteps().concat(X);
	const axis = {
		stroke: '#8d97a5',
		grid: { stroke: '#262c35', width: 1 },
		ticks: { stroke: '#2a313b', width: 1 },
		font: '11px system-ui, "DejaVu Sans", sans-serif',
	};
	const series = [{ label: 'step' },
	    { label: 'loss', stroke: '#e8a33d', width: 1.5, scale: 'y',
	    spanGaps: true, points: { show: false } }];
	const data = [X, X.map((x) => at.get(x)[0])];
	if (theirs) {
		series.push({ label: `loss · ${state.cmp}`, stroke: '#e8a33d',
		    width: 1.2, dash: [6, 4], scale: 'y', spanGaps: true,
		    points: { show: false } });
		data.push(X.map((x) => at.get(x)[2]));
	}
	if (other) {
		series.push({ label: otherName, stroke: '#5fb0e8', width: 1.2,
		    scale: 'y2', spanGaps: true, points: { show: false } });
		data.push(X.map((x) => at.get(x)[1]));
	}
	const axes = [
		{ ...axis, label: 'step', labelFont: axis.font, labelSize: 18 },
		{ ...axis, size: 58, label: 'loss', labelFont: axis.font,
		    labelSize: 18, scale: 'y',
		    values: (u, v) => v.map((x) => x === null ? '' : fmt(x, 3)) },
	];
	if (other)
		axes.push({ ...axis, side: 1, size: 64, label: otherName,
		    labelFont: axis.font, labelSize: 18, scale: 'y2',
		    grid: { show: false },
		    values: (u, v) => v.map((x) => x === null ? '' :
		    fmt(x, 2)) });
	trainPlot = new uPlot({
		width: Math.max(300, box.clientWidth),
		height: 200,
		legend: { show: false },
		cursor: { drag: { x: true, y: false } },
		scales: { x: { time: false, range: () =>
		    [Math.min(...steps), Math.max(...steps)] } },
		axes,
		series,
		hooks: { draw: [drawMarks(marks)],
		    setCursor: [(u) => markTip(u, marks)] },
	}, data, box);
	trainPlot.over.addEventListener('mouseleave', hideTip);
}

// Over a selection-change mark (within 4 px): what changed there.
function markTip(u, marks) {
	const left = u.cursor.left;
	const near = left === null || left < 0 ? null : marks.find((c) =>
	    Math.abs(u.valToPos(c.step, 'x') - left) <= 4);
	if (!near) {
		hideTip();
		return;
	}
	const list = (mods) => mods.slice(0, 4).map(esc).join('<br>') +
	    (mods.length > 4 ? `<br>… ${mods.length - 4} more` : '');
	const r = u.over.getBoundingClientRect();
	showTip(`<span class="k">selection changed at step</span> ` +
	    `<b>${near.step}</b><br><span class="k">in</span> ` +
	    `${near.added.length} <span class="k">out</span> ` +
	    `${near.removed.length}` + (near.added.length ? '<br><span ' +
	    `class="k">in:</span><br>${list(near.added)}` : '') +
	    (near.removed.length ? '<br><span class="k">out:</span><br>' +
	    list(near.removed) : ''), r.left + left, r.top + u.cursor.top);
}

// Follows the page's width.
export function resizeTrainLog(w) {
	if (trainPlot)
		trainPlot.setSize({ width: w, height: 200 });
}

export function bindTrainLog() {
	$('t-metric').addEventListener('change', async () => {
		await loadTrainLog();
		renderTrainLog();
	});
}
