/*
 * svd_methods.c: micro-benchmark of the singular-value routes
 * (DESIGN.md §6). Not a test: run by hand or by tests/gpu/check.sh.
 *
 *   svd_methods [-t threads] [-r reps] [-d f32|bf16|f16] [-m methods]
 *       [-b cpu|cuda] [-w count] shape...
 *
 * shape is ROWSxCOLS. methods is a comma list of
 *   prod    svd_values() on backend -b (the production route)
 *   gram32  float32 Gram (one ssyrk on the whole matrix) + ssyevd
 *   sgesdd  LAPACKE_sgesdd, jobz 'N'
 *   gram64  float64 Gram (dsyrk) + dsyevd
 * Every method's SNR is compared with float64 dgesdd ('N') of the same
 * (dequantised) matrix unless -n is given. The last column is the
 * float32 Gram route's relative SNR error bound (svd_snr_bound(), with the
 * trace taken as Σs², docs/snr-error-bound.md) for the method's values. Times are medians of -r runs
 * after one warm-up run (1 run, no warm-up, for sgesdd and dgesdd).
 * -w count: instead, time count square matrices of each shape with one
 * worker × threads BLAS threads against threads workers × 1 BLAS thread.
 *
 * This program links LAPACKE/CBLAS itself to run the reference methods;
 * that is allowed here only (the library keeps them in src/svd_cpu.c).
 * Without <lapacke.h> it builds with "prod" alone (as -n), for GPU hosts
 * that lack the CPU libraries' headers.
 */
#include "config.h"

#if defined(HAVE_LAPACKE_H) && defined(HAVE_CBLAS_H)
#define BENCH_REF	1	/* reference methods need LAPACKE + CBLAS */
#include <cblas.h>
#include <lapacke.h>
#endif
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spectrumd/common.h"
#include "spectrumd/snr.h"
#include "spectrumd/svd.h"
#include "spectrumd/tensor.h"
#include "svd_backend.h"	/* svd_snr_bound(), for the last column */
#include "../rng.h"

#ifdef BENCH_REF
void	openblas_set_num_threads(int);
#endif

#define MAXREPS	64

struct bench {
	unsigned	 threads, reps;
	enum dtype	 dt;
	const char	*methods;
	const char	*backend;
	int		 noref;
	size_t		 workers;	/* -w count, 0 = off */
};

struct mat {
	size_t		 r, c;
	enum dtype	 dt;
	void		*raw;		/* stored dtype, row-major */
	float		*f;		/* dequantised float32 */
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* Rounds f to bfloat16 (nearest even) and returns its bits. */
static uint16_t
f32_to_bf16(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	u += 0x7fff + ((u >> 16) & 1);
	return (uint16_t)(u >> 16);
}

/* Rounds f to IEEE half (finite, normal range) and returns its bits. */
static uint16_t
f32_to_f16(float f)
{
	uint32_t	u, man;
	int		e;
	uint16_t	s;

	memcpy(&u, &f, 4);
	s = (uint16_t)((u >> 16) & 0x8000);
	e = (int)((u >> 23) & 0xff) - 127 + 15;
	man = u & 0x7fffff;
	if (e <= 0)
		return s;		/* flush tiny values: not used here */
	if (e >= 31)
		return s | 0x7c00;
	u = ((uint32_t)e << 10 | man >> 13) + ((man >> 12) & 1);
	return s | (uint16_t)u;
}

/*
 * Fills an r × c matrix that looks like a trained weight: Gaussian noise
 * with decaying column scales plus a rank-8 signal, stored in dt.
 */
static int
mat_make(struct mat *m, size_t r, size_t c, enum dtype dt)
{
	size_t	i, j, l, n = r * c;
	float	u[8][64], v[8][64];
	float	*f;

	m->r = r;
	m->c = c;
	m->dt = dt;
	m->f = malloc(n * sizeof(float));
	m->raw = malloc(n * (dtype_bits(dt) / 8));
	if (m->f == NULL || m->raw == NULL)
		return -1;
	f = m->f;
	for (l = 0; l < 8; l++)
		for (i = 0; i < 64; i++) {
			u[l][i] = (float)rng_normal(&rng_state);
			v[l][i] = (float)rng_normal(&rng_state);
		}
	for (i = 0; i < r; i++)
		for (j = 0; j < c; j++) {
			double x = rng_normal(&rng_state) / (1 + 4.0 * j / c);

			for (l = 0; l < 8; l++)
				x += 0.05 / (l + 1) * u[l][i % 64] *
				    v[l][(j * 7 + l) % 64];
			f[i * c + j] = (float)(0.02 * x);
		}
	for (i = 0; i < n; i++) {
		uint16_t h;

		switch (dt) {
		case DT_BF16:
			h = f32_to_bf16(f[i]);
			memcpy((char *)m->raw + 2 * i, &h, 2);
			break;
		case DT_F16:
			h = f32_to_f16(f[i]);
			memcpy((char *)m->raw + 2 * i, &h, 2);
			break;
		default:
			memcpy((char *)m->raw + 4 * i, &f[i], 4);
			break;
		}
	}
	tensor_to_f32(m->raw, dt, n, m->f);	/* exactly what is stored */
	return 0;
}

/* Frees m's buffers. */
static void
mat_free(struct mat *m)
{
	free(m->f);
	free(m->raw);
}

/* SNR of descending values (double) through snr_compute(). */
static double
snr_of(const double *s, size_t k, size_t r, size_t c)
{
	struct snr_result	 res;
	float			*f = malloc(k * sizeof(float));
	size_t			 i;

	if (f == NULL)
		return NAN;
	for (i = 0; i < k; i++)
		f[i] = (float)s[i];
	if (snr_compute(f, k, r, c, &res) != SPD_OK)
		res.snr = NAN;
	free(f);
	return res.snr;
}


#ifdef BENCH_REF
/* gram32: one ssyrk on the whole float32 matrix + ssyevd, values only. */
static int
run_gram32(const struct mat *m, double *s)
{
	size_t	 k = m->r < m->c ? m->r : m->c, i;
	float	*g = malloc(k * k * sizeof(float)), *w = malloc(k * 4);
	int	 tr = m->r < m->c, rc;

	if (g == NULL || w == NULL)
		return -1;
	cblas_ssyrk(CblasColMajor, CblasUpper, tr ? CblasTrans : CblasNoTrans,
	    (int)k, (int)(tr ? m->c : m->r), 1, m->f, (int)m->c, 0, g, (int)k);
	rc = LAPACKE_ssyevd(LAPACK_COL_MAJOR, 'N', 'U', (int)k, g, (int)k, w);
	for (i = 0; i < k; i++)
		s[k - 1 - i] = sqrt(w[i] > 0 ? w[i] : 0);
	free(g);
	free(w);
	return rc;
}

/* gram64: a float64 copy, dsyrk + dsyevd, values only. */
static int
run_gram64(const struct mat *m, double *s)
{
	size_t	 k = m->r < m->c ? m->r : m->c, i, n = m->r * m->c;
	double	*a = malloc(n * 8), *g = malloc(k * k * 8), *w = malloc(k * 8);
	int	 tr = m->r < m->c, rc = -1;

	if (a != NULL && g != NULL && w != NULL) {
		for (i = 0; i < n; i++)
			a[i] = m->f[i];
		cblas_dsyrk(CblasColMajor, CblasUpper,
		    tr ? CblasTrans : CblasNoTrans, (int)k,
		    (int)(tr ? m->c : m->r), 1, a, (int)m->c, 0, g, (int)k);
		rc = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'U', (int)k, g,
		    (int)k, w);
		for (i = 0; i < k; i++)
			s[k - 1 - i] = sqrt(w[i] > 0 ? w[i] : 0);
	}
	free(a);
	free(g);
	free(w);
	return rc;
}

/* sgesdd on the column-major c × r view (same values), jobz 'N'. */
static int
run_sgesdd(const struct mat *m, double *s)
{
	size_t	 k = m->r < m->c ? m->r : m->c, i, n = m->r * m->c;
	float	*a = malloc(n * 4), *w = malloc(k * 4);
	int	 rc = -1;

	if (a != NULL && w != NULL) {
		memcpy(a, m->f, n * 4);
		rc = LAPACKE_sgesdd(LAPACK_COL_MAJOR, 'N', (int)m->c, (int)m->r,
		    a, (int)m->c, w, NULL, 1, NULL, 1);
		for (i = 0; i < k; i++)
			s[i] = w[i];
	}
	free(a);
	free(w);
	return rc;
}

/* dgesdd in float64: the reference. */
static int
run_dgesdd(const struct mat *m, double *s)
{
	size_t	 i, n = m->r * m->c;
	double	*a = malloc(n * 8);
	int	 rc = -1;

	if (a != NULL) {
		for (i = 0; i < n; i++)
			a[i] = m->f[i];
		rc = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', (int)m->c, (int)m->r,
		    a, (int)m->c, s, NULL, 1, NULL, 1);
	}
	free(a);
	return rc;
}

#endif

static struct svd *prod_svd;

/* prod: svd_values() on the stored dtype. */
static int
run_prod(const struct mat *m, double *s)
{
	struct svd_matrix	 sm = { m->raw, m->dt, m->r, m->c };
	struct spd_errbuf	 eb;
	size_t			 k = m->r < m->c ? m->r : m->c, i;
	float			*f = malloc(k * sizeof(float));
	enum spd_err		 rc;

	if (f == NULL)
		return -1;
	rc = svd_values(prod_svd, &sm, f, &eb);
	if (rc != SPD_OK)
		fprintf(stderr, "svd_values: %s: %s\n", spd_strerror(rc),
		    eb.msg);
	for (i = 0; i < k; i++)
		s[i] = f[i];
	free(f);
	return rc == SPD_OK ? 0 : -1;
}

static const struct method {
	const char	*name;
	int		(*run)(const struct mat *, double *);
	int		 slow;		/* one run, no warm-up */
} methods[] = {
	{ "prod", run_prod, 0 },
#ifdef BENCH_REF
	{ "gram32", run_gram32, 0 },
	{ "sgesdd", run_sgesdd, 1 },
	{ "gram64", run_gram64, 0 },
#endif
};

/* Comparison function for qsort of doubles. */
static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* True when name is in the comma list. */
static int
listed(const char *list, const char *name)
{
	size_t		 n = strlen(name);
	const char	*p = list;

	while ((p = strstr(p, name)) != NULL) {
		if ((p == list || p[-1] == ',') &&
		    (p[n] == '\0' || p[n] == ','))
			return 1;
		p += n;
	}
	return 0;
}

/* Times one method on m: median seconds, values in s. */
static double
time_method(const struct bench *b, const struct method *me,
    const struct mat *m, double *s)
{
	double		t[MAXREPS], t0;
	unsigned	i, reps = me->slow ? 1 : b->reps;

	if (!me->slow && me->run(m, s) != 0)
		return NAN;
	for (i = 0; i < reps; i++) {
		t0 = spd_now();
		if (me->run(m, s) != 0)
			return NAN;
		t[i] = spd_now() - t0;
	}
	qsort(t, reps, sizeof t[0], cmp_double);
	return t[reps / 2];
}

/* Benchmarks every chosen method on one shape and prints table rows. */
static int
bench_shape(const struct bench *b, size_t r, size_t c)
{
	struct mat	 m;
	struct svd_route rt;
	size_t		 k = r < c ? r : c, i, j;
	double		*s = malloc(k * 8), *ref = malloc(k * 8);
	float		*f = malloc(k * sizeof(float));
	double		 t, snr, rsnr = NAN, maxe;

	if (s == NULL || ref == NULL || f == NULL ||
	    mat_make(&m, r, c, b->dt) != 0) {
		fprintf(stderr, "out of memory\n");
		return -1;
	}
	if (!b->noref) {
		t = spd_now();
#ifdef BENCH_REF
		if (run_dgesdd(&m, ref) != 0)
#endif
			return -1;
		t = spd_now() - t;
		rsnr = snr_of(ref, k, r, c);
		printf("%5zux%-5zu %-5s %-8s %9.4f %12.7g %9s %9s\n", r, c,
		    dtype_name(b->dt), "dgesdd", t, rsnr, "-", "-");
		fflush(stdout);
	}
	for (i = 0; i < nitems(methods); i++) {
		if (!listed(b->methods, methods[i].name))
			continue;
		t = time_method(b, &methods[i], &m, s);
		snr = snr_of(s, k, r, c);
		maxe = 0;
		for (j = 0; !b->noref && j < k; j++)
			if (fabs(s[j] - ref[j]) / ref[0] > maxe)
				maxe = fabs(s[j] - ref[j]) / ref[0];
		rt.ug = rt.ue = 0x1p-24;
		rt.tr = 0;
		for (j = 0; j < k; j++) {
			f[j] = (float)s[j];
			rt.tr += s[j] * s[j];
		}
		printf("%5zux%-5zu %-5s %-8s %9.4f %12.7g %9.2e %9.2e %9.2e\n",
		    r, c, dtype_name(b->dt), methods[i].name, t, snr,
		    fabs(snr - rsnr) / rsnr, b->noref ? NAN : maxe,
		    svd_snr_bound(f, k, r, c, svd_route_delta(&rt, k,
		    r > c ? r : c, (double)f[0] * f[0])));
		fflush(stdout);
	}
	mat_free(&m);
	free(s);
	free(ref);
	free(f);
	return 0;
}

struct worker {
	struct mat	*mats;
	size_t		 first, n, step;
	struct svd	*svd;
	int		 rc;
};

/* Runs svd_values on every step-th matrix from first. */
static void *
worker_run(void *arg)
{
	struct worker		*w = arg;
	struct spd_errbuf	 eb;
	float			 sv[4096];
	size_t			 i;

	for (i = w->first; i < w->n; i += w->step) {
		struct svd_matrix sm = { w->mats[i].raw, w->mats[i].dt,
		    w->mats[i].r, w->mats[i].c };

		if (svd_values(w->svd, &sm, sv, &eb) != SPD_OK)
			w->rc = -1;
	}
	return NULL;
}

/* Times count matrices with nw workers of bt BLAS threads each. */
static double
time_workers(struct mat *mats, size_t count, unsigned nw, unsigned bt)
{
	struct worker		w[16];
	pthread_t		tid[16];
	struct svd_opts		o = { "cpu", bt, 0, 1 };
	struct spd_errbuf	eb;
	double			t0, t;
	unsigned		i;

	for (i = 0; i < nw; i++) {
		w[i] = (struct worker){ mats, i, count, nw, NULL, 0 };
		if (svd_open(&o, &w[i].svd, &eb) != SPD_OK)
			return NAN;
	}
	t0 = spd_now();
	for (i = 0; i < nw; i++)
		pthread_create(&tid[i], NULL, worker_run, &w[i]);
	for (i = 0; i < nw; i++)
		pthread_join(tid[i], NULL);
	t = spd_now() - t0;
	for (i = 0; i < nw; i++) {
		if (w[i].rc != 0)
			t = NAN;
		svd_close(w[i].svd);
	}
	return t;
}

/* The worker experiment: 1 × threads against threads × 1, per shape. */
static int
bench_workers(const struct bench *b, size_t r, size_t c)
{
	struct mat	*mats = calloc(b->workers, sizeof *mats);
	double		 t1[MAXREPS], t2[MAXREPS];
	unsigned	 nw = b->threads > 16 ? 16 : b->threads, i;
	size_t		 j;

	if (mats == NULL || (r < c ? r : c) > 4096)
		return -1;
	for (j = 0; j < b->workers; j++)
		if (mat_make(&mats[j], r, c, b->dt) != 0)
			return -1;
	time_workers(mats, b->workers, 1, nw);		/* warm-up */
	for (i = 0; i < b->reps; i++) {
		t1[i] = time_workers(mats, b->workers, 1, nw);
		t2[i] = time_workers(mats, b->workers, nw, 1);
	}
	qsort(t1, b->reps, sizeof t1[0], cmp_double);
	qsort(t2, b->reps, sizeof t2[0], cmp_double);
	printf("%5zux%-5zu %-5s x%-4zu 1 worker x %u threads: %8.4f s   "
	    "%u workers x 1 thread: %8.4f s\n", r, c, dtype_name(b->dt),
	    b->workers, nw, t1[b->reps / 2], nw, t2[b->reps / 2]);
	for (j = 0; j < b->workers; j++)
		mat_free(&mats[j]);
	free(mats);
	return 0;
}

/* Parses the command line into b; returns the index of the first shape. */
static int
parse_args(int argc, char **argv, struct bench *b)
{
	int ch;

	while ((ch = getopt(argc, argv, "t:r:d:m:b:w:n")) != -1) {
		switch (ch) {
		case 't':
			b->threads = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			b->reps = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'd':
			if (dtype_parse(optarg, &b->dt) != SPD_OK ||
			    !(b->dt == DT_F32 || b->dt == DT_BF16 ||
			    b->dt == DT_F16))
				return -1;
			break;
		case 'm':
			b->methods = optarg;
			break;
		case 'b':
			b->backend = optarg;
			break;
		case 'w':
			b->workers = strtoul(optarg, NULL, 10);
			break;
		case 'n':
			b->noref = 1;
			break;
		default:
			return -1;
		}
	}
	if (b->reps < 1 || b->reps > MAXREPS || b->threads < 1 ||
	    optind >= argc)
		return -1;
	return optind;
}

int
main(int argc, char **argv)
{
	struct bench		b = { 2, 3, DT_F32, "prod,gram32,sgesdd,gram64",
				    "cpu", 0, 0 };
	struct svd_opts		o;
	struct spd_errbuf	eb;
	size_t			r, c;
	int			i;

	i = parse_args(argc, argv, &b);
	if (i < 0) {
		fprintf(stderr, "usage: svd_methods [-t threads] [-r reps] "
		    "[-d F32|BF16|F16] [-m prod,gram32,sgesdd,gram64] "
		    "[-b cpu|cuda] [-n] [-w count] ROWSxCOLS...\n");
		return 2;
	}
	o = (struct svd_opts){ b.backend, b.threads, 0, 1 };
	if (svd_open(&o, &prod_svd, &eb) != SPD_OK) {
		fprintf(stderr, "svd_open %s: %s\n", b.backend, eb.msg);
		return 1;
	}
#ifdef BENCH_REF
	openblas_set_num_threads((int)b.threads);
#else
	b.noref = 1;
#endif
	if (b.workers == 0)
		printf("%-11s %-5s %-8s %9s %12s %9s %9s %s\n", "shape",
		    "dtype", "method", "median_s", "snr", "snr_rel",
		    "max|ds|/s1", "f64?");
	for (; i < argc; i++) {
		if (sscanf(argv[i], "%zux%zu", &r, &c) != 2 || r == 0 ||
		    c == 0 || (b.workers ? bench_workers(&b, r, c) :
		    bench_shape(&b, r, c)) != 0) {
			fprintf(stderr, "%s: failed\n", argv[i]);
			return 1;
		}
	}
	svd_close(prod_svd);
	return 0;
}
