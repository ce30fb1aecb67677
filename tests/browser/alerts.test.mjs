// alerts.test.mjs: the dashboard's alerts banner against the real daemon
// (GET /alerts and the `alert` events of /events, /work/notes'
// alerts contract): a checkpoint with NaN weights raises a critical
// `nonfinite` alert that the open page shows at once, a page loaded
// later shows it from GET /alerts, a dismissed one stays away, and no
// page error or failed request happens on the way. Needs a daemon with
// /alerts: it fails, saying so, against one without.
//
// Run from the build directory: top_srcdir=.. top_builddir=. node
// --test-reporter=tap ../tests/browser/alerts.test.mjs (tests/browser.sh
// runs it when SPECTRUMD_BROWSER_TESTS names it).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, ARGS, MODEL, startDaemon, tearDown, fixture, until,
    doneCount, watch } from './lib.mjs';

const T = { timeout: 90000 };
const NAN = 'model.layers.3.mlp.down_proj';
let tmp, daemon, base, browser, context;

before(async () => {
	tmp = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(),
	    'spd-alerts-'));
	fixture(['run', path.join(tmp, 'run'), '--every', '0', '--count', '3',
	    ...MODEL]);
	daemon = await startDaemon('demo', path.join(tmp, 'run'),
	    path.join(tmp, 'db'));
	base = daemon.base;
	await until('3 analysed checkpoints', () => doneCount(base, 3));
	browser = await chromium.launch({ executablePath: CHROMIUM,
	    headless: true, args: ARGS });
	context = await browser.newContext({ viewport: { width: 1440,
	    height: 900 } });
}, { timeout: 120000 });

after(() => tearDown(browser, daemon, tmp));

// The run's alerts of kind, newest first.
async function alertsOf(kind) {
	const r = await fetch(`${base}/alerts?run=demo`);
	assert.notEqual(r.status, 404, 'the daemon has no /alerts route ' +
	    '(this test needs the daemon side of issue 15)');
	assert.equal(r.status, 200);
	return (await r.json()).alerts.filter((a) => a.kind === kind);
}

test('a checkpoint with NaN weights: critical banner live, on load, ' +
    'dismissed for good; no page errors', T, async () => {
	assert.deepEqual(await alertsOf('nonfinite'), []);
	const p = await context.newPage();
	const seen = [];
	watch(p, seen);
	let gets = 0;	/* GET /alerts of page p: once, then events only */
	p.on('request', (r) => {
		gets += new URL(r.url()).pathname === '/alerts';
	});
	await p.goto(base + '/');
	await p.waitForSelector('html[data-after]', { timeout: 15000 });
	assert.equal(await p.$('#alerts .alert[data-kind="nonfinite"]'), null);

	// Step 400 with one tensor of NaN, renamed into place whole.
	const stage = path.join(tmp, 'stage-400');
	fixture(['checkpoint', stage, '--step', '400', '--nan-tensor',
	    `${NAN}.weight`, ...MODEL]);
	fs.renameSync(stage, path.join(tmp, 'run', 'checkpoint-400'));
	await until('step 400 analysed', () => doneCount(base, 4));
	const [a] = await until('the nonfinite alert', async () => {
		const l = await alertsOf('nonfinite');
		return l.length > 0 ? l : null;
	});
	assert.equal(a.step, 400);
	assert.equal(a.severity, 'critical');

	// The open page shows it from its `alert` event.
	const sel = `#alerts .alert[data-id="${a.id}"]`;
	await p.waitForSelector(sel, { timeout: 15000 });
	assert.equal(gets, 1, 'the page asked /alerts again');
	assert.equal(await p.getAttribute(sel, 'data-severity'), 'critical');
	const text = await p.textContent(sel);
	assert.ok(text.includes(a.message), text);
	assert.match(text, /step 400/);
	if (a.modules.length > 0)
		assert.ok(text.includes(a.modules[0]), text);
	const bg = await p.$eval(sel, (e) => getComputedStyle(e)
	    .backgroundColor);

	// A page loaded now shows it from GET /alerts.
	const q = await context.newPage();
	watch(q, seen);
	await q.goto(base + '/');
	await q.waitForSelector('html[data-after]', { timeout: 15000 });
	await q.waitForSelector(sel, { timeout: 15000 });
	assert.equal(await q.$eval(sel, (e) => getComputedStyle(e)
	    .backgroundColor), bg);

	// Dismissed: gone, and not back after a reload.
	await q.click(`${sel} button.dismiss`);
	await q.waitForSelector(sel, { state: 'detached' });
	await q.reload();
	await q.waitForSelector('html[data-after]', { timeout: 15000 });
	assert.equal(await q.$(sel), null, 'the dismissed alert came back');
	assert.deepEqual(seen, []);
	await q.close();
	await p.close();
});
