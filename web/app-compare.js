// app-compare.js: a second run (another fine-tune, or the base model's
// run) overlaid dashed on the curves and the training log. Its curves
// are those of the same matrices (by module name) and metric; a run with
// one checkpoint (a base model) is drawn as a horizontal reference at its
// value across the step axis.

import { api } from './app-api.js';
import { $, state, saveHash } from './app-state.js';
import { esc } from './app-view.js';

export const cmp = {
	hist: null,	// its /history for the chart's metric, type and match
	loss: null,	// its loss series (or null)
};

let seq = 0;		// the newest loadCompare()

// The runs offered: every run but the current one.
export function fillComparePicker() {
	const others = state.runs.filter((r) => r.name !== state.run);
	if (state.cmp && !others.some((r) => r.name === state.cmp))
		state.cmp = '';
	const sel = $('cmp-run');
	sel.innerHTML = '<option value="">none</option>' + others.map((r) =>
	    `<option value="${esc(r.name)}"${r.name === state.cmp ? ' selected' :
	    ''}>${esc(r.name)}</option>`).join('');
	sel.disabled = others.length === 0;
}

// Loads the compared run's curves (params: the chart's /history params,
// run left out) and loss; never throws (a failed request: no overlay).
export async function loadCompare(params) {
	const my = ++seq;
	cmp.hist = cmp.loss = null;
	if (!state.cmp)
		return;
	const run = state.cmp;
	const [hist, loss] = await Promise.all([
	    api('/history', { ...params, run }).catch(() => null),
	    api('/history', { run, metric: 'loss', max_points: 2000 }).then(
	    (h) => h.series[0] || null).catch(() => null)]);
	if (my !== seq)
		return;		/* a newer request answers */
	cmp.hist = hist;
	cmp.loss = loss && loss.points.length > 0 ? loss : null;
}

// The compared points of a series by step: { steps: Map step → value,
// flat: a single checkpoint (drawn across every step) }.
export function compareLine(points, value) {
	const steps = new Map();
	points.forEach((p, j) => steps.set(p[0], value(j)));
	return { steps, flat: points.length === 1 ? value(0) : undefined };
}

// The legend of solid (this run) and dashed (the compared one) lines.
export function compareLegend(el, what) {
	if (!state.cmp) {
		el.innerHTML = '';
		el.hidden = true;
		return;
	}
	el.hidden = false;
	el.innerHTML = `<span class="solid"></span>${esc(state.run)} ` +
	    `<span class="dashed"></span>${esc(state.cmp)}` +
	    (what ? ` <span class="muted">${esc(what)}</span>` : '');
}

// onChange() reloads and redraws what shows the compared run.
export function bindCompare(onChange) {
	$('cmp-run').addEventListener('change', (e) => {
		state.cmp = e.target.value;
		saveHash();
		onChange();
	});
}
