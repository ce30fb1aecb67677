/*
 * test_alerts.c: the alert rules (alerts.h) on planted cases: the jump
 * factor's edge, values the rules must ignore, the top-20 list, churn
 * firing once per episode, the stall rule's minimum and median.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "spectrumd/alerts.h"
#include "tap.h"

#define M(name, snr, alpha)	{ name, snr, alpha, false }

/* Kind names round-trip; severities follow the contract. */
static void
test_kinds(void)
{
	enum alert_kind	k, got;
	bool		all = true;

	for (k = 0; k < ALERT_NKINDS; k++)
		all = all && alert_kind_parse(alert_kind_name(k), &got) &&
		    got == k;
	ok(all, "every kind name parses back to its kind");
	ok(!alert_kind_parse("bogus", &got) && !alert_kind_parse(NULL, &got),
	    "unknown and NULL names refused");
	ok(strcmp(alert_severity(ALERT_NONFINITE), "critical") == 0 &&
	    strcmp(alert_severity(ALERT_SNR_JUMP), "warning") == 0 &&
	    strcmp(alert_severity(ALERT_STALLED), "warning") == 0,
	    "nonfinite is critical, the rest warnings");
}

/* The jump rule: strictly above the factor, both ways, bad values out. */
static void
test_jump(void)
{
	static const struct alert_metric prev[] = {
		M("a", 1.0, 3.0), M("b", 1.0, 3.0), M("c", 4.0, 3.0),
		M("d", 1.0, 3.0), M("e", 0.0, 3.0), M("f", -1.0, 3.0),
		M("g", NAN, 3.0), M("h", INFINITY, 3.0), M("i", 1.0, NAN),
		M("j", 2.0, 2.0),
	};
	/* Another order than prev, and a module prev lacks. */
	static const struct alert_metric cur[] = {
		M("j", 2.0, 2.0),
		M("b", 2.0000001, 3.0),	/* just above 2× */
		M("a", 2.0, 3.0),	/* exactly 2×: no */
		M("c", 1.0, 9.5),	/* 4× down; alpha 3.17× up */
		M("d", 3.0, 3.0),	/* 3× */
		M("e", 5.0, 3.0),	/* zero before: ignored */
		M("f", 5.0, 3.0),	/* negative before: ignored */
		M("g", 5.0, 3.0),	/* NaN before: ignored */
		M("h", 5.0, 3.0),	/* inf before: ignored */
		M("i", 1.0, 7.0),	/* alpha NaN before: ignored */
		M("new", 100.0, 3.0),	/* not in prev */
	};
	struct alert a;

	ok(alerts_jump(ALERT_SNR_JUMP, prev, nitems(prev), 100, cur,
	    nitems(cur), 2.0, &a), "snr jump found");
	ok(a.count == 3 && a.nmodules == 3, "3 matrices above 2× (got %llu)",
	    (unsigned long long)a.count);
	ok(a.nmodules == 3 && strcmp(a.modules[0], "c") == 0 &&
	    strcmp(a.modules[1], "d") == 0 && strcmp(a.modules[2], "b") == 0,
	    "largest ratio first: c (4×), d (3×), b");
	ok_near(a.value, 4.0, 1e-12, "value = the largest ratio");
	ok_near(a.threshold, 2.0, 0, "threshold = the factor");
	ok(a.kind == ALERT_SNR_JUMP && strstr(a.message, "since step 100") !=
	    NULL && strstr(a.message, "SNR") != NULL, "message: %s",
	    a.message);
	ok(alerts_jump(ALERT_ALPHA_JUMP, prev, nitems(prev), 100, cur,
	    nitems(cur), 2.0, &a) && a.count == 1 &&
	    strcmp(a.modules[0], "c") == 0, "alpha jump: c only (i's NaN "
	    "ignored)");
	ok(!alerts_jump(ALERT_SNR_JUMP, prev, nitems(prev), 100, cur,
	    nitems(cur), 0, &a) && a.count == 0, "factor 0 disables");
	ok(!alerts_jump(ALERT_SNR_JUMP, prev, nitems(prev), 100, cur,
	    nitems(cur), 4.0, &a), "exactly at 4×: no alert at factor 4");
	ok(!alerts_jump(ALERT_SNR_JUMP, prev, 0, 100, cur, nitems(cur), 2.0,
	    &a), "no previous matrices: no alert");
	ok(!alerts_jump(ALERT_CHURN, prev, nitems(prev), 100, cur,
	    nitems(cur), 2.0, &a), "a kind that is not a jump: no alert");
}

/* 30 jumping matrices: 20 listed, largest first, all counted. */
static void
test_jump_top(void)
{
	struct alert_metric	prev[30], cur[30];
	char			names[30][8];
	struct alert		a;
	size_t			i;
	bool			order = true;

	for (i = 0; i < 30; i++) {
		snprintf(names[i], sizeof names[i], "m%zu", i);
		prev[i] = (struct alert_metric)M(names[i], 1.0, NAN);
		cur[i] = (struct alert_metric)M(names[i], 3.0 + (double)i,
		    NAN);
	}
	ok(alerts_jump(ALERT_SNR_JUMP, prev, 30, 7, cur, 30, 2.0, &a) &&
	    a.count == 30 && a.nmodules == ALERT_MAX_MODULES,
	    "30 jumps: count 30, 20 listed");
	for (i = 0; i < a.nmodules; i++)
		order = order && strcmp(a.modules[i], names[29 - i]) == 0;
	ok(order, "the 20 largest, largest first");
	ok_near(a.value, 32.0, 1e-12, "value 32");
}

/* The nonfinite rule. */
static void
test_nonfinite(void)
{
	struct alert_metric	v[25];
	char			names[25][8];
	struct alert		a;
	size_t			i;

	for (i = 0; i < 25; i++) {
		snprintf(names[i], sizeof names[i], "n%zu", i);
		v[i] = (struct alert_metric)M(names[i], 1.0, 3.0);
	}
	ok(!alerts_nonfinite(v, 25, &a), "all finite: no alert");
	v[3].nonfinite = true;
	ok(alerts_nonfinite(v, 25, &a) && a.count == 1 && a.value == 1 &&
	    a.nmodules == 1 && strcmp(a.modules[0], "n3") == 0 &&
	    a.kind == ALERT_NONFINITE, "one nonfinite matrix: %s", a.message);
	for (i = 0; i < 25; i++)
		v[i].nonfinite = true;
	ok(alerts_nonfinite(v, 25, &a) && a.count == 25 && a.value == 25 &&
	    a.nmodules == ALERT_MAX_MODULES &&
	    strcmp(a.modules[0], "n0") == 0, "25: counted, 20 listed in order");
}

/* Runs the churn rule over a prefix of flags. */
static bool
churn_at(const bool *f, size_t n)
{
	struct alert a;

	return alerts_churn(f, n, 5, 3, &a);
}

/* The churn rule fires once per episode. */
static void
test_churn(void)
{
	/* steps:           0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 */
	static const bool f[] = { 0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1 };
	static const bool want[] =
			  { 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	struct alert	a;
	size_t		i;
	bool		all = true;
	char		got[32] = "";

	for (i = 0; i < nitems(f); i++) {
		got[i] = churn_at(f, i + 1) ? '1' : '0';
		all = all && churn_at(f, i + 1) == want[i];
	}
	ok(all, "fires at 4 and 14 only (got %s)", got);
	ok(alerts_churn(f, 5, 5, 3, &a) && a.count == 3 && a.value == 3 &&
	    a.threshold == 3 && a.kind == ALERT_CHURN, "value 3 of min 3: %s",
	    a.message);
	ok(!alerts_churn(f, 5, 5, 0, &a) && !alerts_churn(f, 5, 0, 3, &a),
	    "min 0 or window 0 disables");
	ok(!alerts_churn(f, 0, 5, 3, &a), "no checkpoints: no alert");
	{
		static const bool g[] = { 1, 1, 1 };

		ok(alerts_churn(g, 3, 5, 3, &a) && !alerts_churn(g, 2, 5, 3,
		    &a), "a window longer than the history");
	}
}

/* The stall rule. */
static void
test_stall(void)
{
	double	w[] = { 1000, 1100, 1200 }, due = -1;
	double	odd[] = { 0, -5, NAN, 1000, 1100, 1300, 1400 };
	double	eleven[11];
	struct alert a;
	size_t	i;

	ok(!alerts_stall(w, 2, 5000, 3, &a, &due) && due == 0,
	    "two checkpoints: never stalled");
	ok(!alerts_stall(w, 3, 1500, 3, &a, &due), "300 s after: not yet "
	    "(3 × 100 s)");
	ok_near(due, 1500, 1e-9, "due at last + 3 × median");
	ok(!alerts_stall(w, 3, 1500, 3, &a, NULL), "exactly at the "
	    "threshold: not stalled");
	ok(alerts_stall(w, 3, 1500.5, 3, &a, NULL) && a.kind ==
	    ALERT_STALLED, "just past it: stalled (%s)", a.message);
	ok_near(a.value, 300.5, 1e-9, "value = seconds since the last");
	ok_near(a.threshold, 300, 1e-9, "threshold = factor × median");
	ok(a.count == 3, "count = checkpoints read");
	ok(!alerts_stall(w, 3, 1e9, 0, &a, &due), "factor 0 disables");
	/* Gaps 100, 200, 100 (zero, negative, NaN ignored): median 100. */
	ok(alerts_stall(odd, nitems(odd), 1701, 3, &a, &due) &&
	    a.count == 4, "bad times ignored; median of gaps 100,200,100");
	ok_near(due, 1700, 1e-9, "due 1400 + 300");
	/* Unsorted input, even number of gaps: 100, 300 → median 200. */
	{
		double u[] = { 1400, 1000, 1100 };

		ok(!alerts_stall(u, 3, 1400 + 3 * 200, 3, &a, &due) &&
		    alerts_stall(u, 3, 1400 + 3 * 200 + 1, 3, &a, &due),
		    "any order; median of two gaps is their mean");
	}
	{
		double same[] = { 1000, 1000, 1000 };

		ok(!alerts_stall(same, 3, 1e9, 3, &a, &due) && due == 0,
		    "no interval to measure: never stalled");
	}
	/* Only the last ALERT_STALL_N count: the first gap of 1e6 s is out. */
	eleven[0] = 1;
	for (i = 1; i < 11; i++)
		eleven[i] = 1e6 + 10 * (double)i;
	ok(alerts_stall(eleven, 11, 1e6 + 100 + 31, 3, &a, &due) &&
	    a.count == ALERT_STALL_N, "the last 10 checkpoints only");
}

int
main(void)
{
	test_kinds();
	test_jump();
	test_jump_top();
	test_nonfinite();
	test_churn();
	test_stall();
	return tap_done();
}
