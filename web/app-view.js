// app-view.js: what every panel draws with: number and text formatting,
// the colour ramps and the hover tip. No state.

/* ----------------------------------------------------------- formatting */

// A number for people: 3 significant digits, exponent form when tiny or
// huge; +∞ / NaN for the API's non-finite classes.
export function fmt(v, digits = 3) {
	if (v === null || v === undefined)
		return '—';
	if (Number.isNaN(v))
		return 'NaN';
	if (v === Infinity)
		return '+∞';
	if (v === -Infinity)
		return '−∞';
	const a = Math.abs(v);
	if (a !== 0 && (a >= 1e5 || a < 1e-3))
		return v.toExponential(digits - 1);
	return String(Number(v.toPrecision(digits)));
}

export function fmtBytes(b) {
	if (b === null || b === undefined)
		return '—';
	const u = ['B', 'kB', 'MB', 'GB', 'TB'];
	let i = 0;
	while (b >= 1000 && i < u.length - 1) {
		b /= 1000;
		i++;
	}
	return `${fmt(b)} ${u[i]}`;
}

export function fmtSecs(s) {
	if (s === null || s === undefined)
		return '—';
	if (s < 60)
		return `${fmt(s, 2)} s`;
	if (s < 3600)
		return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
	return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export function fmtTime(t) {
	if (!t)
		return '—';
	return new Date(t * 1000).toLocaleString();
}

export function fmtCount(n) {
	if (n >= 1e9)
		return `${fmt(n / 1e9)} G`;
	if (n >= 1e6)
		return `${fmt(n / 1e6)} M`;
	if (n >= 1e3)
		return `${fmt(n / 1e3)} k`;
	return String(n);
}

export function esc(s) {
	return String(s).replace(/[&<>"']/g, (c) => ({
		'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'
	}[c]));
}

// Type options for pickers: all types, then each in checkpoint order.
export function typeOptions(types, cur) {
	return '<option value="">all types</option>' +
	    types.map((t) => `<option value="${esc(t)}"` +
	    `${t === cur ? ' selected' : ''}>${esc(t)}</option>`).join('');
}

// Orders two SNRs as the selection does: +inf highest, NaN last.
export function snrDesc(a, b) {
	const na = Number.isNaN(a), nb = Number.isNaN(b);
	if (na || nb)
		return na - nb;
	return b > a ? 1 : b < a ? -1 : 0;
}

/* ---------------------------------------------------------------- colours */

// Layer ramp (also the CSS .ramp gradient): blue → teal → green → yellow →
// orange → pink; readable on the dark background.
const LAYER_STOPS = ['#3f6fff', '#22b8cf', '#44d17a', '#d6d84a', '#ff9a3c',
    '#ff5a70'].map(hexRgb);
const NO_LAYER = [154, 163, 173];

// Viridis, 9 stops, for the heatmap.
export const VIRIDIS = ['#440154', '#472d7b', '#3b528b', '#2c728e',
    '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'].map(hexRgb);

function hexRgb(h) {
	return [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
}

// Interpolates the colour stops at t in [0, 1].
export function ramp(stops, t) {
	t = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0));
	const x = t * (stops.length - 1), i = Math.min(stops.length - 2,
	    Math.floor(x)), f = x - i;
	return stops[i].map((c, k) => Math.round(c + (stops[i + 1][k] - c) * f));
}

export function rgba(c, a = 1) {
	return `rgba(${c[0]},${c[1]},${c[2]},${a})`;
}

// The colour of a layer among maxLayer + 1 (grey without a layer).
export function layerColor(layer, maxLayer) {
	if (layer < 0)
		return NO_LAYER;
	return ramp(LAYER_STOPS, maxLayer > 0 ? layer / maxLayer : 0);
}

/* ---------------------------------------------------------------- tip */

export function showTip(html, x, y) {
	const t = document.getElementById('tip');
	t.innerHTML = html;
	t.hidden = false;
	const w = t.offsetWidth, h = t.offsetHeight;
	let left = x + 14, top = y + 14;
	if (left + w > window.innerWidth - 4)
		left = x - w - 14;
	if (top + h > window.innerHeight - 4)
		top = y - h - 14;
	t.style.left = `${Math.max(4, left)}px`;
	t.style.top = `${Math.max(4, top)}px`;
}

export function hideTip() {
	document.getElementById('tip').hidden = true;
}
