// app-api.js: the daemon's JSON API (DESIGN.md §5) as seen from the page.

// The answer app-boot.js fetched ahead for URL u (once; after its second
// round is asked for), or null; none after endPrefetch() (the page has
// drawn: later answers must be fresh).
async function takePrefetched(u) {
	const b = window.spectrumdPrefetch;
	if (!b)
		return null;
	const k = b.key(u);
	if (!b.pre.has(k) && b.pending)
		await b.pending.catch(() => null);
	const p = b.pre.get(k);
	b.pre.delete(k);
	return p || null;
}

export function endPrefetch() {
	if (window.spectrumdPrefetch)
		window.spectrumdPrefetch.pre.clear();
	window.spectrumdPrefetch = null;
}

// Fetches an API path with query params (empty values left out). JSON
// bodies are parsed; errors throw with the daemon's message.
export async function api(path, params = {}, text = false) {
	const u = apiUrl(path, params);
	const r = await (await takePrefetched(u) || fetch(u,
	    { cache: 'no-store' }));
	if (!r.ok) {
		let msg = `${r.status} ${r.statusText}`;
		try {
			const j = await r.json();
			msg = j.error.message;
		} catch (e) { /* not JSON */ }
		const err = new Error(msg);
		err.status = r.status;
		throw err;
	}
	return text ? r.text() : r.json();
}

// The URL of an API path with query params (empty values left out).
export function apiUrl(path, params = {}) {
	const u = new URL(path, location.origin);
	for (const [k, v] of Object.entries(params))
		if (v !== undefined && v !== null && v !== '')
			u.searchParams.set(k, String(v));
	return u;
}

// The value of a strict-JSON number field that the API may have written as
// null plus "<field>_class" ("inf", "-inf", "nan").
export function apiNumber(obj, field) {
	const v = obj[field];
	if (typeof v === 'number')
		return v;
	switch (obj[field + '_class']) {
	case 'inf':
		return Infinity;
	case '-inf':
		return -Infinity;
	case 'nan':
		return NaN;
	default:
		return null;
	}
}

// The value of a history point (non-finite classes restored).
export function pointValue(series, j) {
	const v = series.points[j][2];
	if (v !== null)
		return v;
	const c = series.classes ? series.classes[j] : null;
	return c === 'inf' ? Infinity : c === '-inf' ? -Infinity : NaN;
}
