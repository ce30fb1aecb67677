/*
 * svd_cpu.c: singular values on the CPU with OpenBLAS + LAPACKE, the only
 * file that includes <cblas.h> and <lapacke.h> (DESIGN.md §6).
 *
 * Route: the Gram matrix of the smaller side in float32, accumulated with
 * cblas_ssyrk over panels of the longer side (the row-major data read as
 * column-major: no transpose, no LAPACK_ROW_MAJOR copy), eigenvalues only
 * with ssyevd, s = √max(λ, 0) in descending order. Where the error bound
 * of docs/snr-error-bound.md cannot vouch for the float32 values (svd.c),
 * the matrix is done with a float64 Gram (dsyrk) and dsyevd.
 */
#include "config.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/common.h"
#include "spectrumd/svd.h"
#include "spectrumd/tensor.h"
#include "svd_backend.h"
#include "svd_kit.h"

/* Debian's cblas.h declares it; other OpenBLAS builds may not. */
void	openblas_set_num_threads(int);

/*
 * A panel holds about CPU_PANEL_ELEMS converted elements (4 MB as float32),
 * at least CPU_PANEL_MIN along the long side: ssyrk over 4096 × 11008 took
 * the same time whole as in panels of 512 to 4096 (tests/bench/svd_methods.c
 * notes), so panels cost no speed and bound the copy.
 */
#ifndef CPU_PANEL_ELEMS		/* -D for the benchmark only */
#define CPU_PANEL_ELEMS	(1u << 20)
#endif
#define CPU_PANEL_MIN	512

/* Per-thread buffers, grown as needed and kept between calls. */
struct cpu_ctx {
	void		*panel;		/* one converted panel */
	size_t		 panel_cap;
	float		*tmp;		/* float32 staging, float64 panels */
	size_t		 tmp_cap;
	void		*gram;		/* k × k, float or double */
	size_t		 gram_cap;
	void		*w;		/* k eigenvalues, float or double */
	size_t		 w_cap;
	void		*work;		/* syevd workspace */
	size_t		 work_cap;
	lapack_int	*iwork;
	size_t		 iwork_cap;
	float		*sv;		/* the result, copied out on success */
	size_t		 sv_cap;
};

/*
 * The Gram matrix of a row-major rows × cols W by panels (svd_kit.h):
 * WᵀW over row blocks when rows ≥ cols, else W·Wᵀ over column blocks.
 */
struct cpu_geom {
	struct svd_panels	pl;
	bool			dbl;	/* float64 instead of float32 */
};

/* The CPU backend is always usable. */
static enum spd_err
cpu_probe(bool named, struct spd_errbuf *eb)
{
	(void)named;
	(void)eb;
	return SPD_OK;
}

/* Returns the number of CPUs this process may run on (at least 1). */
static int
cpu_count(void)
{
	cpu_set_t	set;
	int		n = 0;

	if (sched_getaffinity(0, sizeof set, &set) == 0)
		n = CPU_COUNT(&set);
	return n > 0 ? n : 1;
}

/*
 * Allocates an empty context and sets the BLAS thread count, which is
 * process-wide in OpenBLAS: open every handle before any analysis starts.
 */
static enum spd_err
cpu_ctx_new(const struct svd_opts *o, void **ctx, struct spd_errbuf *eb)
{
	struct cpu_ctx	*c;
	unsigned	 t = o != NULL ? o->threads : 0;

	c = calloc(1, sizeof *c);
	if (c == NULL)
		return spd_fail(eb, SPD_ENOMEM, "cpu: out of memory");
	openblas_set_num_threads(t == 0 ? cpu_count() : t > 1024 ? 1024 :
	    (int)t);
	*ctx = c;
	return SPD_OK;
}

/* Frees a context and its buffers. */
static void
cpu_ctx_free(void *ctx)
{
	struct cpu_ctx *c = ctx;

	if (c == NULL)
		return;
	free(c->panel);
	free(c->tmp);
	free(c->gram);
	free(c->w);
	free(c->work);
	free(c->iwork);
	free(c->sv);
	free(c);
}

/* Counts the NaN/Inf among the n float64 values at src (any alignment). */
static size_t
cpu_copy_f64(const unsigned char *src, size_t n, double *dst)
{
	size_t i, bad = 0;

	memcpy(dst, src, n * sizeof *dst);
	for (i = 0; i < n; i++)
		bad += !isfinite(dst[i]);
	return bad;
}

/* What cpu_put() converts: the dtype, into float32 or float64. */
struct cpu_put_arg {
	struct cpu_ctx	*c;
	enum dtype	 dt;
	bool		 dbl;
};

/*
 * svd_put_fn: converts the n elements at src to float32, or float64
 * (staging float32 in c->tmp), at dst. Returns the NaN/Inf count.
 */
static size_t
cpu_put(void *arg, const unsigned char *src, size_t n, void *dst)
{
	const struct cpu_put_arg	*a = arg;
	double				*d = dst;
	size_t				 i, bad;

	if (!a->dbl)
		return tensor_to_f32(src, a->dt, n, dst);
	if (a->dt == DT_F64)
		return cpu_copy_f64(src, n, d);
	bad = tensor_to_f32(src, a->dt, n, a->c->tmp);
	for (i = 0; i < n; i++)
		d[i] = a->c->tmp[i];
	return bad;
}

/* C := beta·C + A·Aᵀ (or Aᵀ·A), the upper triangle, in g's precision. */
static void
cpu_syrk(struct cpu_ctx *c, const struct cpu_geom *g, const void *a,
    size_t b, size_t lda, bool accumulate)
{
	CBLAS_TRANSPOSE	tr = g->pl.trans ? CblasTrans : CblasNoTrans;
	int		n = (int)g->pl.k;

	if (g->dbl)
		cblas_dsyrk(CblasColMajor, CblasUpper, tr, n, (int)b, 1.0, a,
		    (int)lda, accumulate ? 1.0 : 0.0, c->gram, n);
	else
		cblas_ssyrk(CblasColMajor, CblasUpper, tr, n, (int)b, 1.0f, a,
		    (int)lda, accumulate ? 1.0f : 0.0f, c->gram, n);
}

/* Returns the trace of the Gram matrix, in double. */
static double
cpu_trace(const struct cpu_ctx *c, const struct cpu_geom *g)
{
	const float	*f = c->gram;
	const double	*d = c->gram;
	double		 t = 0;
	size_t		 i;

	for (i = 0; i < g->pl.k; i++)
		t += g->dbl ? d[i * g->pl.k + i] : f[i * g->pl.k + i];
	return t;
}

/* Accumulates the Gram matrix over converted panels; counts NaN/Inf. */
static enum spd_err
cpu_gram_panels(struct cpu_ctx *c, const struct svd_matrix *m,
    const struct cpu_geom *g, size_t *bad, struct spd_errbuf *eb)
{
	struct cpu_put_arg	a = { c, m->dtype, g->dbl };
	size_t			esz = dtype_bits(m->dtype) / 8;
	size_t			dsz = g->dbl ? sizeof(double) : sizeof(float);
	size_t			b = g->pl.b, k = g->pl.k, n, j0;
	enum spd_err		rc;

	rc = svd_grow(&c->panel, &c->panel_cap, b * k, dsz, eb);
	if (rc == SPD_OK && g->dbl && m->dtype != DT_F64)
		rc = svd_grow((void **)&c->tmp, &c->tmp_cap, b * k,
		    sizeof(float), eb);
	if (rc != SPD_OK)
		return rc;
	for (j0 = 0; j0 < g->pl.len; j0 += b) {
		n = g->pl.len - j0 < b ? g->pl.len - j0 : b;
		*bad = svd_panel_pack(&g->pl, m->data, esz, dsz, j0, n,
		    cpu_put, &a, c->panel);
		if (*bad != 0)
			break;
		cpu_syrk(c, g, c->panel, n, g->pl.trans ? n : k, j0 > 0);
	}
	return SPD_OK;
}

/*
 * Forms the Gram matrix of m in c->gram. Returns SPD_OK, SPD_ENONFINITE
 * (NaN/Inf in m), SPD_ENOMEM, or SPD_EUNSUPPORTED when m is finite but the
 * sum of squares overflows g's precision.
 */
static enum spd_err
cpu_gram(struct cpu_ctx *c, const struct svd_matrix *m,
    const struct cpu_geom *g, double *tr, struct spd_errbuf *eb)
{
	size_t		esz = g->dbl ? sizeof(double) : sizeof(float);
	size_t		bad = 0;
	enum spd_err	rc;

	rc = svd_grow(&c->gram, &c->gram_cap, g->pl.k * g->pl.k, esz, eb);
	if (rc != SPD_OK)
		return rc;
	/*
	 * Always through converted panels, even F32: then every read of the
	 * (mapped) weights happens in this thread, where analyze.c's SIGBUS
	 * guard can catch a file truncated under us; BLAS threads only see
	 * our buffers. Packing costs little next to the syrk.
	 */
	rc = cpu_gram_panels(c, m, g, &bad, eb);
	if (rc != SPD_OK)
		return rc;
	/* NaN/Inf anywhere reaches the diagonal: check it, then the data. */
	*tr = bad == 0 ? cpu_trace(c, g) : NAN;
	if (bad == 0 && !isfinite(*tr)) {
		rc = svd_grow(&c->panel, &c->panel_cap, CPU_PANEL_ELEMS,
		    sizeof(float), eb);
		if (rc != SPD_OK)
			return rc;
		bad = svd_count_nonfinite(m, c->panel, CPU_PANEL_ELEMS);
		if (bad == 0)
			return spd_fail(eb, SPD_EUNSUPPORTED,
			    "cpu: sum of squares overflows %s",
			    g->dbl ? "float64" : "float32");
	}
	if (bad != 0)
		return spd_fail(eb, SPD_ENONFINITE,
		    "cpu: %zux%zu matrix holds %zu NaN/Inf value%s", m->rows,
		    m->cols, bad, bad == 1 ? "" : "s");
	return SPD_OK;
}

/* Runs ssyevd/dsyevd (values only) on the Gram matrix; fills c->sv. */
static enum spd_err
cpu_eig(struct cpu_ctx *c, const struct cpu_geom *g, struct spd_errbuf *eb)
{
	lapack_int	 n = (lapack_int)g->pl.k, lw, liw, info;
	size_t		 esz = g->dbl ? sizeof(double) : sizeof(float);
	float		 fq = 0;
	double		 dq = 0;
	enum spd_err	 rc;

	/* Workspace query: no allocation, as LAPACK computes it. */
	if (g->dbl)
		info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'N', 'U', n, NULL,
		    n, NULL, &dq, -1, &liw, -1);
	else
		info = LAPACKE_ssyevd_work(LAPACK_COL_MAJOR, 'N', 'U', n, NULL,
		    n, NULL, &fq, -1, &liw, -1);
	/* A float workspace size may have been rounded down: round up. */
	lw = (lapack_int)ceil(g->dbl ? dq : (double)fq * (1 + 1e-6));
	lw = lw < 2 * n + 1 ? 2 * n + 1 : lw;
	if (info != 0 || lw < 1 || liw < 1)
		return spd_fail(eb, SPD_EINTERNAL,
		    "cpu: %csyevd workspace query failed (info %d)",
		    g->dbl ? 'd' : 's', (int)info);
	rc = svd_grow(&c->w, &c->w_cap, g->pl.k, esz, eb);
	if (rc == SPD_OK)
		rc = svd_grow(&c->work, &c->work_cap, (size_t)lw, esz, eb);
	if (rc == SPD_OK)
		rc = svd_grow((void **)&c->iwork, &c->iwork_cap, (size_t)liw,
		    sizeof(lapack_int), eb);
	if (rc == SPD_OK)
		rc = svd_grow((void **)&c->sv, &c->sv_cap, g->pl.k,
		    sizeof(float), eb);
	if (rc != SPD_OK)
		return rc;
	if (g->dbl)
		info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'N', 'U', n,
		    c->gram, n, c->w, c->work, lw, c->iwork, liw);
	else
		info = LAPACKE_ssyevd_work(LAPACK_COL_MAJOR, 'N', 'U', n,
		    c->gram, n, c->w, c->work, lw, c->iwork, liw);
	if (info != 0)
		return spd_fail(eb, SPD_EINTERNAL,
		    "cpu: %csyevd failed (info %d)", g->dbl ? 'd' : 's',
		    (int)info);
	return svd_from_eigen(c->w, g->dbl, g->pl.k, c->sv,
	    g->dbl ? "cpu: dsyevd" : "cpu: ssyevd", eb);
}

/*
 * Singular values of m by the Gram route in float32 or float64 (svd.c
 * decides when float32 is not enough), and what the route did in *rt. F64
 * matrices have no float32 route (SPD_EUNSUPPORTED), as their values would
 * be rounded on the way.
 */
static enum spd_err
cpu_values(void *ctx, const struct svd_matrix *m, bool dbl, float *sv,
    struct svd_route *rt, struct spd_errbuf *eb)
{
	struct cpu_ctx	*c = ctx;
	struct cpu_geom	 g;
	enum spd_err	 rc;

	svd_panels_init(&g.pl, m->rows, m->cols, CPU_PANEL_ELEMS,
	    CPU_PANEL_MIN);
	g.dbl = dbl;
	rt->ug = rt->ue = dbl ? 0x1p-53 : 0x1p-24;
	/* F64 → float32 would round: no float32 route (svd_backend.h). */
	if (!dbl && m->dtype == DT_F64)
		return SPD_EUNSUPPORTED;
	rc = cpu_gram(c, m, &g, &rt->tr, eb);
	if (rc == SPD_OK)
		rc = cpu_eig(c, &g, eb);
	if (rc == SPD_OK)
		memcpy(sv, c->sv, g.pl.k * sizeof *sv);
	return rc;
}

const struct svd_backend svd_cpu_backend = {
	.name = "cpu",
	.method = SVD_METHOD("cpu"),
	.probe = cpu_probe,
	.devices = NULL,		/* no device ordinals */
	.ctx_new = cpu_ctx_new,
	.ctx_free = cpu_ctx_free,
	.values = cpu_values,
};
