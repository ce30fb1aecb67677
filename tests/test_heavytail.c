/*
 * test_heavytail.c: heavytail_compute() on a hand-worked spectrum, on
 * planted power laws whose exponent it must recover within three standard
 * errors, against a brute-force fit written differently (every candidate,
 * every tail point, no pruning) on random spectra with and without ties,
 * and its edge rules and argument checks.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/heavytail.h"
#include "tap.h"

#define MAXK	4096

/* xorshift64*: a deterministic uniform in (0, 1). */
static double
urand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return ((*s * 2685821657736338717ULL) >> 11) * 0x1.0p-53 + 0x1.0p-54;
}

/* Descending order for qsort. */
static int
cmp_desc(const void *a, const void *b)
{
	float	x = *(const float *)a, y = *(const float *)b;

	return (x < y) - (x > y);
}

/*
 * Fills sv with the square roots of ntail eigenvalues drawn from the power
 * law of exponent alpha above 1 and nbulk uniform in [0.05, 0.95).
 */
static size_t
planted(float *sv, double alpha, size_t ntail, size_t nbulk, uint64_t seed)
{
	size_t	i;

	for (i = 0; i < ntail; i++)
		sv[i] = (float)sqrt(pow(urand(&seed), -1 / (alpha - 1)));
	for (; i < ntail + nbulk; i++)
		sv[i] = (float)sqrt(0.05 + 0.9 * urand(&seed));
	qsort(sv, ntail + nbulk, sizeof(*sv), cmp_desc);
	return ntail + nbulk;
}

/*
 * The brute-force fit: for each distinct eigenvalue but the largest, in
 * ascending order, refit the tail from scratch. Returns D, sets *alpha and
 * *xmin. Only for values all above the threshold.
 */
static double
brute_fit(const float *sv, size_t k, double *alpha, double *xmin)
{
	double	best = INFINITY, u, v, a, sl, dev, dmax, below;
	size_t	c, i, j, n;

	for (c = k; c-- > 0;) {
		u = (double)sv[c] * sv[c];
		if (sv[c] == sv[0] || (c + 1 < k && sv[c + 1] == sv[c]))
			continue;	/* the largest, or not a run's last */
		for (sl = 0, n = 0, i = 0; i < k && sv[i] >= sv[c]; i++, n++)
			sl += log((double)sv[i] * sv[i] / u);
		a = 1 + n / sl;
		dmax = 0;
		for (i = 0; i < n; i++) {
			v = (double)sv[i] * sv[i];
			for (below = 0, j = 0; j < n; j++)
				below += (double)sv[j] * sv[j] < v;
			dev = fabs(1 - pow(v / u, 1 - a) - below / n);
			if (dev > dmax)
				dmax = dev;
		}
		if (dmax < best) {
			best = dmax;
			*alpha = a;
			*xmin = u;
		}
	}
	return best;
}

/* Ten values 5, 4.5, …, 0.5 by hand, and D from tests/ref/heavytail_ref.py. */
static void
test_hand(void)
{
	static const float	sv[] = { 5, 4.5, 4, 3.5, 3, 2.5, 2, 1.5, 1, 0.5 };
	struct heavytail_result	r;
	double			alpha;

	/* xmin 9: the tail 9, 12.25, 16, 20.25, 25 (n = 5). */
	alpha = 1 + 5 / log(12.25 * 16 * 20.25 * 25 / (9.0 * 9 * 9 * 9));
	ok(heavytail_compute(sv, nitems(sv), &r) == SPD_OK &&
	    r.status == HEAVYTAIL_OK, "hand: fitted");
	ok(r.xmin == 9 && r.n_tail == 5 && r.n_evals == 10,
	    "hand: xmin 9, 5 of 10 in the tail");
	ok_near(r.alpha, alpha, 1e-14, "hand: alpha");
	ok_near(r.ks, 0.25323780014523267, 1e-13, "hand: D");
	ok_near(r.sigma, (alpha - 1) / sqrt(5), 1e-14, "hand: sigma");
	ok_near(r.log_spectral_norm, 2 * log10(5.0), 1e-15,
	    "hand: log_spectral_norm = log10(s1^2)");
	ok_near(r.alpha_weighted, alpha * log10(25.0), 1e-14,
	    "hand: alpha_weighted");
}

/* Planted exponents come back within three standard errors. */
static void
test_planted(void)
{
	static const double	 alphas[] = { 2, 3, 4 };
	static float		 sv[MAXK];
	struct heavytail_result	 r;
	size_t			 i, k;
	uint64_t		 seed;

	for (i = 0; i < nitems(alphas); i++) {
		for (seed = 1; seed <= 3; seed++) {
			k = planted(sv, alphas[i], 1500, 1500,
			    seed * 7919 + i * 104729);
			if (heavytail_compute(sv, k, &r) != SPD_OK)
				r.status = HEAVYTAIL_NONFINITE;
			ok(r.status == HEAVYTAIL_OK &&
			    fabs(r.alpha - alphas[i]) <= 3 * r.sigma &&
			    r.xmin >= 0.95 && r.n_tail >= 300,
			    "planted alpha %g, seed %d: %.4f ± %.4f, xmin %.4g, "
			    "n_tail %zu, D %.4f", alphas[i], (int)seed,
			    r.alpha, r.sigma, r.xmin, r.n_tail, r.ks);
		}
	}
}

/* alpha and D do not depend on the scale; xmin and the norms do. */
static void
test_scale(void)
{
	static float		sv[MAXK], sc[MAXK];
	struct heavytail_result	r, q;
	size_t			i, k;

	k = planted(sv, 2.5, 800, 400, 42);
	for (i = 0; i < k; i++)
		sc[i] = sv[i] * 1024;	/* exact: a power of two */
	heavytail_compute(sv, k, &r);
	heavytail_compute(sc, k, &q);
	ok(q.n_tail == r.n_tail && q.xmin == r.xmin * 1048576,
	    "scale 1024: the same tail, xmin x 2^20");
	ok_near(q.alpha, r.alpha, 1e-12, "scale 1024: alpha");
	ok_near(q.ks, r.ks, 1e-12, "scale 1024: D");
	ok_near(q.log_spectral_norm, r.log_spectral_norm + 2 * log10(1024.0),
	    1e-14, "scale 1024: log_spectral_norm + 2 log10(1024)");
}

/* Fills sv with a random spectrum; levels > 0 quantises it (ties). */
static void
random_spectrum(float *sv, size_t k, unsigned levels, uint64_t seed)
{
	size_t	i;
	double	x;

	for (i = 0; i < k; i++) {
		x = urand(&seed) < 0.2 ? pow(urand(&seed), -0.5) :
		    0.2 + urand(&seed);
		if (levels > 0)
			x = ceil(x * levels) / levels;
		sv[i] = (float)x;
	}
	qsort(sv, k, sizeof(*sv), cmp_desc);
}

/* The pruned scan finds what the brute force finds. */
static void
test_brute(void)
{
	static const struct {
		size_t		k;
		unsigned	levels;
	} cases[] = {
		{ 10, 0 }, { 11, 4 }, { 37, 0 }, { 64, 8 }, { 200, 0 },
		{ 300, 20 }, { 500, 0 }, { 700, 50 },
	};
	static float		sv[MAXK];
	struct heavytail_result	r;
	double			d, alpha = NAN, xmin = NAN;
	size_t			i, rep, same = 0, total = 0;

	for (i = 0; i < nitems(cases); i++) {
		for (rep = 0; rep < 4; rep++) {
			random_spectrum(sv, cases[i].k, cases[i].levels,
			    1000 * i + rep + 1);
			d = brute_fit(sv, cases[i].k, &alpha, &xmin);
			total++;
			if (heavytail_compute(sv, cases[i].k, &r) == SPD_OK &&
			    r.xmin == xmin && fabs(r.alpha - alpha) <=
			    1e-12 * alpha && fabs(r.ks - d) <= 1e-12)
				same++;
			else
				printf("# k %zu levels %u rep %zu: xmin %.17g/"
				    "%.17g alpha %.17g/%.17g D %.17g/%.17g\n",
				    cases[i].k, cases[i].levels, rep, r.xmin,
				    xmin, r.alpha, alpha, r.ks, d);
		}
	}
	ok(same == total, "brute force: %zu of %zu fits the same", same,
	    total);
}

/* Returns true when every metric of r is NaN. */
static int
all_nan(const struct heavytail_result *r)
{
	return isnan(r->alpha) && isnan(r->alpha_weighted) && isnan(r->ks) &&
	    isnan(r->xmin) && isnan(r->sigma) && r->n_tail == 0;
}

/* Spectra with no fit: NaN metrics and a status, never an error. */
static void
test_no_fit(void)
{
	static const float	nine[] = { 9, 8, 7, 6, 5, 4, 3, 2, 1 };
	static const float	flat[12] = { 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2 };
	static const float	zero[16] = { 0 };
	static const float	nan1[] = { 3, NAN, 1 };
	static const float	inf1[] = { INFINITY, 2, 1 };
	static float		sv[40];
	struct heavytail_result	r;
	size_t			i;

	ok(heavytail_compute(nine, nitems(nine), &r) == SPD_OK &&
	    r.status == HEAVYTAIL_TOO_FEW && all_nan(&r) && r.n_evals == 9 &&
	    r.log_spectral_norm == log10(81.0), "9 values: too few, "
	    "log_spectral_norm still set");
	for (i = 0; i < 40; i++)	/* 9 above 1e-5, then 1e-3², 0 */
		sv[i] = i < 9 ? 9.0f - (float)i : i < 20 ? 1e-3f : 0;
	ok(heavytail_compute(sv, 40, &r) == SPD_OK &&
	    r.status == HEAVYTAIL_TOO_FEW && r.n_evals == 9,
	    "9 above the threshold, 31 at or below: too few");
	ok(heavytail_compute(flat, nitems(flat), &r) == SPD_OK &&
	    r.status == HEAVYTAIL_FLAT && all_nan(&r) && r.n_evals == 12 &&
	    r.log_spectral_norm == log10(4.0), "all equal: flat");
	ok(heavytail_compute(zero, nitems(zero), &r) == SPD_OK &&
	    r.status == HEAVYTAIL_TOO_FEW && all_nan(&r) &&
	    r.log_spectral_norm == -INFINITY, "all zero: too few, "
	    "log_spectral_norm -inf");
	ok(heavytail_compute(nan1, nitems(nan1), &r) == SPD_OK &&
	    r.status == HEAVYTAIL_NONFINITE && all_nan(&r) &&
	    isnan(r.log_spectral_norm), "NaN: nonfinite, all NaN");
	ok(heavytail_compute(inf1, nitems(inf1), &r) == SPD_OK &&
	    r.status == HEAVYTAIL_NONFINITE && all_nan(&r),
	    "+inf: nonfinite");
}

/* Zeros and values at or below the threshold do not change the fit. */
static void
test_zeros(void)
{
	static float		sv[MAXK];
	struct heavytail_result	r, z;
	size_t			i, k;

	k = planted(sv, 3, 300, 300, 5);
	heavytail_compute(sv, k, &r);
	for (i = k; i < k + 100; i++)
		sv[i] = i < k + 50 ? 0.003f : 0;	/* λ = 9e-6, 0 */
	ok(heavytail_compute(sv, k + 100, &z) == SPD_OK &&
	    z.status == HEAVYTAIL_OK && z.n_evals == k && z.xmin == r.xmin &&
	    z.alpha == r.alpha && z.ks == r.ks,
	    "100 values with λ ≤ 1e-5 appended: the same fit");
}

/* Arguments heavytail_compute() refuses. */
static void
test_refused(void)
{
	static const float	unsorted[] = { 1, 2, 0.5f };
	static const float	negative[] = { 3, 2, -1 };
	struct heavytail_result	r;

	r.status = HEAVYTAIL_FLAT;
	ok(heavytail_compute(unsorted, 0, &r) == SPD_EINVAL, "k == 0");
	ok(heavytail_compute(NULL, 3, &r) == SPD_EINVAL, "sv NULL");
	ok(heavytail_compute(unsorted, 3, NULL) == SPD_EINVAL, "out NULL");
	ok(heavytail_compute(unsorted, 3, &r) == SPD_EINVAL, "unsorted");
	ok(heavytail_compute(negative, 3, &r) == SPD_EINVAL &&
	    r.status == HEAVYTAIL_FLAT, "negative; out untouched");
	ok(strcmp(heavytail_status_name(HEAVYTAIL_TOO_FEW), "too_few") == 0 &&
	    strcmp(heavytail_status_name((enum heavytail_status)99),
	    "unknown") == 0, "status names");
}

/* Runs every group. */
int
main(void)
{
	test_hand();
	test_planted();
	test_scale();
	test_brute();
	test_no_fit();
	test_zeros();
	test_refused();
	return tap_done();
}
