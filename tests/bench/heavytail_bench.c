/*
 * heavytail_bench.c: the cost of heavytail_compute() per spectrum size
 * (docs/heavytail.md). Not a test: run by hand.
 *
 *   heavytail_bench [-r reps] [k...]        (default k: 512 1024 4096 8192)
 *
 * For each k and each kind of spectrum it prints the median time of
 * heavytail_compute() over reps runs (after one warm-up), the fit it found,
 * and the median time of a naive full scan (every candidate xmin, every
 * tail point, no pruning) that must find the same fit. Times are the
 * thread's CPU time (CLOCK_THREAD_CPUTIME_ID: the fit is single-threaded),
 * so that other load on the machine inflates them less than wall time:
 *   mp      Marchenko–Pastur bulk of a k × 2k Gaussian matrix (β = 1/2)
 *   mp+pl   the same bulk with 5% of the eigenvalues replaced by a
 *           power-law tail (alpha 3) above its edge
 *   pl      a power law (alpha 2.5) over the whole spectrum
 *   plq     its quantiles, without noise: every candidate fits almost
 *           as well as the best, the hardest case for the pruning
 *   mpq     a smooth bulk without noise (eigenvalues on a parabola)
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spectrumd/common.h"
#include "spectrumd/heavytail.h"

#define MAXREPS	101

/* xorshift64*: a deterministic uniform in (0, 1). */
static double
urand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return ((*s * 2685821657736338717ULL) >> 11) * 0x1.0p-53 + 0x1.0p-54;
}

/* One eigenvalue of the Marchenko–Pastur law of ratio beta (rejection). */
static double
mp_draw(uint64_t *s, double beta)
{
	double	lo = (1 - sqrt(beta)) * (1 - sqrt(beta));
	double	hi = (1 + sqrt(beta)) * (1 + sqrt(beta));
	double	fmax = 1 / (M_PI * beta * lo), x, f;

	for (;;) {
		x = lo + (hi - lo) * urand(s);
		f = sqrt((hi - x) * (x - lo)) / (2 * M_PI * beta * x);
		if (urand(s) * fmax <= f)
			return x;
	}
}

/* Descending order for qsort. */
static int
cmp_desc(const void *a, const void *b)
{
	float	x = *(const float *)a, y = *(const float *)b;

	return (x < y) - (x > y);
}

/* Fills sv (k singular values, descending) with a spectrum of kind. */
static void
make_spectrum(const char *kind, float *sv, size_t k, uint64_t seed)
{
	uint64_t	s = seed;
	double		edge = (1 + sqrt(0.5)) * (1 + sqrt(0.5)), lam;
	size_t		i;

	for (i = 0; i < k; i++) {
		if (strcmp(kind, "pl") == 0)
			lam = pow(urand(&s), -1 / 1.5);
		else if (strcmp(kind, "plq") == 0)
			lam = pow((i + 0.5) / k, -1 / 1.5);
		else if (strcmp(kind, "mpq") == 0)
			lam = 0.09 + 2.8 * pow((i + 0.5) / k, 2);
		else if (strcmp(kind, "mp+pl") == 0 && i < k / 20)
			lam = edge * pow(urand(&s), -1 / 2.0);
		else
			lam = mp_draw(&s, 0.5);
		sv[i] = (float)sqrt(lam);
	}
	qsort(sv, k, sizeof(*sv), cmp_desc);
}

/* The naive fit: every candidate, every point; returns its alpha, *xmin. */
static double
naive_fit(const float *sv, size_t k, double *xmin)
{
	double	best = INFINITY, best_a = NAN, u, a, sl, dev, dmax;
	size_t	d, n, i, j;

	for (n = 0; n < k && (double)sv[n] * sv[n] > HEAVYTAIL_EVALS_THRESH;)
		n++;
	for (d = n; d-- > 1;) {
		if (sv[d] == sv[d - 1])
			continue;	/* not the first of its value */
		u = (double)sv[d] * sv[d];
		for (sl = 0, i = 0; i <= d; i++)
			sl += log((double)sv[i] * sv[i] / u);
		/* every value equal to u is in the tail */
		for (j = d + 1; j < n && sv[j] == sv[d]; j++)
			sl += 0;
		a = 1 + (double)j / sl;
		dmax = 0;
		for (i = 0; i < j; i++) {
			if (i + 1 < j && sv[i + 1] == sv[i])
				continue;	/* count below: the last of a run */
			dev = fabs((double)(i + 1) / j - pow((double)sv[i] *
			    sv[i] / u, 1 - a));
			dmax = dev > dmax ? dev : dmax;
		}
		if (dmax < best) {
			best = dmax;
			best_a = a;
			*xmin = u;
		}
	}
	return best_a;
}

/* Seconds of CPU time used by this thread. */
static double
cpu_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Ascending order of doubles for qsort. */
static int
cmp_dbl(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Returns the median of the n times t (sorted in place). */
static double
median(double *t, size_t n)
{
	qsort(t, n, sizeof(*t), cmp_dbl);
	return t[n / 2];
}

/* Times one kind at one size and prints a row. */
static int
bench_one(const char *kind, size_t k, size_t reps)
{
	struct heavytail_result	r;
	double			t[MAXREPS], tn[3], t0, a_naive = NAN, xm = NAN;
	float			*sv;
	size_t			i, nreps = k > 4096 ? 3 : 1;

	sv = malloc(k * sizeof(*sv));
	if (sv == NULL)
		return -1;
	make_spectrum(kind, sv, k, 0x9e3779b97f4a7c15ULL ^ k);
	if (heavytail_compute(sv, k, &r) != SPD_OK) {
		free(sv);
		return -1;
	}
	for (i = 0; i < reps; i++) {
		t0 = cpu_now();
		heavytail_compute(sv, k, &r);
		t[i] = cpu_now() - t0;
	}
	for (i = 0; i < nreps; i++) {
		t0 = cpu_now();
		a_naive = naive_fit(sv, k, &xm);
		tn[i] = cpu_now() - t0;
	}
	printf("%6zu  %-6s  %9.3f  %9.2f  %8.4f  %6zu  %6.4f  %s\n", k, kind,
	    median(t, reps) * 1e3, median(tn, nreps) * 1e3, r.alpha,
	    r.n_tail, r.ks, fabs(a_naive - r.alpha) <= 1e-9 * r.alpha &&
	    xm == r.xmin ? "same" : "DIFFERENT");
	free(sv);
	return 0;
}

/* Parses -r and the sizes, then times every kind at every size. */
int
main(int argc, char **argv)
{
	static const size_t	 defk[] = { 512, 1024, 4096, 8192 };
	static const char	*kinds[] = { "mp", "mp+pl", "pl", "plq", "mpq" };
	size_t			 reps = 11, i, j, k;
	int			 a = 1;
	char			*end;

	if (argc > 2 && strcmp(argv[1], "-r") == 0) {
		reps = strtoul(argv[2], &end, 10);
		if (*end != '\0' || reps == 0 || reps > MAXREPS) {
			fprintf(stderr, "heavytail_bench: -r 1..%d\n", MAXREPS);
			return 2;
		}
		a = 3;
	}
	printf("     k  kind  median cpu ms  naive ms     alpha  n_tail       D"
	    "  naive fit\n");
	for (i = 0; i < (argc > a ? (size_t)(argc - a) : nitems(defk)); i++) {
		k = argc > a ? strtoul(argv[a + i], &end, 10) : defk[i];
		if (k < 2 || (argc > a && *end != '\0')) {
			fprintf(stderr, "heavytail_bench: bad k\n");
			return 2;
		}
		for (j = 0; j < nitems(kinds); j++)
			if (bench_one(kinds[j], k, reps) != 0)
				return 1;
	}
	return 0;
}
