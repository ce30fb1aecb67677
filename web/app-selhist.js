// app-selhist.js: the selection at every step of a history of SNRs,
// replayed in step order as the daemon walks it for /selection (select.h):
// per type, the ⌊n·p/100⌋ members of highest SNR (+∞ first, ties by
// layer; a NaN SNR is no member), with the configured `stickiness`
// against the step before; embeddings and lm_head (`always`) apart. The
// heatmap outlines it, the training log marks the steps where it changes.

import { pointValue } from './app-api.js';
import { snrDesc } from './app-view.js';

let memo = null;

// { steps, rank: module → Int32Array (0: no point), n: type → Int32Array
// (members), sel: module → Uint8Array, changes: [{step, added, removed}] }
// for hist (an SNR /history) at top_percent tp with margin `stickiness`.
export function replaySelection(hist, tp, margin, always) {
	const key = [...always].sort().join('\n');
	if (memo && memo.hist === hist && memo.tp === tp &&
	    memo.margin === margin && memo.key === key)
		return memo.out;
	const stepSet = new Set();
	for (const s of hist.series)
		for (const p of s.points)
			stepSet.add(p[0]);
	const steps = [...stepSet].sort((a, b) => a - b);
	const col = new Map(steps.map((s, i) => [s, i]));
	const byType = new Map();
	for (const s of hist.series) {
		if (!byType.has(s.type))
			byType.set(s.type, []);
		byType.get(s.type).push(s);
	}
	const rank = new Map(), n = new Map(), sel = new Map();
	for (const [t, ser] of byType) {
		const per = steps.map(() => []);
		for (const s of ser) {
			rank.set(s.module, new Int32Array(steps.length));
			sel.set(s.module, new Uint8Array(steps.length));
			s.points.forEach((p, j) => per[col.get(p[0])].push({ s,
			    v: pointValue(s, j) }));
		}
		const nt = new Int32Array(steps.length);
		let prev = null;
		per.forEach((list, c) => {
			list.sort((a, b) => snrDesc(a.v, b.v) ||
			    a.s.layer - b.s.layer);
			list.forEach((e, r) => {
				rank.get(e.s.module)[c] = r + 1;
			});
			const members = list.filter((e) => !Number.isNaN(e.v) &&
			    !always.has(e.s.module)).map((e) => e.s.module);
			nt[c] = members.length;
			const keep = stickyKeep(members, Math.floor(
			    members.length * tp / 100), prev, margin);
			prev = new Set(members.filter((m, i) => keep[i]));
			for (const m of prev)
				sel.get(m)[c] = 1;
			for (const e of list)
				if (always.has(e.s.module) && !Number.isNaN(e.v))
					sel.get(e.s.module)[c] = 1;
		});
		n.set(t, nt);
	}
	let ch = null;	/* the changes: when asked (the training log) */
	const out = { steps, rank, n, sel, get changes() {
		return ch || (ch = changes(steps, sel));
	} };
	memo = { hist, tp, margin, key, out };
	return out;
}

// Which of the ranked members to select: the first nsel, and a member of
// prev ranked nsel+1 .. nsel+margin displaces the lowest-ranked newcomer
// (a top-nsel member not in prev), best-ranked first, while newcomers
// last (select.c's sticky_keep).
function stickyKeep(ranked, nsel, prev, margin) {
	const keep = ranked.map((m, i) => i < nsel);
	if (!prev || margin === 0 || nsel === 0)
		return keep;
	let hi = nsel, lo = nsel;
	for (;;) {
		while (hi < ranked.length && hi < nsel + margin &&
		    !prev.has(ranked[hi]))
			hi++;
		if (hi >= ranked.length || hi >= nsel + margin)
			return keep;
		while (lo > 0 && prev.has(ranked[lo - 1]))
			lo--;
		if (lo === 0)
			return keep;
		keep[--lo] = false;
		keep[hi++] = true;
	}
}

// The steps where the selected set differs from the step before.
function changes(steps, sel) {
	const out = [];
	for (let c = 1; c < steps.length; c++) {
		const added = [], removed = [];
		for (const [m, v] of sel) {
			if (v[c] && !v[c - 1])
				added.push(m);
			else if (!v[c] && v[c - 1])
				removed.push(m);
		}
		if (added.length || removed.length)
			out.push({ step: steps[c], added, removed });
	}
	return out;
}
