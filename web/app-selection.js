// app-selection.js: the unfreeze selection panel: the modules of
// /selection by type with the top-% slider, "Copy Axolotl YAML" and the
// snr_results_<run>.json download (served by the daemon,
// /snr_results.json). selSets() tells the other panels what is selected.

import { api, apiUrl, apiNumber, pointValue } from './app-api.js';
import { $, state, runArg, debounce, saveHash } from './app-state.js';
import { esc, fmt, fmtCount, layerColor, rgba } from './app-view.js';
import { openSpectrum } from './app-spectrum.js';
import { metricAt } from './app-metrics.js';

// The modules of the current selection, and those outside any type
// (embeddings and lm_head, added whatever their SNR).
export function selSets() {
	const all = new Set(state.sel ? state.sel.modules : []);
	const typed = new Set();
	if (state.sel)
		for (const mods of Object.values(state.sel.by_type))
			for (const m of mods)
				typed.add(m);
	const always = new Set([...all].filter((m) => !typed.has(m)));
	return { all, always };
}

export async function loadSelection() {
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

// The heavy-tail alpha of module at step: /snr's (m: its matrix there)
// when it is of that step.
function alphaOf(module, step, m) {
	if (state.snr && state.snr.step === step)
		return m ? apiNumber(m, 'alpha') : undefined;
	return metricAt('alpha', module, step);
}

export function renderSelection() {
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
		    `<span class="v">${fmt(histValue(mod, sel.step))}` +
		    `<span class="a" title="alpha">${fmt(alphaOf(mod,
		    sel.step, m))}</span></span></li>`;
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

// Points the download link at the current run's file.
export function linkDownload() {
	const a = $('s-dl');
	if (!state.run) {
		a.removeAttribute('href');
		return;
	}
	a.href = apiUrl('/snr_results.json', { run: state.run,
	    step: 'latest' }).href;
	a.download = `snr_results_${state.run}.json`;
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

// Fetches the link's file first, so that an error shows as a message
// rather than as a saved error body.
async function downloadJson(e) {
	const link = e.currentTarget;
	e.preventDefault();
	if (!link.href)
		return;
	let text;
	try {
		text = await api(link.href, {}, true);
	} catch (err) {
		message(`snr_results: ${err.message}`, true);
		return;
	}
	const a = document.createElement('a');
	a.href = URL.createObjectURL(new Blob([text],
	    { type: 'application/json' }));
	a.download = link.download;
	document.body.appendChild(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(a.href), 10000);
	// The file's top-level keys are the only lines indented by 4.
	message(`Saved ${a.download} ` +
	    `(${(text.match(/^ {4}"/gm) || []).length} matrices).`);
}

// onTopPercent() redraws what the slider's selection marks elsewhere.
export function bindSelection(onTopPercent) {
	const tpFetch = debounce(async () => {
		await loadSelection();
		renderSelection();
		onTopPercent();
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
}
