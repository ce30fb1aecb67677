// app-alerts.js: the alerts banner. The run's alerts (GET /alerts?run,
// newest first) on load and each `alert` event of /events (one object,
// docs: the alerts contract) show as a banner line: critical red,
// warning amber, with the message, the step and a few modules. A
// dismissed alert is not shown again (its id kept in localStorage). A
// daemon without /alerts (404) shows none, quietly.

import { api } from './app-api.js';
import { $, state } from './app-state.js';
import { esc } from './app-view.js';

const KEY = 'spectrumd.dismissedAlerts';
const SHOWN = 3;		// banner lines at most; the rest counted
const KEPT = 500;		// dismissed ids remembered at most

let alerts = [];		// the run's, newest first (by id)
let supported = true;		// false after a 404 from /alerts
let loadedFor = null;		// the run whose alerts are loaded

function dismissed() {
	try {
		const v = JSON.parse(localStorage.getItem(KEY) || '[]');
		return new Set(Array.isArray(v) ? v : []);
	} catch (e) {
		return new Set();	/* storage off or garbled: none */
	}
}

function dismiss(id) {
	const ids = [...dismissed()].filter((x) => x !== id);
	ids.push(id);
	try {
		localStorage.setItem(KEY, JSON.stringify(ids.slice(-KEPT)));
	} catch (e) {
		/* storage off: dismissed for this page only */
	}
	alerts = alerts.filter((a) => a.id !== id);
	renderAlerts();
}

// Loads the run's alerts once per run (later ones come as events; after
// resyncAlerts(), again); never throws (no banner on any failure).
export async function loadAlerts() {
	if (loadedFor === state.run)
		return;
	alerts = [];
	loadedFor = state.run;
	if (!supported || !state.run)
		return;
	try {
		const d = await api('/alerts', { run: state.run, limit: 50 });
		alerts = Array.isArray(d.alerts) ? d.alerts.filter(valid) : [];
	} catch (e) {
		if (e.status === 404 && /no route/.test(e.message))
			supported = false;	/* an older daemon */
		else
			loadedFor = null;	/* try again next time */
	}
}

// Events may have been missed (the stream was lost): load them again.
export function resyncAlerts() {
	loadedFor = null;
}

// Whether a is an alert object the banner can show.
function valid(a) {
	return a && typeof a === 'object' && Number.isFinite(a.id) &&
	    typeof a.message === 'string';
}

// An `alert` event of /events (its data, parsed).
export function onAlert(a) {
	if (!valid(a) || a.run !== state.run ||
	    alerts.some((x) => x.id === a.id))
		return;
	alerts.unshift(a);
	alerts.sort((x, y) => y.id - x.id);
	renderAlerts();
}

export function renderAlerts() {
	const box = $('alerts');
	const gone = dismissed();
	const show = alerts.filter((a) => !gone.has(a.id));
	box.hidden = show.length === 0;
	box.dataset.count = String(show.length);
	box.innerHTML = show.slice(0, SHOWN).map(line).join('') +
	    (show.length > SHOWN ? `<div class="alert-more">${show.length -
	    SHOWN} more alert${show.length - SHOWN === 1 ? '' : 's'}: ` +
	    'dismiss these to see them</div>' : '');
}

// One banner line.
function line(a) {
	const sev = a.severity === 'critical' ? 'critical' : 'warning';
	const mods = Array.isArray(a.modules) ? a.modules : [];
	const count = Number.isFinite(a.count) ? a.count : mods.length;
	const few = mods.slice(0, 3).map((m) => `<span class="mono">${esc(m)}` +
	    '</span>').join(', ');
	return `<div class="alert ${sev}" role="alert" data-id="${a.id}" ` +
	    `data-kind="${esc(a.kind || '')}" data-severity="${sev}">` +
	    `<span class="sev">${sev}</span><span class="msg">` +
	    `${esc(a.message)}</span>` +
	    (Number.isFinite(a.step) ? `<span class="step">step ${a.step}` +
	    '</span>' : '') +
	    (few ? `<span class="mods">${few}${count > 3 ? ` and ${count - 3} ` +
	    'more' : ''}</span>` : '') +
	    '<button type="button" class="dismiss" title="dismiss (not shown ' +
	    `again)" aria-label="dismiss alert ${a.id}">×</button></div>`;
}

export function bindAlerts() {
	$('alerts').addEventListener('click', (e) => {
		const b = e.target.closest('button.dismiss');
		if (b)
			dismiss(Number(b.closest('.alert').dataset.id));
	});
}
