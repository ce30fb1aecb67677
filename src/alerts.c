/*
 * alerts.c: the alert rules (alerts.h, docs/alerts.md). Pure functions of
 * their inputs: the worker feeds them stored metrics, selections and
 * checkpoint times, and stores what they return.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/alerts.h"

static const char *const kind_names[ALERT_NKINDS] = {
	[ALERT_NONFINITE] = "nonfinite",
	[ALERT_STALLED] = "stalled",
	[ALERT_SNR_JUMP] = "snr_jump",
	[ALERT_ALPHA_JUMP] = "alpha_jump",
	[ALERT_CHURN] = "churn",
};

/* Returns the kind's name, "unknown" out of range. */
const char *
alert_kind_name(enum alert_kind k)
{
	if ((unsigned)k >= ALERT_NKINDS)
		return "unknown";
	return kind_names[k];
}

/* Looks a kind up by name. */
bool
alert_kind_parse(const char *name, enum alert_kind *out)
{
	size_t i;

	for (i = 0; name != NULL && i < ALERT_NKINDS; i++)
		if (strcmp(kind_names[i], name) == 0) {
			*out = (enum alert_kind)i;
			return true;
		}
	return false;
}

/* Returns the severity of a kind. */
const char *
alert_severity(enum alert_kind k)
{
	return k == ALERT_NONFINITE ? "critical" : "warning";
}

/* Clears *out and sets its kind. */
static void
alert_init(struct alert *out, enum alert_kind kind)
{
	memset(out, 0, sizeof *out);
	out->kind = kind;
}

/* Lists the nonfinite matrices of a checkpoint. */
bool
alerts_nonfinite(const struct alert_metric *cur, size_t n, struct alert *out)
{
	size_t i;

	alert_init(out, ALERT_NONFINITE);
	for (i = 0; i < n; i++) {
		if (!cur[i].nonfinite)
			continue;
		if (out->nmodules < ALERT_MAX_MODULES)
			out->modules[out->nmodules++] = cur[i].module;
		out->count++;
	}
	if (out->count == 0)
		return false;
	out->value = (double)out->count;
	snprintf(out->message, sizeof out->message, "%llu matri%s with "
	    "NaN/Inf weights or a NaN SNR (first: %s)",
	    (unsigned long long)out->count, out->count == 1 ? "x" : "ces",
	    out->modules[0]);
	return true;
}

/* The metric of kind in m. */
static double
metric_of(enum alert_kind kind, const struct alert_metric *m)
{
	return kind == ALERT_SNR_JUMP ? m->snr : m->alpha;
}

/*
 * Finds module in prev, trying *hint first (inputs usually share their
 * order); NULL when absent. *hint moves past the match.
 */
static const struct alert_metric *
find_module(const struct alert_metric *prev, size_t np, const char *module,
    size_t *hint)
{
	size_t i;

	if (module == NULL)
		return NULL;
	for (i = 0; i < np; i++) {
		size_t j = (*hint + i) % np;

		if (prev[j].module != NULL &&
		    strcmp(prev[j].module, module) == 0) {
			*hint = j + 1;
			return &prev[j];
		}
	}
	return NULL;
}

/* The ratio max(a/b, b/a) of two finite positive values, else NaN. */
static double
jump_ratio(double a, double b)
{
	if (!isfinite(a) || !isfinite(b) || a <= 0 || b <= 0)
		return NAN;
	return a > b ? a / b : b / a;
}

/*
 * Inserts module (ratio r) into the list of the largest ratios, largest
 * first, keeping the ALERT_MAX_MODULES largest; ratios[] parallels it.
 */
static void
top_insert(struct alert *a, double *ratios, const char *module, double r)
{
	size_t i, n = a->nmodules;

	if (n == ALERT_MAX_MODULES && r <= ratios[n - 1])
		return;
	if (n < ALERT_MAX_MODULES)
		n++;
	for (i = n - 1; i > 0 && ratios[i - 1] < r; i--) {
		ratios[i] = ratios[i - 1];
		a->modules[i] = a->modules[i - 1];
	}
	ratios[i] = r;
	a->modules[i] = module;
	a->nmodules = n;
}

/* The jump rule of one metric between two checkpoints. */
bool
alerts_jump(enum alert_kind kind, const struct alert_metric *prev, size_t np,
    long long prev_step, const struct alert_metric *cur, size_t nc,
    double factor, struct alert *out)
{
	const struct alert_metric	*p;
	double				 ratios[ALERT_MAX_MODULES], r;
	size_t				 i, hint = 0;

	alert_init(out, kind);
	if (!(factor > 0) || (kind != ALERT_SNR_JUMP &&
	    kind != ALERT_ALPHA_JUMP))
		return false;
	for (i = 0; i < nc; i++) {
		if ((p = find_module(prev, np, cur[i].module, &hint)) == NULL)
			continue;
		r = jump_ratio(metric_of(kind, &cur[i]), metric_of(kind, p));
		if (!(r > factor))
			continue;
		out->count++;
		top_insert(out, ratios, cur[i].module, r);
	}
	if (out->count == 0)
		return false;
	out->value = ratios[0];
	out->threshold = factor;
	snprintf(out->message, sizeof out->message, "%llu matri%s changed "
	    "%s by more than %g× since step %lld (largest %.3g× in %s)",
	    (unsigned long long)out->count, out->count == 1 ? "x" : "ces",
	    kind == ALERT_SNR_JUMP ? "SNR" : "alpha", factor, prev_step,
	    ratios[0], out->modules[0]);
	return true;
}

/* Changes among the window flags ending at index end (inclusive). */
static size_t
window_changes(const bool *changed, size_t end, size_t window)
{
	size_t i, c = 0;

	for (i = 0; i < window && i <= end; i++)
		c += changed[end - i];
	return c;
}

/* The churn rule (see alerts.h). */
bool
alerts_churn(const bool *changed, size_t n, size_t window, size_t min,
    struct alert *out)
{
	size_t c;

	alert_init(out, ALERT_CHURN);
	if (n == 0 || window == 0 || min == 0)
		return false;
	c = window_changes(changed, n - 1, window);
	if (c < min || (n >= 2 && window_changes(changed, n - 2, window) >=
	    min))
		return false;
	out->value = (double)c;
	out->count = c;
	out->threshold = (double)min;
	snprintf(out->message, sizeof out->message, "the selection changed "
	    "at %zu of the last %zu checkpoints (alert_churn_min %zu)", c,
	    n < window ? n : window, min);
	return true;
}

/* qsort comparator of finite doubles, ascending. */
static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The stall rule (see alerts.h). */
bool
alerts_stall(const double *wall, size_t n, double now, double factor,
    struct alert *out, double *due)
{
	double	t[ALERT_STALL_N], gap[ALERT_STALL_N], med, since;
	size_t	i, k = 0;

	alert_init(out, ALERT_STALLED);
	if (due != NULL)
		*due = 0;
	for (i = n > ALERT_STALL_N ? n - ALERT_STALL_N : 0; i < n; i++)
		if (isfinite(wall[i]) && wall[i] > 0)
			t[k++] = wall[i];
	if (!(factor > 0) || k < 3 || !isfinite(now))
		return false;
	qsort(t, k, sizeof *t, cmp_double);
	for (i = 0; i + 1 < k; i++)
		gap[i] = t[i + 1] - t[i];
	qsort(gap, k - 1, sizeof *gap, cmp_double);
	med = (k - 1) % 2 == 1 ? gap[(k - 1) / 2] :
	    (gap[(k - 1) / 2 - 1] + gap[(k - 1) / 2]) / 2;
	if (!(med > 0))
		return false;
	if (due != NULL)
		*due = t[k - 1] + factor * med;
	since = now - t[k - 1];
	if (!(since > factor * med))
		return false;
	out->value = since;
	out->threshold = factor * med;
	out->count = k;
	snprintf(out->message, sizeof out->message, "no new checkpoint for "
	    "%.0f s, over %g× the usual interval of %.0f s", since, factor,
	    med);
	return true;
}
