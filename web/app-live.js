// app-live.js: live updates through /events (Server-Sent Events) and the
// header's live badge. What an event does is the caller's: on.progress(d)
// (false: reload the checkpoints), on.ckpts() and on.refresh(), the last
// two delayed and coalesced here, on.alert(d) for each alert and
// on.resync() when the stream comes back after a loss.

import { $, state, report } from './app-state.js';

let ckptTimer = null;
let refreshTimer = null;

function setLive(mode, text) {
	const el = $('live');
	el.className = `live ${mode}`;
	el.querySelector('.txt').textContent = text;
}

export function connectEvents(on) {
	const scheduleCkpts = () => {
		clearTimeout(ckptTimer);
		ckptTimer = setTimeout(() => on.ckpts().catch(report), 150);
	};
	const scheduleRefresh = () => {
		clearTimeout(refreshTimer);
		refreshTimer = setTimeout(() => on.refresh().catch(report), 250);
	};
	if (typeof EventSource !== 'function') {
		setLive('off', 'no live updates');
		return;
	}
	const es = new EventSource('/events');
	let lost = false;
	es.onopen = () => {
		setLive('on', 'live');
		if (lost) {			// events missed while away
			if (on.resync)
				on.resync();
			scheduleRefresh();
		}
		lost = false;
	};
	es.onerror = () => {
		lost = true;
		setLive(es.readyState === EventSource.CLOSED ? 'off' : '',
		    'reconnecting');
	};
	const mine = (e) => {
		try {
			const d = JSON.parse(e.data);
			return d.run === state.run || !state.run ? d : null;
		} catch (err) {
			return null;
		}
	};
	es.addEventListener('progress', (e) => {
		const d = mine(e);
		if (d && !on.progress(d))
			scheduleCkpts();
	});
	es.addEventListener('checkpoint', (e) => {
		const d = mine(e);
		if (!d)
			return;
		if (d.status === 'done' || !state.run)
			scheduleRefresh();
		else
			scheduleCkpts();
	});
	es.addEventListener('alert', (e) => {
		const d = mine(e);
		if (d && on.alert)
			on.alert(d);
	});
	es.addEventListener('selection', (e) => {
		if (mine(e))
			scheduleRefresh();
	});
	window.addEventListener('pagehide', () => es.close());
}
