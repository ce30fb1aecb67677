/*
 * heavytail.c: the power-law fit of a spectrum's eigenvalues and the
 * metrics built on it (docs/heavytail.md). Pure math, <math.h> only.
 *
 * The eigenvalues λ = s² > HEAVYTAIL_EVALS_THRESH are grouped into M
 * distinct values u_0 > u_1 > … > u_{M−1} (descending, as sv is). The
 * candidate xmin = u_d (d ≥ 1; the largest value has no tail) has the
 * tail of the n_d eigenvalues ≥ u_d, the exponent
 *	alpha_d = 1 + n_d / Σ_{λ ≥ u_d} ln(λ / u_d)
 * and the KS distance
 *	D_d = max_{m ≤ d} | c_m / n_d − (u_m / u_d)^(1 − alpha_d) |
 * where c_m counts the eigenvalues ≥ u_m: the power-law CDF
 * 1 − (x/xmin)^(1−alpha) against the tail's empirical CDF taken, as the
 * powerlaw package does, as the fraction of the tail strictly below x.
 * Suffix sums of ln λ make alpha_d O(1); D_d is O(d), and a candidate is
 * abandoned as soon as part of its maximum already exceeds the best D so
 * far (a few evenly spread candidates are done first for a good bound, and
 * a few evenly spread points of each tail are probed before the rest), so
 * the scan is O(k²) only in the worst case and its answer is exactly a
 * full scan's: a maximum does not depend on the order of its terms.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "spectrumd/heavytail.h"

/* Candidates evaluated first, evenly spread, to start with a good bound. */
#define COARSE_CANDIDATES	32

/* Points of a candidate's tail probed first, evenly spread. */
#define PROBES	16

/* Scratch of one fit, indexed by distinct eigenvalue (descending). */
struct fit {
	double	*lu;		/* ln u_d */
	double	*cnt;		/* c_d: eigenvalues ≥ u_d (exact in double) */
	double	*lsum;		/* Σ ln λ over λ ≥ u_d, compensated */
	size_t	 m;		/* distinct values */
	double	 best_d;	/* smallest D so far (+inf: none) */
	size_t	 best;		/* its candidate */
	size_t	 hint;		/* where the best candidate's D was reached */
};

/* Names of enum heavytail_status, in order. */
static const char *const status_names[] = {
	"ok", "nonfinite", "too_few", "flat"
};

/* Returns a short constant name for st. */
const char *
heavytail_status_name(enum heavytail_status st)
{
	if ((size_t)st >= nitems(status_names))
		return "unknown";
	return status_names[st];
}

/* Sets every metric of r to NaN with status st. */
static void
result_none(struct heavytail_result *r, enum heavytail_status st)
{
	r->status = st;
	r->alpha = r->alpha_weighted = r->ks = NAN;
	r->log_spectral_norm = r->xmin = r->sigma = NAN;
	r->n_tail = r->n_evals = 0;
}

/*
 * Checks sv: returns 1 when a value is NaN or infinite, -1 when one is
 * negative or the values are not descending, else 0.
 */
static int
spectrum_check(const float *sv, size_t k)
{
	size_t	i;
	int	bad = 0;

	for (i = 0; i < k; i++) {
		if (!isfinite(sv[i]))
			return 1;
		if (sv[i] < 0 || (i > 0 && sv[i] > sv[i - 1]))
			bad = -1;
	}
	return bad;
}

/* Adds x to the compensated sum (*s, *c) (Neumaier's variant of Kahan). */
static void
sum_add(double *s, double *c, double x)
{
	double	t = *s + x;

	if (fabs(*s) >= fabs(x))
		*c += (*s - t) + x;
	else
		*c += (x - t) + *s;
	*s = t;
}

/*
 * Fills f from the n leading (largest) values of sv, all with λ above the
 * threshold: the distinct eigenvalues' logs, counts and log sums.
 */
static void
fit_fill(struct fit *f, const float *sv, size_t n)
{
	double	s = 0, c = 0, lam, prev = -1, lnl = 0;
	size_t	i, m = 0;

	for (i = 0; i < n; i++) {
		lam = (double)sv[i] * sv[i];	/* exact: 48-bit product */
		if (lam != prev) {
			lnl = log(lam);
			f->lu[m++] = lnl;
			prev = lam;
		}
		sum_add(&s, &c, lnl);
		f->cnt[m - 1] = (double)(i + 1);
		f->lsum[m - 1] = s + c;
	}
	f->m = m;
}

/* The MLE exponent of candidate d: 1 + n / Σ ln(λ / u_d), n = c_d. */
static double
fit_alpha(const struct fit *f, size_t d)
{
	double	n = f->cnt[d];

	/* Σ ln λ − n ln u_d, the product rounded once. */
	return 1 + n / fma(-n, f->lu[d], f->lsum[d]);
}

/* |CDF difference| of candidate d (exponent a) at distinct value m ≤ d. */
static double
fit_dev(const struct fit *f, size_t d, double a, size_t m)
{
	return fabs(f->cnt[m] / f->cnt[d] -
	    exp((1 - a) * (f->lu[m] - f->lu[d])));
}

/* True when D (of candidate d) beats the best: smaller, ties to smaller xmin. */
static int
fit_better(const struct fit *f, double dist, size_t d)
{
	return dist < f->best_d || (dist == f->best_d && d > f->best);
}

/*
 * Computes candidate d's KS distance and makes it the best if it beats
 * the best so far; gives up on it as soon as it cannot.
 */
static void
fit_try(struct fit *f, size_t d)
{
	double	a, dev, dmax = 0;
	size_t	m, at = d;

	a = fit_alpha(f, d);
	if (!(a > 1 && a < INFINITY))
		return;		/* only if the log sum were lost to rounding */
	if (f->hint <= d && !fit_better(f, fit_dev(f, d, a, f->hint), d))
		return;
	for (m = 0; m < d; m += d / PROBES + 1)
		if (!fit_better(f, fit_dev(f, d, a, m), d))
			return;
	for (m = 0; m < d; m++) {
		dev = fit_dev(f, d, a, m);
		if (dev > dmax) {
			dmax = dev;
			at = m;
			if (!fit_better(f, dmax, d))
				return;
		}
	}
	if (!fit_better(f, dmax, d))
		return;
	f->best_d = dmax;
	f->best = d;
	f->hint = at;
}

/* Scans every candidate xmin (d = 1 … m−1) for the smallest D. */
static void
fit_scan(struct fit *f)
{
	size_t	d, step;

	f->best_d = INFINITY;
	f->best = 0;
	f->hint = f->m;		/* none yet */
	step = f->m / COARSE_CANDIDATES + 1;
	for (d = 1; d < f->m; d += step)
		fit_try(f, d);
	for (d = 1; d < f->m; d++)
		if ((d - 1) % step != 0)
			fit_try(f, d);
}

/* Returns the d-th distinct eigenvalue (descending) of sv. */
static double
distinct_at(const float *sv, size_t d)
{
	size_t	i, m = 0;

	for (i = 1; m < d; i++)
		if (sv[i] != sv[i - 1])
			m++;
	return (double)sv[i - 1] * sv[i - 1];
}

/* Fits the n > 0 eigenvalues above the threshold, the largest first. */
static enum spd_err
fit_run(const float *sv, size_t n, struct heavytail_result *r)
{
	struct fit	f = { 0 };
	double		lmax = (double)sv[0] * sv[0];

	f.lu = calloc(n, sizeof(*f.lu));
	f.cnt = calloc(n, sizeof(*f.cnt));
	f.lsum = calloc(n, sizeof(*f.lsum));
	if (f.lu == NULL || f.cnt == NULL || f.lsum == NULL) {
		free(f.lu);
		free(f.cnt);
		free(f.lsum);
		return SPD_ENOMEM;
	}
	fit_fill(&f, sv, n);
	if (f.m < 2) {
		result_none(r, HEAVYTAIL_FLAT);
	} else {
		fit_scan(&f);
		r->status = HEAVYTAIL_OK;
		r->alpha = fit_alpha(&f, f.best);
		r->ks = f.best_d;
		r->xmin = distinct_at(sv, f.best);
		r->n_tail = (size_t)f.cnt[f.best];
		r->sigma = (r->alpha - 1) / sqrt(f.cnt[f.best]);
		r->alpha_weighted = r->alpha * log10(lmax);
	}
	free(f.lu);
	free(f.cnt);
	free(f.lsum);
	return SPD_OK;
}

/* Fits the power law to the eigenvalues of one descending spectrum. */
enum spd_err
heavytail_compute(const float *sv, size_t k, struct heavytail_result *out)
{
	struct heavytail_result	r;
	enum spd_err		rc;
	size_t			n;
	int			chk;

	if (sv == NULL || out == NULL || k == 0)
		return SPD_EINVAL;
	chk = spectrum_check(sv, k);
	if (chk < 0)
		return SPD_EINVAL;
	if (chk > 0) {
		result_none(out, HEAVYTAIL_NONFINITE);
		return SPD_OK;
	}
	for (n = 0; n < k; n++)
		if ((double)sv[n] * sv[n] <= HEAVYTAIL_EVALS_THRESH)
			break;
	if (n < HEAVYTAIL_MIN_EVALS) {
		result_none(&r, HEAVYTAIL_TOO_FEW);
	} else {
		rc = fit_run(sv, n, &r);
		if (rc != SPD_OK)
			return rc;
	}
	r.n_evals = n;
	r.log_spectral_norm = log10((double)sv[0] * sv[0]);
	*out = r;
	return SPD_OK;
}
