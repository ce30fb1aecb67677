// app-checkpoints.js: the header (runs, version, backend) and the
// checkpoint bar with its live progress.

import { api } from './app-api.js';
import { $, state, runArg, currentRun, notice } from './app-state.js';
import { esc, fmtBytes, fmtSecs, fmtTime } from './app-view.js';

export async function loadRuns() {
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

export async function loadCkpts() {
	state.ckpts = await api('/checkpoints', runArg());
	renderCkpts();
}

export function renderCkpts() {
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
// False when the checkpoint is not on the bar yet (reload the list).
export function onProgress(d) {
	const c = state.ckpts.find((x) => x.step === d.step);
	if (!c)
		return false;
	c.status = d.done < d.total ? 'analyzing' : c.status;
	c.progress = { done: d.done, total: d.total, reused: d.reused || 0 };
	const el = document.querySelector(`.ck[data-step="${d.step}"]`);
	if (el)
		el.outerHTML = ckptChip(c);
	return true;
}

// A click on a chip picks its checkpoint (again: unpicks it); onPick(step,
// status) draws what depends on it.
export function bindCheckpoints(onPick) {
	$('ck-strip').addEventListener('click', (e) => {
		const el = e.target.closest('.ck[data-step]');
		if (!el)
			return;
		const step = Number(el.dataset.step);
		state.curStep = state.curStep === step ? null : step;
		renderCkpts();
		onPick(step, el.dataset.status);
	});
}
