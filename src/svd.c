/*
 * svd.c: the backend table, backend choice at open time, argument checks,
 * and the float64 fallback rule both backends share (DESIGN.md §1, §6).
 * The policy on top: it calls the backends through their table and names
 * no backend's functions; what the backends share is in svd_kit.c.
 */
#include "config.h"

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/common.h"
#include "spectrumd/snr.h"
#include "spectrumd/svd.h"
#include "spectrumd/tensor.h"
#include "svd_backend.h"

struct svd {
	const struct svd_backend	*be;
	void				*ctx;
};

/* Unit roundoffs of float32 and float64. */
#define SVD_U32		0x1p-24
#define SVD_U64		0x1p-53
/*
 * The eigensolver's backward error, as p(k)·u·‖G‖₂ with p(k) = SVD_EIG_P·k
 * (docs/snr-error-bound.md §2).
 */
#define SVD_EIG_P	1.0
/*
 * The largest relative SNR error bound the float32 route may keep: half the
 * 1e-5 contract, the rest left to the float64 reference's own rounding.
 */
#define SVD_SNR_TOL	5e-6

#define SVD_NO_CUDA \
	"cuda: this build has no CUDA backend (configure --with-cuda)"

/* Opens a context on backend be. */
static enum spd_err
svd_open_be(const struct svd_backend *be, const struct svd_opts *o,
    struct svd **out, struct spd_errbuf *eb)
{
	struct svd	*s;
	enum spd_err	 rc;

	s = calloc(1, sizeof *s);
	if (s == NULL)
		return spd_fail(eb, SPD_ENOMEM, "svd: out of memory");
	s->be = be;
	rc = be->ctx_new(o, &s->ctx, eb);
	if (rc != SPD_OK) {
		free(s);
		return rc;
	}
	*out = s;
	return SPD_OK;
}

/* The backends, in the order "auto" tries them; cpu is always last. */
static const struct svd_backend *const svd_backends[] = {
#ifdef HAVE_CUDA
	&svd_cuda_backend,
#endif
	&svd_cpu_backend,
};

/* Probes backend be (named: asked for by name) and opens a context on it. */
static enum spd_err
svd_try(const struct svd_backend *be, bool named, const struct svd_opts *o,
    struct svd **out, struct spd_errbuf *eb)
{
	enum spd_err rc;

	rc = be->probe(named, eb);
	if (rc != SPD_OK)
		return rc;
	return svd_open_be(be, o, out, eb);
}

/* Opens the first usable backend; eb says why the others were not. */
static enum spd_err
svd_open_auto(const struct svd_opts *o, struct svd **out,
    struct spd_errbuf *eb)
{
	struct spd_errbuf	why;
	size_t			i, last = nitems(svd_backends) - 1;
	enum spd_err		rc;

	snprintf(why.msg, sizeof why.msg, "%s", SVD_NO_CUDA);
	for (i = 0; i < last; i++)
		if (svd_try(svd_backends[i], false, o, out, &why) == SPD_OK)
			return SPD_OK;
	rc = svd_try(svd_backends[last], false, o, out, eb);
	if (rc == SPD_OK && !o->quiet)
		spd_fail(eb, SPD_OK, "%s: using the CPU", why.msg);
	return rc;
}

/* Opens the backend named by o (NULL: auto); see svd.h. */
enum spd_err
svd_open(const struct svd_opts *o, struct svd **out, struct spd_errbuf *eb)
{
	static const struct svd_opts	 defaults = { NULL, 0, 0, 0 };
	const char			*name;
	size_t				 i;

	if (o == NULL)
		o = &defaults;
	name = o->backend != NULL ? o->backend : "auto";
	if (o->device < 0)
		return spd_fail(eb, SPD_EINVAL, "svd: device %d is negative",
		    o->device);
	if (strcmp(name, "auto") == 0)
		return svd_open_auto(o, out, eb);
	for (i = 0; i < nitems(svd_backends); i++)
		if (strcmp(name, svd_backends[i]->name) == 0)
			return svd_try(svd_backends[i], true, o, out, eb);
	if (strcmp(name, "cuda") == 0)
		return spd_fail(eb, SPD_ENODEV, "%s", SVD_NO_CUDA);
	return spd_fail(eb, SPD_EINVAL, "svd: unknown backend \"%.64s\" "
	    "(expected auto, cpu or cuda)", name);
}

/* Frees the backend context and the handle. */
void
svd_close(struct svd *s)
{
	if (s == NULL)
		return;
	s->be->ctx_free(s->ctx);
	free(s);
}

/* Returns the backend's name. */
const char *
svd_name(const struct svd *s)
{
	return s->be->name;
}

/* Returns the method tag of the backend: "<name>/r<rule version>". */
const char *
svd_method(const struct svd *s)
{
	return s->be->method;
}

/* Returns the number of devices the backend named "cuda" sees, if built. */
int
svd_cuda_devices(void)
{
	size_t i;

	for (i = 0; i < nitems(svd_backends); i++)
		if (strcmp(svd_backends[i]->name, "cuda") == 0 &&
		    svd_backends[i]->devices != NULL)
			return svd_backends[i]->devices();
	return 0;
}

/* Checks that m describes a matrix a backend can take. */
static enum spd_err
svd_check(const struct svd_matrix *m, const float *sv, struct spd_errbuf *eb)
{
	size_t n;

	if (m == NULL || sv == NULL || m->data == NULL)
		return spd_fail(eb, SPD_EINVAL, "svd: NULL matrix or output");
	if (m->rows == 0 || m->cols == 0)
		return spd_fail(eb, SPD_EINVAL, "svd: empty %zux%zu matrix",
		    m->rows, m->cols);
	if ((unsigned)m->dtype >= DT_COUNT || !dtype_is_analyzable(m->dtype))
		return spd_fail(eb, SPD_EINVAL,
		    "svd: dtype %s is not analyzable",
		    (unsigned)m->dtype < DT_COUNT ? dtype_name(m->dtype) : "?");
	/* The solvers index with 32-bit ints. */
	if (m->rows > INT_MAX || m->cols > INT_MAX ||
	    __builtin_mul_overflow(m->rows, m->cols, &n) ||
	    __builtin_mul_overflow(n, (size_t)dtype_bits(m->dtype) / 8, &n) ||
	    n > (size_t)PTRDIFF_MAX)
		return spd_fail(eb, SPD_EINVAL, "svd: %zux%zu %s is too large",
		    m->rows, m->cols, dtype_name(m->dtype));
	return SPD_OK;
}

/*
 * True when the float32 Gram route cannot pass its own bound with inner
 * dimension n: once any value is noise, the bound is at least γₙ/2.2
 * (docs/snr-error-bound.md §6), so such matrices go to float64 directly.
 */
static bool
svd_f32_hopeless(size_t n)
{
	return (double)n * SVD_U32 > 2.2 * SVD_SNR_TOL;
}

/* Checks m, then asks the backend for its singular values. */
enum spd_err
svd_values(struct svd *s, const struct svd_matrix *m, float *sv,
    struct spd_errbuf *eb)
{
	struct svd_route	rt;
	size_t			k, n;
	double			d;
	enum spd_err		rc;

	if (s == NULL)
		return spd_fail(eb, SPD_EINVAL, "svd: NULL handle");
	rc = svd_check(m, sv, eb);
	if (rc != SPD_OK)
		return rc;
	k = m->rows < m->cols ? m->rows : m->cols;
	n = m->rows < m->cols ? m->cols : m->rows;
	/*
	 * The fast float32 route where its error bound can hold, kept only
	 * when it does; float64 elsewhere (docs/snr-error-bound.md).
	 */
	rc = SPD_EUNSUPPORTED;
	if (!svd_f32_hopeless(n)) {
		memset(&rt, 0, sizeof rt);
		rc = s->be->values(s->ctx, m, false, sv, &rt, eb);
		if (rc == SPD_OK) {
			/* λ̂₁ ≤ (ŝ₁(1 + u))²: ŝ₁ is √λ̂₁ rounded. */
			d = svd_route_delta(&rt, k, n, (double)sv[0] * sv[0] *
			    (1 + 0x1p-22));
			if (svd_snr_bound(sv, k, m->rows, m->cols, d) <=
			    SVD_SNR_TOL)
				return SPD_OK;
		}
	}
	if (rc != SPD_OK && rc != SPD_EUNSUPPORTED)
		return rc;
	memset(&rt, 0, sizeof rt);
	rc = s->be->values(s->ctx, m, true, sv, &rt, eb);
	if (rc == SPD_EUNSUPPORTED)
		rc = SPD_ENONFINITE;	/* finite, but too large to square */
	return rc;
}

/* Linear-interpolated quantile position q of k values: ascending lo, hi. */
static void
svd_qpos(size_t k, double q, size_t *lo, size_t *hi)
{
	double pos = q * (double)(k - 1);

	*lo = (size_t)floor(pos);
	*hi = *lo + 1 < k ? *lo + 1 : *lo;
}

/*
 * The bound δ of docs/snr-error-bound.md §1-2: Gram accumulation
 * γₙ·‖A‖²_F (plus underflow) and the eigensolver's p(k)·u_e·‖Ĝ‖₂.
 */
double
svd_route_delta(const struct svd_route *rt, size_t k, size_t n,
    double lmax)
{
	double	g, f, eta, dg, ng, pe;

	if (!(rt->tr >= 0) || !isfinite(rt->tr) || !(lmax >= 0) ||
	    (double)n * rt->ug >= 0.5 || (double)k * SVD_EIG_P * rt->ue >= 0.5)
		return INFINITY;
	g = (double)n * rt->ug / (1 - (double)n * rt->ug);
	/* Flush-to-zero of a product: at most the smallest normal each. */
	eta = rt->ug > SVD_U64 ? 0x1p-126 : 0x1p-1022;
	/* ‖Â‖²_F ≥ the true one; trace summed in double. */
	f = (rt->tr + (double)n * (double)k * eta) *
	    (1 + 2 * (double)k * SVD_U64) / (1 - g);
	dg = g * f + (double)n * (double)k * eta;
	pe = SVD_EIG_P * (double)k * rt->ue;
	ng = (lmax > dg ? lmax : dg) / (1 - pe);
	return dg + pe * ng;
}

/* Absolute error bound on float value x from an eigenvalue within d. */
static double
svd_val_err(double x, double d)
{
	double e = sqrt(d);

	/* |√λ̂ − s| ≤ d/(s + √λ̂) ≤ min(√d, d/√λ̂), √λ̂ ≥ x/(1 + u). */
	if (x > 0 && d / x * (1 + SVD_U32) < e)
		e = d / x * (1 + SVD_U32);
	return e + 2 * SVD_U32 * x;	/* the rounding to float */
}

/* Relative error of x̂ against any true value in [lo, hi]. */
static double
svd_rel(double xh, double lo, double hi)
{
	double a = 0, b = 0;

	if (hi > 0)
		a = (hi - xh) / hi;
	if (lo > 0)
		b = (xh - lo) / lo;
	else if (xh > 0)
		b = INFINITY;	/* the truth may be 0 */
	return a > b ? a : b;
}

/* See svd_backend.h and docs/snr-error-bound.md §4-5. */
double
svd_snr_bound(const float *sv, size_t k, size_t rows, size_t cols,
    double delta)
{
	struct snr_result	r;
	double			e, x, dq75, dq25, dt, beta;
	double			slo = 0, shi = 0, nlo = 0, nhi = 0;
	size_t			i, lo, hi, nnoise = 0, namb = 0;

	if (!(delta >= 0) || snr_compute(sv, k, rows, cols, &r) != SPD_OK)
		return INFINITY;
	/* Quantiles: a convex combination of two values (ascending lo, hi). */
	svd_qpos(k, 0.75, &lo, &hi);
	dq75 = fmax(svd_val_err(sv[k - 1 - lo], delta),
	    svd_val_err(sv[k - 1 - hi], delta));
	svd_qpos(k, 0.25, &lo, &hi);
	dq25 = fmax(svd_val_err(sv[k - 1 - lo], delta),
	    svd_val_err(sv[k - 1 - hi], delta));
	beta = (double)k / (double)(rows > cols ? rows : cols);
	dt = (dq75 + dq25) / 1.349 * (1 + sqrt(beta));
	for (i = 0; i < k; i++) {
		x = sv[i];
		e = svd_val_err(x, delta);
		if (x - e > r.tau + dt) {		/* surely signal */
			slo += x - e;
			shi += x + e;
		} else if (x + e <= r.tau - dt) {	/* surely noise */
			nlo += fmax(x - e, 0);
			nhi += x + e;
			nnoise++;
		} else {				/* may cross τ */
			shi += x + e;
			nhi += x + e;
			namb++;
		}
	}
	if (nnoise == 0 && namb > 0)
		return INFINITY;	/* "no value ≤ τ → noise 1" may flip */
	if (nnoise == 0)
		nlo = nhi = 1;
	e = svd_val_err(sv[0], delta);
	if (isinf(r.snr))	/* noise or s₁ exactly 0: so in truth too? */
		return (r.s1 == 0 && e == 0) || (nhi == 0) ? 0 : INFINITY;
	if (!(nlo > 0) || !(sv[0] - e > 0))
		return INFINITY;
	return svd_rel(r.snr, slo / (nhi * (sv[0] + e)),
	    shi / (nlo * (sv[0] - e)));
}
