// app-selhist.js: the selection at every analysed step as the daemon
// served it, from /selection/history at the slider's top_percent (the
// stored selections, with the stickiness they were stored with, or, at
// another top_percent, the walk /selection makes). The heatmap outlines
// its members, the training log marks the steps where it changed. Nothing
// here selects: the daemon's select.c is the rule's one owner.

import { api } from './app-api.js';
import { state, runArg } from './app-state.js';

let seq = 0;

// Loads state.selHist for the run at state.tp (the daemon's default while
// null: the URL app-boot.js fetches ahead): null when the run has none or
// the daemon lacks the route. An answer overtaken by a newer request is
// dropped (the slider moves on).
export async function loadSelHist() {
	const my = ++seq;
	const p = { ...runArg() };
	if (state.tp !== null)
		p.top_percent = state.tp;
	let h = null;
	try {
		h = await api('/selection/history', p);
	} catch (e) {
		if (e.status !== 404)
			throw e;
	}
	if (my === seq)
		state.selHist = h ? members(h) : null;
}

// The members at each step, rebuilt from the answer's changes (each step:
// the one before, plus added, less removed; the first: added = all):
// { tp, stickiness, sel: step → Set of modules, changes: [{step, added,
// removed}] (the steps after the first where it changed) }.
function members(h) {
	const sel = new Map();
	const changes = [];
	let cur = new Set();
	h.steps.forEach((x, i) => {
		cur = new Set(cur);
		for (const m of x.added)
			cur.add(m);
		for (const m of x.removed)
			cur.delete(m);
		sel.set(x.step, cur);
		if (i > 0 && (x.added.length > 0 || x.removed.length > 0))
			changes.push({ step: x.step, added: x.added,
			    removed: x.removed });
	});
	return { tp: h.top_percent, stickiness: h.stickiness, sel, changes };
}

// Whether the daemon's selection at step holds module.
export function selectedAt(module, step) {
	const s = state.selHist ? state.selHist.sel.get(step) : undefined;
	return s !== undefined && s.has(module);
}

// The steps where the served selection changed (none before it loads).
export function selectionChanges() {
	return state.selHist ? state.selHist.changes : [];
}
