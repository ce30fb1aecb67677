/*
 * test_snr.c: snr_compute() against hand-worked spectra (DESIGN.md §1),
 * values from numpy, its edge rules, its argument checks, and a second,
 * differently written implementation on random spectra.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/snr.h"
#include "tap.h"

#define MAXK	16

/* Spectra with their expected results (numpy, float64 on float32 input). */
static const struct {
	const char	*name;
	float		 sv[MAXK];
	size_t		 k, rows, cols;
	double		 snr, sigma_hat, tau, signal, noise, fro2;
	size_t		 mp_rank;
	double		 tol;
} cases[] = {
	{ "8..1 square", { 8, 7, 6, 5, 4, 3, 2, 1 }, 8, 8, 8,
	    0.175, 2.5945144551519643, 5.1890289103039287, 21, 15, 204, 3,
	    1e-12 },
	{ "one value, 1x4096", { 3.7f }, 1, 1, 4096,
	    1.0, 0, 0, 3.7000000476837158, 1, 13.690000352859499, 1, 1e-12 },
	{ "no value <= tau: noise := 1", { 10, 9.9f, 9.8f, 9.7f }, 4, 1000, 4,
	    3.9399999618530273, 0.11119319386973568, 0.11822566892847641,
	    39.399999618530273, 1, 388.1399924850466, 4, 1e-12 },
	{ "zero noise sum: +inf", { 5, 0, 0, 0 }, 4, 4, 4,
	    INFINITY, 0.92661230541141593, 1.8532246108228319, 5, 0, 25, 1,
	    1e-12 },
	{ "all equal", { 2, 2, 2, 2, 2 }, 5, 5, 9,
	    5, 0, 0, 10, 1, 20, 5, 1e-12 },
	{ "a value equal to tau is noise", { 4, 1, 1, 1, 1, 0 }, 6, 6, 6,
	    INFINITY, 0, 0, 8, 0, 20, 5, 1e-12 },
	{ "s1 == 0: +inf", { 0, 0, 0 }, 3, 3, 3,
	    INFINITY, 0, 0, 0, 0, 0, 0, 1e-12 },
	{ "12 values, 12x40", { 12.5f, 3.25f, 3, 2.75f, 2.5f, 2.25f, 2, 1.5f,
	    1, 0.5f, 0.25f, 0.125f }, 12, 12, 40,
	    0.39069767441860465, 1.4362490733876947, 2.2229150890780276,
	    26.25, 5.375, 202.265625, 6, 1e-12 },
};

/* Inputs snr_compute must refuse. */
static const struct {
	const char	*name;
	float		 sv[4];
	size_t		 k, rows, cols;
} bad[] = {
	{ "k == 0", { 1 }, 0, 0, 4 },
	{ "k != min(rows, cols)", { 3, 2, 1 }, 3, 4, 4 },
	{ "unsorted", { 1, 2, 0.5f }, 3, 3, 8 },
	{ "negative", { 3, 2, -1 }, 3, 3, 3 },
	{ "NaN", { 3, NAN, 1 }, 3, 3, 3 },
	{ "+inf", { INFINITY, 2, 1 }, 3, 3, 3 },
};

/* Sorts v[0..n) ascending by insertion. */
static void
sort_asc(double *v, size_t n)
{
	size_t	i, j;
	double	x;

	for (i = 1; i < n; i++) {
		x = v[i];
		for (j = i; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/* numpy's linear quantile of an ascending array (its lerp formulation). */
static double
np_quantile(const double *a, size_t n, double q)
{
	double	virt = q * (double)(n - 1), g, lo, hi, d;
	size_t	prev = (size_t)floor(virt), next;

	next = prev + 1 < n ? prev + 1 : n - 1;
	g = virt - floor(virt);
	lo = a[prev];
	hi = a[next];
	d = hi - lo;
	return g >= 0.5 ? hi - d * (1 - g) : lo + d * g;
}

/* A straightforward SNR: sort an ascending copy, quantiles, two passes. */
static double
naive_snr(const float *sv, size_t k, size_t rows, size_t cols)
{
	double	a[512], sig, tau, signal = 0, noise = 0, big, small;
	size_t	i, nn = 0;

	for (i = 0; i < k; i++)
		a[i] = sv[i];
	sort_asc(a, k);
	sig = (np_quantile(a, k, 0.75) - np_quantile(a, k, 0.25)) / 1.349;
	big = (double)(rows > cols ? rows : cols);
	small = (double)(rows < cols ? rows : cols);
	tau = sig * sqrt(pow(1 + sqrt(small / big), 2));
	for (i = 0; i < k; i++)
		if (a[i] > tau)
			signal += a[i];
	for (i = 0; i < k; i++)
		if (!(a[i] > tau)) {
			noise += a[i];
			nn++;
		}
	if (nn == 0)
		noise = 1;
	if (noise == 0 || a[k - 1] == 0)
		return INFINITY;
	return signal / noise / a[k - 1];
}

/* A deterministic generator, so failures reproduce. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

/* Returns a uniform double in [0, 1). */
static double
urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

/* Orders floats descending. */
static int
cmp_desc(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* Random spectra of several shapes against naive_snr(). */
static void
test_random(void)
{
	float			sv[512];
	struct snr_result	r;
	size_t			t, i, k, rows, cols;
	double			want;
	int			nfail = 0;

	for (t = 0; t < 200; t++) {
		k = 1 + (size_t)(urand() * 300);
		rows = k;
		cols = k + (size_t)(urand() * 3 * (double)k);
		if (t % 2)
			rows = cols, cols = k;
		for (i = 0; i < k; i++)	/* a few spikes over a noise bulk */
			sv[i] = (float)(urand() * (i < k / 10 ? 50 : 3));
		if (t % 7 == 0)		/* ties and exact zeros */
			for (i = 0; i < k; i += 3)
				sv[i] = (float)(i % 2);
		qsort(sv, k, sizeof *sv, cmp_desc);
		want = naive_snr(sv, k, rows, cols);
		if (snr_compute(sv, k, rows, cols, &r) != SPD_OK ||
		    !(isinf(want) ? r.snr == want :
		    fabs(r.snr - want) <= 1e-12 * fabs(want))) {
			if (nfail++ < 5)
				printf("# case %zu: k %zu %zux%zu got %.17g "
				    "want %.17g\n", t, k, rows, cols, r.snr,
				    want);
		}
	}
	ok(nfail == 0, "200 random spectra agree with a naive version "
	    "(%d differ)", nfail);
}

/* The table cases: every field of the result. */
static void
test_cases(void)
{
	struct snr_result	r;
	size_t			i;
	double			tol;

	for (i = 0; i < nitems(cases); i++) {
		tol = cases[i].tol;
		memset(&r, 0xa5, sizeof r);
		if (!ok(snr_compute(cases[i].sv, cases[i].k, cases[i].rows,
		    cases[i].cols, &r) == SPD_OK, "%s: rc", cases[i].name))
			continue;
		ok_near(r.snr, cases[i].snr, tol, "%s: snr", cases[i].name);
		ok_near(r.s1, cases[i].sv[0], 0, "%s: s1", cases[i].name);
		ok_near(r.sigma_hat, cases[i].sigma_hat, tol, "%s: sigma_hat",
		    cases[i].name);
		ok_near(r.tau, cases[i].tau, tol, "%s: tau", cases[i].name);
		ok_near(r.signal, cases[i].signal, tol, "%s: signal",
		    cases[i].name);
		ok_near(r.noise, cases[i].noise, tol, "%s: noise",
		    cases[i].name);
		ok_near(r.fro2, cases[i].fro2, tol, "%s: fro2", cases[i].name);
		ok_near(r.stable_rank, cases[i].sv[0] > 0 ? cases[i].fro2 /
		    ((double)cases[i].sv[0] * cases[i].sv[0]) : 0, tol,
		    "%s: stable_rank", cases[i].name);
		ok(r.mp_rank == cases[i].mp_rank, "%s: mp_rank %zu",
		    cases[i].name, r.mp_rank);
	}
}

/* The vectors of the brief, at the precision they are given. */
static void
test_brief(void)
{
	static const float	s8[] = { 8, 7, 6, 5, 4, 3, 2, 1 };
	static const float	s4[] = { 10, 9.9f, 9.8f, 9.7f };
	struct snr_result	r;

	snr_compute(s8, 8, 8, 8, &r);
	ok(fabs(r.tau - 5.18903) < 5e-6, "8..1: tau %.5f", r.tau);
	ok(fabs(r.snr - 0.175) < 1e-15, "8..1: snr %.17g", r.snr);
	snr_compute(s4, 4, 1000, 4, &r);
	ok(fabs(r.snr - 3.94) < 5e-4, "1000x4: snr %.3f", r.snr);
	ok(r.noise == 1 && r.mp_rank == 4, "1000x4: noise := 1");
}

/* Refused inputs, and an out that stays untouched. */
static void
test_invalid(void)
{
	static const float	one = 1;
	struct snr_result	r;
	size_t			i;

	for (i = 0; i < nitems(bad); i++) {
		memset(&r, 0x5a, sizeof r);
		ok(snr_compute(bad[i].sv, bad[i].k, bad[i].rows, bad[i].cols,
		    &r) == SPD_EINVAL, "refuses %s", bad[i].name);
	}
	ok(snr_compute(NULL, 1, 1, 1, &r) == SPD_EINVAL, "refuses sv NULL");
	ok(snr_compute(&one, 1, 1, 1, NULL) == SPD_EINVAL, "refuses out NULL");
	ok(snr_compute(&one, 1, 1, 1, &r) == SPD_OK && r.snr == 1,
	    "1x1 matrix: snr 1");
}

/* Runs every group. */
int
main(void)
{
	test_cases();
	test_brief();
	test_invalid();
	test_random();
	return tap_done();
}
