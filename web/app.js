// app.js: the spectrumd dashboard's entry. Plain ES modules, no build
// step: each panel is a module (app-checkpoints.js, app-curves.js,
// app-heatmap.js, app-selection.js, app-spectrum.js, app-trainlog.js,
// app-seldiff.js, app-alerts.js; app-compare.js overlays a second run)
// over one state (app-state.js), the API (app-api.js) and the drawing
// kit (app-view.js); live updates come through app-live.js. This file
// loads the data in one round, draws every panel and wires them together.
// Reads the daemon's JSON API (DESIGN.md §5), draws the curves and the
// spectrum with uPlot (served from /assets/, installed by the build) and
// the layer × step heatmap on its own canvas. Without uPlot the page
// still works: tables instead of the charts. What is not needed for the
// first view (training log, alerts, the selection diff, the alpha
// history) loads after it is drawn.

import { $, state, HAVE_PLOT, runArg, currentRun, doneCkpts, notice,
    report, debounce, readHash, saveHash } from './app-state.js';
import { api, endPrefetch } from './app-api.js';
import { loadRuns, loadCkpts, onProgress, bindCheckpoints } from
    './app-checkpoints.js';
import { loadSelection, renderSelection, linkDownload, bindSelection } from
    './app-selection.js';
import { loadChartHist, renderChart, fillCurvePickers, chartSeries,
    chartLine, compareSeries, resizeChart, bindCurves } from './app-curves.js';
import { loadHist, renderHeat, fillHeatPickers, heatCells, heatCellRect,
    bindHeatmap } from './app-heatmap.js';
import { loadSelHist } from './app-selhist.js';
import { openSpectrum, fetchSpectrum, renderSpectrum, renderSpectrumResult,
    renderSpectrumStats, fillSpectrumPickers, resizeSpectrum, bindSpectrum }
    from './app-spectrum.js';
import { loadTrainLog, renderTrainLog, resizeTrainLog, bindTrainLog } from
    './app-trainlog.js';
import { fillComparePicker, bindCompare } from './app-compare.js';
import { fillDiffPickers, loadDiff, renderDiff, bindDiff } from
    './app-seldiff.js';
import { loadAlerts, renderAlerts, onAlert, resyncAlerts, bindAlerts }
    from './app-alerts.js';
import { preloadMetric, resetMetrics } from './app-metrics.js';
import { connectEvents } from './app-live.js';

/* ------------------------------------------------------------- loading */

let refreshing = null;
let refreshAgain = false;

// Reloads everything that depends on analysed checkpoints.
async function refresh() {
	if (refreshing) {
		refreshAgain = true;
		return refreshing;
	}
	refreshing = (async () => {
		do {
			refreshAgain = false;
			await refreshOnce();
		} while (refreshAgain);
	})();
	try {
		await refreshing;
	} finally {
		refreshing = null;
	}
}

async function refreshOnce() {
	await loadRuns();
	linkDownload();
	fillComparePicker();
	resetMetrics();
	if (!state.run) {
		markReady();
		return;
	}
	const run = currentRun();
	if (!run.counts || !(run.counts.done > 0)) {
		await loadCkpts();
		run.counts = { done: doneCkpts().length };
	}
	if (run.counts.done === 0) {
		notice(`Run '${state.run}' has no analysed checkpoint yet: ` +
		    'the page fills in as soon as one is done.');
		emptyPanels();
		markReady();
		return;
	}
	notice(HAVE_PLOT ? '' : 'The chart library (uPlot) is not installed ' +
	    'in the web directory, so the curves and the spectrum are shown ' +
	    'as tables. Install it with `npm ci` and `make` in the source ' +
	    'tree (see README).');
	// One round of requests; the spectrum follows the selection (its
	// default matrix) without waiting for the histories.
	const spec = loadSelection().then(() => fetchSpectrum());
	await Promise.all([spec, loadHist().then(() => loadChartHist()),
	    loadSelHist(), loadSnr(), loadCkpts()]);
	mark('spectrumd-data');
	fillCurvePickers();
	fillHeatPickers();
	fillSpectrumPickers();
	renderSelection();
	mark('spectrumd-selection');
	renderChart();
	mark('spectrumd-chart');
	renderHeat();
	mark('spectrumd-heat');
	let sr = await spec;
	if (sr.d && sr.d.module !== state.spec.module)
		sr = await fetchSpectrum();	/* the picker moved it */
	renderSpectrumResult(sr);
	mark('spectrumd-drawn');
	markReady();
	await afterDrawn();
}

// What loads after the first view: the alerts banner, the training log,
// the selection diff and the alpha history (tips, the spectrum's stats).
async function afterDrawn() {
	fillDiffPickers();
	await Promise.all([loadAlerts().then(renderAlerts),
	    loadTrainLog().then(renderTrainLog),
	    loadDiff().then(renderDiff),
	    preloadMetric('alpha').then(() => {
		if (state.heat.mode === 'alpha')
			renderHeat();
		renderSelection();
		renderSpectrumStats();
	    })]);
	mark('spectrumd-complete');
	document.documentElement.dataset.after = String(readyCount);
}

// The latest checkpoint's metrics (pickers, selection, type order).
async function loadSnr() {
	state.snr = await api('/snr', { ...runArg(), step: 'latest' });
}

let readyCount = 0;

// A performance mark of the first load (the load-time probe reads them).
function mark(name) {
	const root = document.documentElement.dataset;
	if (!root.ready || (name === 'spectrumd-complete' && !root.after))
		performance.mark(name);
}

// Tells tests and the load-time probe that the page has drawn its data.
function markReady() {
	readyCount++;
	const root = document.documentElement;
	root.dataset.updates = String(readyCount);
	endPrefetch();
	if (!root.dataset.ready) {
		performance.mark('spectrumd-ready');
		root.dataset.ready = '1';
	}
}

function emptyPanels() {
	state.sel = state.hist = state.chartHist = state.snr = null;
	state.selHist = null;
	renderSelection();
	renderChart();
	loadTrainLog().then(renderTrainLog).catch(report);
	loadAlerts().then(renderAlerts);
	renderHeat();
	renderSpectrum(null);
	fillDiffPickers();
	loadDiff().then(renderDiff);
}

/* ----------------------------------------------------------- controls */

// Wires the panels to each other and to the run picker.
function bind() {
	$('run').addEventListener('change', (e) => {
		state.run = e.target.value;
		state.tp = null;
		state.spec.module = null;
		saveHash();
		refresh().catch(report);
	});
	bindCurves();
	bindTrainLog();
	bindHeatmap();
	bindSelection(() => {
		renderChart();
		loadSelHist().then(() => {
			renderHeat();		/* the outlines */
			renderTrainLog();	/* the selection-change marks */
		}).catch(report);
		loadDiff().then(renderDiff);
	});
	bindCompare(async () => {
		await loadChartHist();
		renderChart();
		renderTrainLog();
	});
	bindDiff();
	bindAlerts();
	bindSpectrum();
	bindCheckpoints((step, status) => {
		renderHeat();
		if (state.curStep !== null && status === 'done' &&
		    state.spec.module)
			openSpectrum(state.spec.module, step);
	});
	let lastW = 0;
	new ResizeObserver(debounce(() => {
		const w = $('chart').clientWidth;
		if (w === lastW)
			return;
		lastW = w;
		resizeChart(w);
		resizeTrainLog(w);
		resizeSpectrum();
		renderHeat();
	}, 100)).observe(document.body);
}

/* --------------------------------------------------------------- start */

async function main() {
	readHash();
	bind();
	connectEvents({ progress: onProgress, ckpts: loadCkpts, refresh,
	    alert: onAlert, resync: resyncAlerts });
	try {
		await refresh();
	} catch (e) {
		report(e);
		markReady();
	}
}

// A read-only handle for tests and the developer console.
window.spectrumd = {
	state,
	heatCells,
	heatCellRect,
	chartSeries,
	chartLine,
	compareSeries,
	havePlot: HAVE_PLOT,
};

main();
