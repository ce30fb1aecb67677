// app-metrics.js: the per-matrix metrics that /history serves besides SNR
// (docs/heavytail.md: the heavy-tail exponent alpha of the spectral
// density, alpha weighted by log₁₀ λ_max, the fit's KS distance and
// log₁₀ λ_max), their names for people, and their histories fetched on
// demand and kept per run (the heatmap's and the spectrum's "alpha beside
// SNR").

import { api, pointValue } from './app-api.js';
import { state, runArg, HEAT_POINTS } from './app-state.js';

export const METRICS = [
	['snr', 'SNR'],
	['alpha', 'alpha (heavy tail)'],
	['alpha_weighted', 'alpha weighted'],
	['ks', 'KS distance of the fit'],
	['log_spectral_norm', 'log₁₀ λmax'],
];

// The short name of a metric for axes and tips.
export function metricName(m) {
	return { snr: 'SNR', alpha: 'α', alpha_weighted: 'α·log₁₀λmax',
	    ks: 'KS', log_spectral_norm: 'log₁₀λmax' }[m] || m;
}

// Whether a log axis suits the metric (positive by definition).
export function metricPositive(m) {
	return m === 'snr' || m === 'alpha' || m === 'ks';
}

let cache = new Map();	// metric → Promise of { hist, at: module → step → v }
let cacheRun = null;

// Forgets the histories (new checkpoints, another run).
export function resetMetrics() {
	cache = new Map();
	cacheRun = null;
}

// The history of metric for every matrix (the heatmap's columns), once.
export function loadMetric(metric) {
	if (cacheRun !== state.run) {
		resetMetrics();
		cacheRun = state.run;
	}
	if (!cache.has(metric))
		cache.set(metric, api('/history', { ...runArg(), metric,
		    max_points: HEAT_POINTS }).then((hist) => {
			const at = new Map();
			for (const s of hist.series) {
				const m = new Map();
				s.points.forEach((p, j) => m.set(p[0],
				    pointValue(s, j)));
				at.set(s.module, m);
			}
			return { hist, at };
		}).catch((e) => {
			cache.delete(metric);
			throw e;
		}));
	return cache.get(metric);
}

let loaded = new Map();	// metric → { hist, at } once it has arrived

// Loads metric and remembers it for metricAt(); never throws (an older
// daemon without the metric: nothing shown).
export async function preloadMetric(metric) {
	try {
		loaded.set(metric, { run: state.run, ...await loadMetric(metric) });
	} catch (e) {
		loaded.delete(metric);
	}
}

// The value of metric for module at step, or undefined (not loaded yet).
export function metricAt(metric, module, step) {
	const d = loaded.get(metric);
	if (!d || d.run !== state.run)
		return undefined;
	const m = d.at.get(module);
	return m ? m.get(step) : undefined;
}

// The loaded history of metric (or null).
export function metricHist(metric) {
	const d = loaded.get(metric);
	return d && d.run === state.run ? d.hist : null;
}
