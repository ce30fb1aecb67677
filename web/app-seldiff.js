// app-seldiff.js: the "Selection diff" panel: what /selection/diff says
// changes from one selection to another, modules in, out and moved in
// rank within their type: between two analysed steps of the run (by
// default the latest against the one before), or from another run's
// latest selection (a base model, another fine-tune) to this run's.

import { api } from './app-api.js';
import { $, state, doneCkpts } from './app-state.js';
import { esc } from './app-view.js';
import { openSpectrum } from './app-spectrum.js';

let diff = null;	// the last /selection/diff answer (or null)
let seq = 0;

// The from/to pickers: steps of the run, and the other runs for "from".
export function fillDiffPickers() {
	const steps = doneCkpts().map((c) => c.step).sort((a, b) => b - a);
	const keep = (el, opts) => {
		const v = el.value;
		el.innerHTML = opts;
		if ([...el.options].some((o) => o.value === v))
			el.value = v;
	};
	const others = state.runs.filter((r) => r.name !== state.run &&
	    r.counts && r.counts.done > 0);
	keep($('d-from'), '<option value="">the checkpoint before</option>' +
	    steps.map((s) => `<option value="step:${s}">step ${s}</option>`)
	    .join('') + others.map((r) => `<option value="run:${esc(r.name)}">` +
	    `run ${esc(r.name)} (latest)</option>`).join(''));
	keep($('d-to'), '<option value="">latest</option>' + steps.map((s) =>
	    `<option value="${s}">step ${s}</option>`).join(''));
}

// Fetches the diff the pickers name; never throws (shown in the panel).
export async function loadDiff() {
	const my = ++seq;
	const from = $('d-from').value, to = $('d-to').value;
	const p = { run: state.run, to };
	if (state.tp !== null)
		p.top_percent = state.tp;
	if (from.startsWith('step:'))
		p.from = from.slice(5);
	else if (from.startsWith('run:')) {
		p.run = from.slice(4);
		p.run2 = state.run;
	}
	let d = null, err = null;
	if (doneCkpts().length === 0)
		err = null;	/* nothing analysed yet: nothing to say */
	else if (!from && doneCkpts().length < 2)
		err = new Error('One analysed checkpoint: nothing before it to ' +
		    'compare with (pick another run as "from").');
	else
		try {
			d = await api('/selection/diff', p);
		} catch (e) {
			err = e;
		}
	if (my !== seq)
		return;		/* a newer request is on its way */
	diff = d;
	$('d-error').hidden = !err;
	$('d-error').textContent = err ? err.message : '';
}

export function renderDiff() {
	const body = $('d-body');
	const sum = $('d-sum');
	if (!diff) {
		body.innerHTML = '';
		sum.textContent = '';
		body.dataset.added = body.dataset.removed = body.dataset.moved = '';
		return;
	}
	const side = (s) => `${s.run === state.run ? '' : `${esc(s.run)} `}` +
	    `step ${s.step}`;
	sum.innerHTML = `from <b>${side(diff.from)}</b> to <b>${side(diff.to)}` +
	    `</b> at top ${diff.top_percent} %: <span class="in">` +
	    `+${diff.added.length} in</span>, <span class="out">` +
	    `−${diff.removed.length} out</span>, ${diff.moved.length} moved, ` +
	    `${diff.unchanged} unchanged`;
	const item = (m, right) => `<li data-module="${esc(m.module)}" ` +
	    `title="${esc(m.module)} (${esc(m.type)})"><span class="mono">` +
	    `${esc(m.module)}</span><span class="v">${right}</span></li>`;
	const col = (title, cls, list, right) => `<div class="${cls}"><h3>` +
	    `${title} <span>${list.length}</span></h3>` + (list.length ?
	    `<ul>${list.map((m) => item(m, right(m))).join('')}</ul>` :
	    '<div class="muted">none</div>') + '</div>';
	body.innerHTML =
	    col('In', 'd-in', diff.added, (m) => `#${m.rank}`) +
	    col('Out', 'd-out', diff.removed, (m) => `was #${m.rank}`) +
	    col('Rank moves', 'd-moved', diff.moved, (m) =>
	    `#${m.from_rank} → #${m.to_rank} ${m.to_rank < m.from_rank ?
	    '<span class="in">▲</span>' : '<span class="out">▼</span>'}`);
	body.dataset.added = String(diff.added.length);
	body.dataset.removed = String(diff.removed.length);
	body.dataset.moved = String(diff.moved.length);
}

export function bindDiff() {
	const reload = async () => {
		await loadDiff();
		renderDiff();
	};
	$('d-from').addEventListener('change', reload);
	$('d-to').addEventListener('change', reload);
	$('d-body').addEventListener('click', (e) => {
		const li = e.target.closest('li[data-module]');
		if (li && diff)
			openSpectrum(li.dataset.module, diff.to.step);
	});
}
