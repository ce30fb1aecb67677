// lib.mjs: what the browser tests share: the daemon on a fixture run
// (tests/spectrumd-fixture), waiting for it, its JSON, and the watcher
// of console errors, page errors and failed requests.
//
// Environment: top_srcdir, top_builddir (default "."), CHROMIUM (default
// /usr/bin/chromium).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const SRC = path.resolve(process.env.top_srcdir || '.');
export const BUILD = path.resolve(process.env.top_builddir || '.');
export const SPD = path.join(BUILD, 'spectrumd');
export const FIXTURE = path.join(BUILD, 'tests', 'spectrumd-fixture');
export const WEB = path.join(SRC, 'web');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'];
// The fixture model: 8 layers × 7 projections + embeddings + lm_head.
export const MODEL = ['--layers', '8', '--hidden', '64', '--intermediate',
    '128', '--vocab', '128', '--shards', '2', '-q'];
export const NMAT = 8 * 7 + 2;

// Starts spectrumd on 127.0.0.1 port 0 watching runDir; resolves with
// {proc, base, log} once it says where it listens.
export function startDaemon(name, runDir, db) {
	return startDaemonArgs(['--watch', `${name}=${runDir}`], db);
}

// startDaemon with other arguments (several runs, settings).
export function startDaemonArgs(args, db) {
	const proc = spawn(SPD, [...args, '--listen', '127.0.0.1:0', '--db', db,
	    '--settle-ms', '200', '--web-dir', WEB, '--backend', 'cpu'],
	    { stdio: ['ignore', 'ignore', 'pipe'] });
	const d = { proc, log: '' };
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(
		    `daemon did not start:\n${d.log}`)), 20000);
		proc.stderr.setEncoding('utf8');
		proc.stderr.on('data', (s) => {
			d.log += s;
			const m = /listening on (http:\/\/127\.0\.0\.1:\d+)\//
			    .exec(d.log);
			if (m && !d.base) {
				d.base = m[1];
				clearTimeout(timer);
				resolve(d);
			}
		});
		proc.on('exit', (code) => {
			clearTimeout(timer);
			if (!d.base)
				reject(new Error(`daemon exited ${code}:\n${d.log}`));
		});
	});
}

export async function stopDaemon(d) {
	if (!d || d.proc.exitCode !== null)
		return;
	const done = new Promise((r) => d.proc.on('exit', r));
	d.proc.kill('SIGTERM');
	const t = setTimeout(() => d.proc.kill('SIGKILL'), 10000);
	await done;
	clearTimeout(t);
}

// Closes the browser, stops the daemon and removes the test's directory.
export async function tearDown(browser, daemon, tmp) {
	if (browser)
		await browser.close();
	await stopDaemon(daemon);
	if (tmp)
		fs.rmSync(tmp, { recursive: true, force: true });
}

export function fixture(args) {
	execFileSync(FIXTURE, args, { stdio: ['ignore', 'ignore', 'inherit'] });
}

export async function getJson(b, p) {
	const r = await fetch(b + p);
	assert.equal(r.status, 200, `${p}: ${r.status}`);
	return r.json();
}

export async function getText(b, p) {
	const r = await fetch(b + p);
	assert.equal(r.status, 200, `${p}: ${r.status}`);
	return r.text();
}

// Polls fn until it returns a truthy value (or throws after ms).
export async function until(what, fn, ms = 30000) {
	const end = Date.now() + ms;
	let last;
	for (;;) {
		try {
			last = await fn();
			if (last)
				return last;
		} catch (e) {
			last = e;
		}
		if (Date.now() > end)
			throw new Error(`timed out waiting for ${what} (${last})`);
		await new Promise((r) => setTimeout(r, 100));
	}
}

export async function doneCount(b, n) {
	const runs = await getJson(b, '/runs');
	return runs[0].counts.done >= n &&
	    runs[0].counts.pending === 0 && runs[0].counts.analyzing === 0;
}

// A 404 from /alerts: a daemon without the route (the banner shows none).
const noAlertsRoute = (url, status) => status === 404 &&
    new URL(url).pathname === '/alerts';

// Collects what the "no console errors" check looks at.
export function watch(p, sink) {
	p.on('console', (m) => {
		if (m.type() === 'error' && !noAlertsRoute(m.location().url ||
		    'http://x/', 404))
			sink.push(`console: ${m.text()}`);
	});
	p.on('pageerror', (e) => sink.push(`page error: ${e.message}`));
	p.on('requestfailed', (r) => {
		if (!r.url().endsWith('/events'))
			sink.push(`request failed: ${r.url()}`);
	});
	p.on('response', (r) => {
		if (r.status() >= 400 && !noAlertsRoute(r.url(), r.status()))
			sink.push(`HTTP ${r.status()}: ${r.url()}`);
	});
}

// Whether every run of daemon b has n analysed checkpoints ({name: n}).
export async function runsDone(b, want) {
	const runs = await getJson(b, '/runs');
	return Object.entries(want).every(([name, n]) => {
		const r = runs.find((x) => x.name === name);
		return r && r.counts.done >= n && r.counts.pending === 0 &&
		    r.counts.analyzing === 0;
	});
}

// /selection/history?modules=1 of daemon b (q: more parameters, "&..."):
// the answer, the steps after the first where it changed, and step → its
// modules.
export async function selHistory(b, q = '') {
	const h = await getJson(b, `/selection/history?modules=1${q}`);
	return { h, changes: h.steps.filter((x, i) => i > 0 &&
	    x.added.length + x.removed.length > 0).map((x) => x.step),
	    at: new Map(h.steps.map((x) => [x.step, x.modules])) };
}

// The heatmap cells of page p outlined otherwise than the daemon's
// selection at their step says (sel: selHistory's), as "module@step";
// also how many are outlined.
export async function outlineMismatches(p, sel) {
	const cells = await p.evaluate(() => window.spectrumd.heatCells());
	const bad = cells.filter((c) => c.selected !== (sel.at.get(c.step) ||
	    []).includes(c.module)).map((c) => `${c.module}@${c.step}`);
	return { bad, marked: cells.filter((c) => c.selected).length };
}
