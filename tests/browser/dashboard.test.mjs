// dashboard.test.mjs: the dashboard (web/) in a real headless Chromium,
// served by the real daemon watching a fixture run written by
// tests/spectrumd-fixture. Run by tests/browser.sh (which skips when node,
// playwright-core or Chromium is missing); prints TAP.
//
// Environment: top_srcdir, top_builddir (default "."), CHROMIUM (default
// /usr/bin/chromium), SPECTRUMD_LOAD_BUDGET_MS (default 500: median page
// load for 198 matrices × 50 checkpoints), SPECTRUMD_SKIP_LOADTIME=1 skips
// that part. Helpers: lib.mjs.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { BUILD, CHROMIUM, ARGS, MODEL, NMAT, startDaemon, startDaemonArgs,
    stopDaemon, tearDown, fixture, getJson, getText, until, doneCount,
    runsDone, watch, selHistory, outlineMismatches } from './lib.mjs';

const PY = '/usr/bin/python3';
const SHOT = path.join(BUILD, 'tests', 'dashboard.png');
const LOAD_BUDGET = Number(process.env.SPECTRUMD_LOAD_BUDGET_MS || 500);

const T = { timeout: 90000 };	// per test, so a hang fails instead
let tmp, daemon, base, browser, context, page;
const problems = [];	// console errors, page errors, failed requests

/* ------------------------------------------------------------- helpers */

const domModules = () => page.$$eval('#s-list li[data-module]',
    (els) => els.map((e) => e.dataset.module));

// The Python reference: json.dump(indent=4) of the flat SNR map.
function pythonSnrResults(snr) {
	return execFileSync(PY, ['-c', `
import json, sys
d = json.load(sys.stdin)
out = {}
# As spectrumd scan writes it: only usable SNRs, by layer (stable).
for m in sorted(d["matrices"], key=lambda m: m["layer"]):
    v = m["snr"]
    if v is None:
        v = {"inf": float("inf"), "-inf": float("-inf")}.get(
            m.get("snr_class"), float("nan"))
    if m.get("status", "ok") != "ok" or v != v:
        continue
    out[m["module"]] = {"snr": v, "type": m["type"]}
sys.stdout.write(json.dumps(out, indent=4))
`], { input: JSON.stringify(snr), encoding: 'utf8' });
}

/* --------------------------------------------------------------- setup */

before(async () => {
	tmp = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(),
	    'spd-browser-'));
	const run = path.join(tmp, 'run');
	fixture(['run', run, '--every', '0', '--count', '3', ...MODEL]);
	daemon = await startDaemon('demo', run, path.join(tmp, 'db'));
	base = daemon.base;
	await until('3 analysed checkpoints', () => doneCount(base, 3));
	// Playwright gives the browser a fresh profile (user data dir).
	browser = await chromium.launch({ executablePath: CHROMIUM,
	    headless: true, args: ARGS });
	context = await browser.newContext({ viewport: { width: 1440,
	    height: 900 }, acceptDownloads: true });
	await context.grantPermissions(['clipboard-read', 'clipboard-write'],
	    { origin: base });
	page = await context.newPage();
	watch(page, problems);
	await page.goto(base + '/');
	await page.waitForSelector('html[data-ready]', { timeout: 15000 });
}, { timeout: 120000 });

after(() => tearDown(browser, daemon, tmp));

/* ---------------------------------------------------------------- tests */

test('page loads with the chart library and the checkpoint bar',
    T, async () => {
	assert.equal(await page.evaluate(() => window.spectrumd.havePlot), true,
	    'uPlot missing from web/assets: run `npm ci` and `make`');
	const chips = await page.$$eval('#ck-strip .ck', (els) => els.map(
	    (e) => [Number(e.dataset.step), e.dataset.status]));
	const ck = await getJson(base, '/checkpoints');
	assert.deepEqual(chips, ck.map((c) => [c.step, c.status]));
	assert.equal(chips.length, 3);
	const health = await getJson(base, '/health');
	assert.match(await page.textContent('#backend'), new RegExp(
	    health.backend));
	assert.match(await page.textContent('#ck-summary'), /3 done/);
});

test('chart: one series per matrix of /history, type and regex filters', T,
    async () => {
	const all = await getJson(base, '/history?metric=snr');
	assert.equal(all.series.length, NMAT);
	assert.equal(await page.getAttribute('#chart', 'data-series'),
	    String(NMAT));
	assert.deepEqual((await page.evaluate(() =>
	    window.spectrumd.chartSeries())).sort(),
	    all.series.map((s) => s.module).sort());
	assert.equal(await page.$$eval('#chart canvas', (c) => c.length), 1);

	await page.selectOption('#c-type', 'mlp.down_proj');
	await page.waitForSelector('#chart[data-series="8"]');
	await page.fill('#c-match', 'layers\\.[0-2]\\.');
	await page.waitForSelector('#chart[data-series="3"]');
	const want = await getJson(base, '/history?metric=snr&type=' +
	    'mlp.down_proj&match=' + encodeURIComponent('layers\\.[0-2]\\.'));
	assert.deepEqual((await page.evaluate(() =>
	    window.spectrumd.chartSeries())).sort(),
	    want.series.map((s) => s.module).sort());
	assert.equal(await page.getAttribute('#chart', 'data-points'), '3');

	// Hover the middle point of the chart: the tooltip names a matrix.
	const over = await page.$('#chart .u-over');
	const b = await over.boundingBox();
	let shown = false;
	for (let y = 5; y < b.height && !shown; y += 3) {
		await page.mouse.move(b.x + b.width / 2, b.y + y);
		shown = await page.isVisible('#tip');
	}
	assert.ok(shown, 'no tooltip over the chart');
	const tip = await page.textContent('#tip');
	assert.match(tip, /model\.layers\.[0-2]\.mlp\.down_proj/);
	assert.match(tip, /step 200/);
	assert.match(tip, /SNR/);
	await page.mouse.move(0, 0);

	await page.fill('#c-match', '');
	await page.selectOption('#c-type', '');
	await page.waitForSelector(`#chart[data-series="${NMAT}"]`);
});

test('training log: loss and learning rate of log_history on a step axis',
    T, async () => {
	const names = (await getJson(base, '/train_log')).metrics.map(
	    (m) => m.name);
	assert.ok(names.includes('loss') && names.includes('learning_rate'),
	    `the fixture run logs loss and learning_rate: ${names}`);
	const loss = await getJson(base, '/history?metric=loss');
	assert.equal(loss.series.length, 1);
	await page.waitForSelector('#p-train:not([hidden])',
	    { timeout: 15000 });	/* drawn after data-ready */
	assert.equal(await page.getAttribute('#train', 'data-points'),
	    String(loss.series[0].points.length));
	assert.equal(await page.getAttribute('#train', 'data-metric'),
	    'learning_rate');
	assert.equal(await page.$$eval('#train canvas', (c) => c.length), 1);
	assert.match(await page.textContent('#t-count'), /loss points/);
	await page.selectOption('#t-metric', 'grad_norm');
	await page.waitForSelector('#train[data-metric="grad_norm"]');
	await page.selectOption('#t-metric', 'learning_rate');
	await page.waitForSelector('#train[data-metric="learning_rate"]');
});

// fmt() of web/app-view.js for values the fixtures give (3 digits).
const fmt3 = (v) => v === null || v === undefined ? '—' :
    Math.abs(v) !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3) ?
    v.toExponential(2) : String(Number(v.toPrecision(3)));

test('curves: the metric picker plots alpha and the other /history metrics',
    T, async () => {
	const opts = await page.$$eval('#c-metric option', (o) =>
	    o.map((e) => e.value));
	assert.deepEqual(opts, ['snr', 'alpha', 'alpha_weighted', 'ks',
	    'log_spectral_norm']);
	for (const m of opts.slice(1)) {
		await page.selectOption('#c-metric', m);
		await page.waitForSelector(`#chart[data-metric="${m}"]` +
		    `[data-series="${NMAT}"]`);
		const h = await getJson(base, `/history?metric=${m}`);
		assert.equal(h.series.length, NMAT);
		assert.deepEqual((await page.evaluate(() =>
		    window.spectrumd.chartSeries())).sort(),
		    h.series.map((s) => s.module).sort());
		// The curve drawn is the metric's, point by point.
		const s = h.series.find((x) => x.points.length === 3 &&
		    x.points.every((p) => p[2] !== null));
		assert.ok(s, `a matrix with 3 finite ${m} values`);
		const line = await page.evaluate((mod) =>
		    window.spectrumd.chartLine(mod), s.module);
		assert.deepEqual(line.steps, s.points.map((p) => p[0]));
		assert.deepEqual(line.values, s.points.map((p) => p[2]));
		assert.match(await page.textContent('#c-title'), / over time$/);
		// Log y only for metrics positive by definition.
		assert.equal(await page.isDisabled('#c-log'),
		    m === 'alpha_weighted' || m === 'log_spectral_norm', m);
		assert.match(await page.evaluate(() => location.hash),
		    new RegExp(`metric=${m}`));
	}
	assert.equal(await page.textContent('#c-title'), 'log₁₀λmax over time');
	await page.selectOption('#c-metric', 'snr');
	await page.waitForSelector(`#chart[data-metric="snr"]` +
	    `[data-series="${NMAT}"]`);
	assert.equal(await page.textContent('#c-title'), 'SNR over time');
});

test('alpha beside SNR: selection list, heatmap tip and colour, spectrum',
    T, async () => {
	await page.waitForSelector('html[data-after]');
	const snr = await getJson(base, '/snr?step=latest');
	const alpha = new Map(snr.matrices.map((m) => [m.module, m.alpha]));
	assert.ok([...alpha.values()].filter((a) => a !== null).length >
	    NMAT / 2, 'the fixture matrices have alphas');
	const shown = await page.$$eval('#s-list li[data-module]', (els) =>
	    els.map((e) => [e.dataset.module, e.querySelector('.v .a')
	    .textContent]));
	assert.ok(shown.length > 0);
	for (const [mod, a] of shown)
		assert.equal(a, fmt3(alpha.get(mod)), mod);

	// The heatmap's tip names alpha at the cell's step.
	const mod = 'model.layers.4.mlp.gate_proj';
	const ah = await getJson(base, '/history?metric=alpha&match=' +
	    encodeURIComponent(mod.replaceAll('.', '\\.')));
	const at200 = ah.series[0].points.find((p) => p[0] === 200)[2];
	await page.$eval('#heat-canvas', (e) =>
	    e.scrollIntoView({ block: 'center' }));
	const r = await page.evaluate((m) => window.spectrumd.heatCellRect(m,
	    200), mod);
	await page.mouse.move(r.x + r.w / 2, r.y + r.h / 2);
	await page.waitForSelector('#tip:not([hidden])');
	assert.match(await page.textContent('#tip'), new RegExp(
	    `step 200.*SNR [^α]+α ${fmt3(at200).replace('.', '\\.')}`, 's'));
	await page.mouse.move(0, 0);

	// Colour by alpha: every cell repainted, the scale says alpha.
	const cells = await page.getAttribute('#heat-canvas', 'data-cells');
	await page.selectOption('#h-mode', 'alpha');
	await page.waitForFunction(() => document.getElementById('h-scale')
	    .textContent.startsWith('alpha'));
	assert.equal(await page.getAttribute('#heat-canvas', 'data-cells'),
	    cells);
	await page.selectOption('#h-mode', 'snr');

	// The spectrum's stats: alpha of the matrix at that step.
	await page.selectOption('#p-mat', mod);
	await page.selectOption('#p-step', '200');
	await page.waitForFunction((m) => document.getElementById('p-stats')
	    .textContent.includes(m) && document.getElementById('p-stats')
	    .textContent.includes('step200'), mod);
	assert.match(await page.textContent('#p-stats'),
	    new RegExp(`α${fmt3(at200).replace('.', '\\.')}$`));
	await page.selectOption('#p-step', 'latest');
});

// The steps where the selection at tp changes, by /selection/diff between
// each analysed step and the one before (stickiness 0: the same rule).
async function changeSteps(b, q) {
	const steps = (await getJson(b, `/checkpoints?${q}`)).filter((c) =>
	    c.status === 'done').map((c) => c.step);
	const out = [];
	for (let i = 1; i < steps.length; i++) {
		const d = await getJson(b, `/selection/diff?${q}&from=` +
		    `${steps[i - 1]}&to=${steps[i]}`);
		if (d.added.length + d.removed.length > 0)
			out.push(steps[i]);
	}
	return out;
}

test('training log: the steps where the selection changed are marked', T,
    async () => {
	await page.waitForSelector('#p-train:not([hidden])');
	const want = (await selHistory(base)).changes;
	assert.ok(want.length > 0, 'the fixture moves the selection');
	assert.deepEqual(await changeSteps(base, 'run=demo'), want,
	    '/selection/history and /selection/diff agree');
	assert.equal(await page.getAttribute('#train', 'data-marks'),
	    want.join(','));
	const sel = await getJson(base, '/selection');
	assert.equal(sel.stickiness, 0);
	assert.match(await page.textContent('#t-marks'), new RegExp(
	    `selection changed at ${want.length} steps? \\(top 25 %, ` +
	    'stickiness 0\\)'));
	assert.match(await page.getAttribute('#t-marks', 'title'),
	    new RegExp(`^step ${want[0]}: \\+\\d+ −\\d+`));
	// Hovering a mark says what changed there.
	const d = await getJson(base, `/selection/diff?run=demo&to=${want[0]}`);
	const over = await page.$('#train .u-over');
	await over.scrollIntoViewIfNeeded();
	const b = await over.boundingBox();
	let tip = '';
	for (let x = 0; x < b.width && !tip.includes(`step ${want[0]}`);
	    x += 2) {
		await page.mouse.move(b.x + x, b.y + b.height / 2);
		tip = await page.isVisible('#tip') ?
		    await page.textContent('#tip') : '';
	}
	assert.match(tip, new RegExp(`selection changed at step ${want[0]}` +
	    `in ${d.added.length} out ${d.removed.length}`));
	await page.mouse.move(0, 0);
});

// The modules of one column of the diff panel.
const diffColumn = (cls) => page.$$eval(`#d-body .${cls} li`, (els) =>
    els.map((e) => e.dataset.module));

test('selection diff: modules in, out and moved, as /selection/diff says', T,
    async () => {
	await page.waitForSelector('#d-body[data-added]:not([data-added=""])');
	const check = async (q) => {
		const d = await getJson(base, `/selection/diff?${q}`);
		await until(`the panel at ${q}`, async () =>
		    await page.getAttribute('#d-body', 'data-moved') ===
		    String(d.moved.length) && JSON.stringify(await diffColumn(
		    'd-in')) === JSON.stringify(d.added.map((m) => m.module)));
		assert.deepEqual(await diffColumn('d-out'),
		    d.removed.map((m) => m.module));
		assert.deepEqual(await diffColumn('d-moved'),
		    d.moved.map((m) => m.module));
		const sum = await page.textContent('#d-sum');
		assert.ok(sum.includes(`+${d.added.length} in`) &&
		    sum.includes(`−${d.removed.length} out`) &&
		    sum.includes(`${d.unchanged} unchanged`), sum);
		return d;
	};
	const d = await check('run=demo&top_percent=25');
	assert.equal(d.from.step, 200);
	assert.equal(d.to.step, 300);
	await page.selectOption('#d-from', 'step:100');
	await page.selectOption('#d-to', '300');
	const d2 = await check('run=demo&from=100&to=300&top_percent=25');
	assert.match(await page.textContent('#d-sum'),
	    /from step 100 to step 300/);
	// A module of the diff opens its spectrum at the "to" step.
	const li = await page.$('#d-body li[data-module]');
	const mod = await li.getAttribute('data-module');
	await li.click();
	await page.waitForFunction((m) => document.getElementById('p-stats')
	    .textContent.includes(m), mod);
	assert.ok(d2.added.length + d2.removed.length + d2.moved.length > 0);
	await page.selectOption('#d-from', '');
	await page.selectOption('#d-to', '');
	await check('run=demo&top_percent=25');
});

test('alerts banner: severities, modules, dismissal kept; 404 shows none',
    T, async () => {
	const alerts = [
	    { id: 9, run: 'demo', step: 300, kind: 'nonfinite',
	      severity: 'critical', message: 'checkpoint-300: 1 matrix with ' +
	      'NaN/Inf weights', value: 1, threshold: 0, count: 1,
	      modules: ['model.layers.1.mlp.up_proj'], time: 1764670000.5 },
	    { id: 4, run: 'demo', step: 200, kind: 'snr_jump',
	      severity: 'warning', message: 'SNR jumped by more than 2x',
	      value: 3.4, threshold: 2, count: 5, modules: ['a', 'b', 'c',
	      'd', 'e'], time: 1764669000.5 }];
	const p = await context.newPage();
	const seen = [];
	watch(p, seen);
	await p.route('**/alerts?*', (r) => r.fulfill({ status: 200,
	    contentType: 'application/json', body: JSON.stringify({ alerts })
	}));
	// (Each reload waits for data-after: no request cut short.)
	await p.goto(base + '/');
	await p.waitForSelector('html[data-after]');
	await p.waitForSelector('#alerts:not([hidden]) .alert');
	assert.deepEqual(await p.$$eval('#alerts .alert', (els) => els.map(
	    (e) => [e.dataset.id, e.dataset.severity])), [['9', 'critical'],
	    ['4', 'warning']]);
	const text = await p.textContent('#alerts .alert[data-id="4"]');
	assert.match(text, /SNR jumped by more than 2x.*step 200.*a, b, c and 2 more/s);
	const colour = (id) => p.$eval(`#alerts .alert[data-id="${id}"]`,
	    (e) => getComputedStyle(e).backgroundColor);
	assert.notEqual(await colour(9), await colour(4));
	await p.click('#alerts .alert[data-id="9"] button.dismiss');
	await p.waitForSelector('#alerts .alert[data-id="9"]',
	    { state: 'detached' });
	await p.reload();
	await p.waitForSelector('html[data-after]');
	await p.waitForSelector('#alerts .alert[data-id="4"]');
	assert.equal(await p.$('#alerts .alert[data-id="9"]'), null,
	    'a dismissed alert came back');
	await p.click('#alerts .alert[data-id="4"] button.dismiss');
	await p.waitForSelector('#alerts', { state: 'hidden' });
	// A daemon without /alerts: no banner, no page error.
	await p.unroute('**/alerts?*');
	await p.evaluate(() => localStorage.clear());
	await p.route('**/alerts?*', (r) => r.fulfill({ status: 404,
	    contentType: 'application/json',
	    body: '{"error":{"code":"not_found","message":"no route /alerts"}}'
	}));
	await p.reload();
	await p.waitForSelector('html[data-after]');
	assert.equal(await p.isHidden('#alerts'), true);
	assert.deepEqual(seen, []);
	await p.close();
});

test('heatmap: one cell per matrix and step, marks = selection',
    T, async () => {
	const hist = await getJson(base, '/history?metric=snr&max_points=400');
	const npts = hist.series.reduce((n, s) => n + s.points.length, 0);
	assert.equal(npts, NMAT * 3);
	const canvas = '#heat-canvas';
	assert.equal(await page.getAttribute(canvas, 'data-cells'),
	    String(npts));
	assert.equal(await page.getAttribute(canvas, 'data-cols'), '3');
	assert.equal(await page.getAttribute(canvas, 'data-rows'),
	    String(NMAT));
	const cells = await page.evaluate(() => window.spectrumd.heatCells());
	const want = new Map();
	for (const s of hist.series)
		for (const p of s.points)
			want.set(`${s.module}@${p[0]}`, p[2]);
	assert.equal(cells.length, want.size);
	for (const c of cells)
		assert.equal(c.value, want.get(`${c.module}@${c.step}`),
		    `${c.module}@${c.step}`);

	// The marked cells of the selection's step are the selection, and
	// those of every step the daemon's selection there.
	const sel = await getJson(base, '/selection');
	const marked = cells.filter((c) => c.selected && c.step === sel.step)
	    .map((c) => c.module).sort();
	assert.deepEqual(marked, sel.modules.slice().sort());
	const out = await outlineMismatches(page, await selHistory(base));
	assert.deepEqual(out.bad, []);
	assert.equal(out.marked, 3 * sel.modules.length);

	// Every cell is painted: sample the canvas at each cell's centre.
	const painted = await page.evaluate(() => {
		const cv = document.getElementById('heat-canvas');
		const ctx = cv.getContext('2d');
		const box = cv.getBoundingClientRect();
		const k = cv.width / box.width;
		const colours = new Set();
		let blank = 0;
		for (const c of window.spectrumd.heatCells()) {
			const r = window.spectrumd.heatCellRect(c.module, c.step);
			const px = ctx.getImageData(Math.floor((r.x - box.left +
			    r.w / 2) * k), Math.floor((r.y - box.top + r.h / 2) * k),
			    1, 1).data;
			// Transparent, or the block's background (#262c35).
			if (px[3] === 0 || px.slice(0, 3).join() === '38,44,53')
				blank++;
			colours.add(px.slice(0, 3).join());
		}
		return { blank, colours: colours.size };
	});
	assert.equal(painted.blank, 0);
	assert.ok(painted.colours > 10, `${painted.colours} colours`);

	// Hovering a cell names it; clicking it opens its spectrum.
	// (The training-log panel above may push the cell out of view.)
	const mod = 'model.layers.5.mlp.up_proj';
	await page.$eval(canvas, (e) => e.scrollIntoView({ block: 'center' }));
	const r = await page.evaluate((m) => window.spectrumd.heatCellRect(m,
	    200), mod);
	assert.ok(r, 'cell not drawn');
	await page.mouse.move(r.x + r.w / 2, r.y + r.h / 2);
	await page.waitForSelector('#tip:not([hidden])');
	assert.match(await page.textContent('#tip'),
	    /model\.layers\.5\.mlp\.up_proj.*step 200/s);
	await page.mouse.click(r.x + r.w / 2, r.y + r.h / 2);
	await page.waitForFunction((m) => document.getElementById('p-stats')
	    .textContent.includes(m) && document.getElementById('p-stats')
	    .textContent.includes('step200'), mod);
	const spec = await getJson(base, `/spectrum?step=200&matrix=${mod}`);
	assert.equal(await page.getAttribute('#spec', 'data-k'),
	    String(spec.k));
	assert.match(await page.textContent('#p-stats'),
	    new RegExp(`MP rank${spec.mp_rank} \\(`));
	await page.mouse.move(0, 0);

	// Rank mode repaints the same cells.
	await page.selectOption('#h-mode', 'rank');
	assert.equal(await page.getAttribute(canvas, 'data-cells'),
	    String(npts));
	await page.selectOption('#h-mode', 'snr');
});

test('selection list equals /selection, follows the top_percent slider', T,
    async () => {
	const sel = await getJson(base, '/selection');
	assert.deepEqual(await domModules(), sel.modules);
	assert.equal(await page.inputValue('#s-tp'), String(sel.top_percent));
	const groups = await page.$$eval('#s-list .sel-group', (els) =>
	    els.map((e) => e.dataset.type));
	assert.deepEqual(groups.slice(1), Object.keys(sel.by_type));

	await page.$eval('#s-tp', (el) => {
		el.value = '50';
		el.dispatchEvent(new Event('input', { bubbles: true }));
	});
	const sel50 = await getJson(base, '/selection?top_percent=50');
	assert.ok(sel50.modules.length > sel.modules.length);
	await until('the list at 50 %', async () => JSON.stringify(
	    await domModules()) === JSON.stringify(sel50.modules), 10000);
	// The heatmap marks follow: at 50 %, 4 of 8 per type + 2 always, at
	// each step as /selection/history says.
	const hist50 = await selHistory(base, '&top_percent=50');
	await until('heatmap marks at 50 %', async () => {
		const c = await page.evaluate(() =>
		    window.spectrumd.heatCells());
		return c.filter((x) => x.selected && x.step === sel50.step)
		    .length === sel50.modules.length;
	}, 10000);
	assert.deepEqual((await outlineMismatches(page, hist50)).bad, []);

	await page.$eval('#s-tp', (el, v) => {
		el.value = v;
		el.dispatchEvent(new Event('input', { bubbles: true }));
	}, String(sel.top_percent));
	await until('the list back at the default', async () =>
	    JSON.stringify(await domModules()) === JSON.stringify(sel.modules),
	    10000);
});

test('copy Axolotl YAML puts /selection?format=yaml on the clipboard', T,
    async () => {
	const yaml = await getText(base, '/selection?format=yaml');
	assert.match(yaml, /^unfrozen_parameters:\n/);
	await page.click('#s-copy');
	await page.waitForSelector('#s-msg:has-text("Copied")');
	assert.equal(await page.evaluate(() => navigator.clipboard.readText()),
	    yaml);
});

test('download: the link is /snr_results.json, what Python json.dump writes',
    { ...T, skip: fs.existsSync(PY) ? false : `${PY} missing` },
    async () => {
	const href = await page.getAttribute('#s-dl', 'href');
	const u = new URL(href, base);
	assert.equal(u.origin + u.pathname, `${base}/snr_results.json`);
	assert.equal(u.searchParams.get('run'), 'demo');
	assert.equal(u.searchParams.get('step'), 'latest');
	assert.equal(await page.getAttribute('#s-dl', 'download'),
	    'snr_results_demo.json');
	const r = await fetch(u);
	assert.equal(r.status, 200, `${href}: ${r.status}`);
	const want = pythonSnrResults(await getJson(base, '/snr?step=latest'));
	assert.equal(await r.text(), want);
	const [dl] = await Promise.all([page.waitForEvent('download'),
	    page.click('#s-dl')]);
	assert.equal(dl.suggestedFilename(), 'snr_results_demo.json');
	assert.equal(fs.readFileSync(await dl.path(), 'utf8'), want);
	assert.equal(Object.keys(JSON.parse(want)).length, NMAT);
	await page.waitForSelector(`#s-msg:has-text("${NMAT} matrices")`);
});

test('spectrum view: sorted values and histogram with τ', T, async () => {
	const mod = 'model.layers.2.self_attn.q_proj';
	await page.selectOption('#p-mat', mod);
	await page.selectOption('#p-step', 'latest');
	const spec = await getJson(base, `/spectrum?matrix=${mod}`);
	await page.waitForFunction((m) => document.getElementById('p-stats')
	    .textContent.includes(m), mod);
	assert.equal(await page.getAttribute('#spec', 'data-k'),
	    String(spec.k));
	const stats = await page.textContent('#p-stats');
	assert.match(stats, new RegExp(`k${spec.k}`));
	assert.match(stats, new RegExp(`MP rank${spec.mp_rank} \\(`));
	assert.equal(await page.$$eval('#spec canvas', (c) => c.length), 1);
	await page.selectOption('#p-view', 'hist');
	await page.waitForFunction(() => document.querySelector('#spec canvas'));
	await page.selectOption('#p-view', 'sorted');
});

test('live: a new checkpoint updates the page through /events', T,
    async () => {
	const before = await getJson(base, '/selection');
	await page.evaluate(() => {
		window.__noReload = 1;
	});
	const updates = Number(await page.getAttribute('html', 'data-updates'));
	fixture(['run', path.join(tmp, 'run'), '--every', '0', '--count', '1',
	    '--start-step', '400', '--via-tmp', ...MODEL]);
	await until('step 400 analysed', () => doneCount(base, 4));
	const sel = await getJson(base, '/selection');
	assert.equal(sel.step, 400);
	assert.notDeepEqual(sel.modules, before.modules,
	    'the fixture should move the selection');
	await page.waitForSelector('#s-list[data-step="400"]',
	    { timeout: 15000 });
	assert.deepEqual(await domModules(), sel.modules);
	await page.waitForSelector('.ck[data-step="400"][data-status="done"]');
	assert.equal(await page.$$eval('#ck-strip .ck', (e) => e.length), 4);
	assert.equal(await page.getAttribute('#heat-canvas', 'data-cols'), '4');
	assert.equal(await page.getAttribute('#heat-canvas', 'data-cells'),
	    String(NMAT * 4));
	assert.equal(await page.getAttribute('#chart', 'data-points'), '4');
	assert.ok(Number(await page.getAttribute('html', 'data-updates')) >
	    updates);
	assert.equal(await page.evaluate(() => window.__noReload), 1,
	    'the page reloaded');
	assert.match(await page.textContent('#live'), /live/);
});

test('an incomplete checkpoint shows on the strip with its reason', T,
    async () => {
	const stage = path.join(tmp, 'stage-500');
	fixture(['checkpoint', stage, '--step', '500', ...MODEL]);
	const shard = path.join(stage, 'model-00002-of-00002.safetensors');
	fs.truncateSync(shard, fs.statSync(shard).size - 100);
	fs.renameSync(stage, path.join(tmp, 'run', 'checkpoint-500'));
	const chip = '.ck[data-step="500"][data-status="incomplete"]';
	await page.waitForSelector(chip, { timeout: 15000 });
	assert.match(await page.getAttribute(chip, 'title'),
	    /model-00002-of-00002\.safetensors is \d+ of \d+ bytes/);
	assert.match(await page.textContent('#ck-summary'), /1 incomplete/);
	assert.equal(await page.getAttribute('#s-list', 'data-step'), '400',
	    'the selection stays on the last whole checkpoint');
});

test('screenshot and no console errors', T, async () => {
	fs.mkdirSync(path.dirname(SHOT), { recursive: true });
	await page.mouse.move(0, 0);
	await page.screenshot({ path: SHOT, fullPage: true });
	const st = fs.statSync(SHOT);
	assert.ok(st.size > 20000, `${SHOT}: ${st.size} bytes`);
	console.log(`# screenshot: ${SHOT}`);
	assert.deepEqual(problems, []);
});

test('without uPlot the page still loads: tables and a note', T, async () => {
	const p = await context.newPage();
	const seen = [];
	watch(p, seen);
	await p.route('**/assets/uPlot.*', (r) => r.fulfill({ status: 404,
	    body: 'not installed' }));
	await p.goto(base + '/');
	await p.waitForSelector('html[data-ready]', { timeout: 15000 });
	assert.equal(await p.evaluate(() => window.spectrumd.havePlot), false);
	assert.match(await p.textContent('#notice'), /not installed/);
	assert.equal(await p.$$eval('#chart table tbody tr', (r) => r.length),
	    NMAT);
	assert.equal(await p.getAttribute('#heat-canvas', 'data-cells'),
	    String(NMAT * 4));
	const sel = await getJson(base, '/selection');
	assert.deepEqual(await p.$$eval('#s-list li[data-module]', (els) =>
	    els.map((e) => e.dataset.module)), sel.modules);
	// Only the two missing files may complain.
	assert.deepEqual(seen.filter((s) => !s.includes('/assets/uPlot.') &&
	    !/^console: Failed to load resource: .* 404/.test(s)), []);
	await p.close();
});

test('compare: a base model and another fine-tune overlaid; diff between ' +
    'runs; sticky selection marks', { timeout: 120000 }, async () => {
	const ft = path.join(tmp, 'ft'), ft2 = path.join(tmp, 'ft2');
	const bm = path.join(tmp, 'base');
	fixture(['run', ft, '--every', '0', '--count', '4', ...MODEL]);
	fixture(['run', ft2, '--every', '0', '--count', '3', '--seed', '7',
	    ...MODEL]);
	fixture(['run', bm, '--every', '0', '--count', '1', '--start-step', '0',
	    ...MODEL]);
	const d = await startDaemonArgs(['--watch', `ft=${ft}`, '--watch',
	    `ft2=${ft2}`, '--watch', `base=${bm}`, '--stickiness', '1'],
	    path.join(tmp, 'cmp.db'));
	const p = await context.newPage();
	const seen = [];
	watch(p, seen);
	try {
		await until('the three runs analysed', () => runsDone(d.base,
		    { ft: 4, ft2: 3, base: 1 }), 60000);
		await p.goto(`${d.base}/#run=ft&cmp=base`);
		await p.waitForSelector('html[data-after]', { timeout: 15000 });
		assert.equal(await p.inputValue('#cmp-run'), 'base');
		assert.deepEqual(await p.$$eval('#cmp-run option', (o) => o.map(
		    (e) => e.value)), ['', 'base', 'ft2']);

		// The base model (one checkpoint): a level line per matrix.
		assert.equal(await p.getAttribute('#chart', 'data-compared'),
		    String(NMAT));
		const labels = await p.evaluate(() =>
		    window.spectrumd.compareSeries());
		const mine = await p.evaluate(() => window.spectrumd.chartSeries());
		assert.deepEqual(labels.slice().sort(), mine.map((m) =>
		    `${m} · base`).sort());
		const bh = await getJson(d.base, '/history?run=base&metric=snr');
		const s = bh.series.find((x) => x.points[0][2] !== null);
		const level = await p.evaluate((m) =>
		    window.spectrumd.chartLine(m, true), s.module);
		assert.equal(level.steps.length, 4);
		assert.deepEqual(level.values, [1, 2, 3, 4].map(() =>
		    s.points[0][2]));
		assert.match(await p.textContent('#c-cmp'),
		    /ft\s+base\s+58 curves; one checkpoint: level lines/);
		assert.match(await p.textContent('#t-cmp'), /has no loss logged/);

		// The other way round: the base model's run drawn as level
		// lines across the fine-tune's steps (dashed).
		const q = await context.newPage();
		watch(q, seen);
		await q.goto(`${d.base}/#run=base&cmp=ft`);
		await q.waitForSelector('html[data-after]', { timeout: 15000 });
		assert.equal(await q.getAttribute('#chart', 'data-points'), '1');
		const mineLevel = await q.evaluate((m) =>
		    window.spectrumd.chartLine(m), s.module);
		assert.deepEqual(mineLevel.steps, [0, 100, 200, 300, 400]);
		assert.deepEqual(mineLevel.values, mineLevel.steps.map(() =>
		    s.points[0][2]));
		assert.match(await q.textContent('#c-count'), /· 1 checkpoint$/);
		await q.close();

		// Another fine-tune: its curves and its loss, dashed.
		await p.selectOption('#cmp-run', 'ft2');
		await p.waitForFunction(() => document.getElementById('train')
		    .dataset.compared > 0);
		const loss2 = await getJson(d.base, '/history?run=ft2&metric=loss');
		assert.equal(await p.getAttribute('#train', 'data-compared'),
		    String(loss2.series[0].points.length));
		assert.equal(await p.getAttribute('#chart', 'data-compared'),
		    String(NMAT));
		const h2 = await getJson(d.base, '/history?run=ft2&metric=snr');
		const s2 = h2.series[5];
		const line2 = await p.evaluate((m) =>
		    window.spectrumd.chartLine(m, true), s2.module);
		assert.deepEqual(line2.values.slice(0, 3), s2.points.map(
		    (q) => q[2]));
		assert.equal(line2.values[3], null, 'ft2 has no step 400');
		assert.match(await p.evaluate(() => location.hash), /cmp=ft2/);
		assert.match(await p.textContent('#t-cmp'), /ft\s+ft2\s+loss/);

		// The diff from the base model's selection to this run's.
		await p.selectOption('#d-from', 'run:base');
		const want = await getJson(d.base, '/selection/diff?run=base&' +
		    'run2=ft&top_percent=25');
		await p.waitForFunction((n) => document.getElementById('d-body')
		    .dataset.added === n, String(want.added.length));
		assert.deepEqual(await p.$$eval('#d-body .d-in li', (els) =>
		    els.map((e) => e.dataset.module)), want.added.map(
		    (m) => m.module));
		assert.match(await p.textContent('#d-sum'),
		    /from base step 0 to step 400/);

		// Stickiness 1: served, shown, and the marks are the walk
		// /selection makes for another top_percent, as
		// /selection/history serves it (its version = 1 + the number
		// of changes).
		const sel = await getJson(d.base, '/selection?run=ft');
		assert.equal(sel.stickiness, 1);
		await p.$eval('#s-tp', (el) => {
			el.value = '40';
			el.dispatchEvent(new Event('input', { bubbles: true }));
		});
		await p.waitForSelector('#t-marks:has-text("top 40 %")');
		assert.match(await p.textContent('#t-marks'), /stickiness 1\)/);
		const walk = await getJson(d.base,
		    '/selection?run=ft&top_percent=40');
		const marks = (await p.getAttribute('#train', 'data-marks'))
		    .split(',').filter(Boolean);
		assert.equal(marks.length + 1, walk.version,
		    `marks ${marks} against version ${walk.version}`);
		const h40 = await selHistory(d.base, '&run=ft&top_percent=40');
		assert.deepEqual(marks.map(Number), h40.changes);
		assert.equal(h40.h.stickiness, 1);
		const cells = await p.evaluate(() => window.spectrumd.heatCells());
		assert.deepEqual(cells.filter((c) => c.selected &&
		    c.step === walk.step).map((c) => c.module).sort(),
		    walk.modules.slice().sort());
		assert.deepEqual((await outlineMismatches(p, h40)).bad, []);
		assert.deepEqual(seen, []);
	} finally {
		await p.close();
		await stopDaemon(d);
	}
});

// A set of module names, as a sorted string (for comparison).
const setKey = (mods) => mods.slice().sort().join('\n');

test('stickiness: outlines and marks are the stored selection, not a ' +
    'naive top-p', { timeout: 120000 }, async () => {
	const run = path.join(tmp, 'sticky');
	fixture(['run', run, '--every', '0', '--count', '3', ...MODEL]);
	// The same run twice: without stickiness (the naive top 25 % at each
	// step), and with a margin larger than any type (the stored
	// selection keeps the first step's set).
	const plain = await startDaemon('demo', run, path.join(tmp,
	    'plain.db'));
	const sticky = await startDaemonArgs(['--watch', `demo=${run}`,
	    '--stickiness', '1000'], path.join(tmp, 'sticky.db'));
	const p = await context.newPage();
	const seen = [];
	watch(p, seen);
	try {
		await until('both analysed', async () => (await doneCount(
		    plain.base, 3)) && (await doneCount(sticky.base, 3)), 60000);
		const naive = await selHistory(plain.base);
		const served = await selHistory(sticky.base);
		assert.equal(served.h.stickiness, 1000);
		assert.ok(naive.changes.length > 0, 'a naive top-p moves');
		assert.deepEqual(served.changes, [], 'the stored one does not');
		// A step where the two differ (whatever order the checkpoints
		// were analysed in, the stored set stays one).
		const step = [...served.at.keys()].find((s) =>
		    setKey(naive.at.get(s)) !== setKey(served.at.get(s)));
		assert.ok(step !== undefined, 'a step where naive and stored ' +
		    'differ');
		const asked = [];
		p.on('request', (r) => {
			const u = new URL(r.url());
			if (u.pathname === '/selection/history')
				asked.push(u.search);
		});
		await p.goto(`${sticky.base}/`);
		await p.waitForSelector('html[data-after]', { timeout: 15000 });
		await p.waitForSelector('#p-train:not([hidden])');
		// Asked once, ahead by app-boot.js, and taken by the page.
		assert.deepEqual(asked, ['']);
		const cells = await p.evaluate(() => window.spectrumd.heatCells());
		assert.equal(setKey(cells.filter((c) => c.selected &&
		    c.step === step).map((c) => c.module)),
		    setKey(served.at.get(step)),
		    `step ${step} outlined as the daemon stored it`);
		const out = await outlineMismatches(p, served);
		assert.deepEqual(out.bad, []);
		assert.ok(out.marked > 0);
		assert.equal(await p.getAttribute('#train', 'data-marks'), '');
		assert.equal(await p.textContent('#t-marks'), '');
		assert.deepEqual(seen, []);
	} finally {
		await p.close();
		await stopDaemon(plain);
		await stopDaemon(sticky);
	}
});

// One fresh load of the page of daemon b (nothing cached): its marks
// (ms from navigation) once every panel is drawn, and what it shows.
async function loadOnce(b) {
	const ctx = await browser.newContext({ viewport: { width: 1440,
	    height: 900 } });
	try {
		const p = await ctx.newPage();
		const seen = [];
		watch(p, seen);
		await p.goto(b + '/');
		await p.waitForSelector('html[data-after]', { timeout: 30000 });
		const marks = await p.evaluate(() => Object.fromEntries(
		    performance.getEntriesByType('mark').map((m) =>
		    [m.name.replace('spectrumd-', ''), m.startTime])));
		const attr = (sel, a) => p.getAttribute(sel, a);
		return { marks, seen, cells: await attr('#heat-canvas',
		    'data-cells'), series: await attr('#chart', 'data-series'),
		    train: await p.isVisible('#p-train'), diff: await attr(
		    '#d-body', 'data-added') };
	} finally {
		await ctx.close();
	}
}

const median = (v) => v.slice().sort((a, b) => a - b)[v.length >> 1];

// The budget is for the page drawn (data-ready: checkpoints, curves,
// heatmap, selection, spectrum), measured as the median of 5 fresh loads;
// "complete" adds what loads after it (training log with its marks,
// selection diff, alpha history, alerts). On a shared machine a round can
// be slow: up to 3 rounds, the first within the budget passes; when
// every round misses it and the machine was oversubscribed on the way
// (a 1-minute load average, read before and after each round, at or
// above its cores), the budget scaled by the page's share of the machine
// is checked instead (× load / cores, at least × 2) and the figures say
// so.
test('load time: 198 matrices × 50 checkpoints, every panel',
    { timeout: 300000, skip: process.env.SPECTRUMD_SKIP_LOADTIME === '1' ?
    'SPECTRUMD_SKIP_LOADTIME=1' : false }, async () => {
	const run = path.join(tmp, 'big');
	fixture(['run', run, '--every', '0', '--count', '50', '--layers', '28',
	    '--hidden', '64', '--intermediate', '128', '--vocab', '128', '-q']);
	const big = await startDaemon('big', run, path.join(tmp, 'big.db'));
	try {
		await until('50 analysed checkpoints', () => doneCount(big.base,
		    50), 120000);
		const snr = await getJson(big.base, '/snr');
		assert.equal(snr.matrices.length, 28 * 7 + 2);
		const sanitizer = process.env.ASAN_OPTIONS ||
		    process.env.UBSAN_OPTIONS;
		const rounds = [];
		let met = false;
		const cores = os.cpus().length;
		let load = 0;	/* the highest load average read */
		while (!met && rounds.length < 3) {
			load = Math.max(load, os.loadavg()[0]);
			const loads = [];
			for (let i = 0; i < 5; i++) {
				const l = await loadOnce(big.base);
				assert.equal(l.cells, String(198 * 50));
				assert.equal(l.series, '198');
				assert.equal(l.train, true, 'training log shown');
				assert.ok(Number(l.diff) > 0, 'selection diff shown');
				assert.deepEqual(l.seen, []);
				loads.push(l.marks);
			}
			const r = { ready: median(loads.map((m) => m.ready)),
			    data: median(loads.map((m) => m.data)),
			    complete: median(loads.map((m) => m.complete)),
			    all: loads.map((m) => m.ready.toFixed(0)),
			    load: os.loadavg()[0] };
			load = Math.max(load, r.load);
			rounds.push(r);
			console.log(`# load time, 198 matrices x 50 checkpoints, ` +
			    `round ${rounds.length}: ready ${r.all.join(', ')} ms ` +
			    `(median ${r.ready.toFixed(0)}; data in at ` +
			    `${r.data.toFixed(0)}; complete ` +
			    `${r.complete.toFixed(0)}); load average ` +
			    `${r.load.toFixed(1)} on ${cores} cores; ` +
			    `budget ${LOAD_BUDGET} ms`);
			met = r.ready <= LOAD_BUDGET;
		}
		const best = Math.min(...rounds.map((r) => r.ready));
		// Sanitizer builds serve several times slower: report only.
		if (sanitizer) {
			console.log('# sanitizer build: budget not checked');
			return;
		}
		if (!met && load >= cores) {
			const scaled = LOAD_BUDGET * Math.max(2, load / cores);
			console.log(`# the machine was oversubscribed (load ` +
			    `average up to ${load.toFixed(1)}): ` +
			    `${scaled.toFixed(0)} ms checked instead`);
			assert.ok(best <= scaled, `median ${best} ms`);
			return;
		}
		assert.ok(met, `best median ${best} ms > ${LOAD_BUDGET} ms`);
	} finally {
		await stopDaemon(big);
	}
});
