/*
 * svd.c: the backend table, backend choice at open time, argument checks,
 * and the float64 fallback rule both backends share (DESIGN.md §1, §6).
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
#include "spectrumd/svd.h"
#include "spectrumd/tensor.h"
#include "svd_backend.h"

struct svd {
	const struct svd_backend	*be;
	void				*ctx;
};

/* Unit roundoff of float32, 2^-24. */
#define SVD_U32		5.9604644775390625e-8
/* Eigenvalue error of the float32 route, in u·‖G‖_F/√k (measured ≤ 4). */
#define SVD_GAMMA	4.0
/* Largest estimated relative SNR error left to the float32 route. */
#define SVD_SNR_TOL	3e-6

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

#define SVD_STR_(x)	#x
#define SVD_STR(x)	SVD_STR_(x)

/* Returns the method tag of the backend: "<name>/r<rule version>". */
const char *
svd_method(const struct svd *s)
{
	if (strcmp(s->be->name, "cuda") == 0)
		return "cuda/r" SVD_STR(SVD_RULE_VERSION);
	return "cpu/r" SVD_STR(SVD_RULE_VERSION);
}

/* Returns the number of visible CUDA devices. */
int
svd_cuda_devices(void)
{
#ifdef HAVE_CUDA
	return svd_cuda_count();
#else
	return 0;
#endif
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

/* Checks m, then asks the backend for its singular values. */
enum spd_err
svd_values(struct svd *s, const struct svd_matrix *m, float *sv,
    struct spd_errbuf *eb)
{
	enum spd_err rc;

	if (s == NULL)
		return spd_fail(eb, SPD_EINVAL, "svd: NULL handle");
	rc = svd_check(m, sv, eb);
	if (rc != SPD_OK)
		return rc;
	/* The fast float32 route first; float64 where it is not enough. */
	rc = s->be->values(s->ctx, m, false, sv, eb);
	if (rc == SPD_OK && !svd_need_f64(sv, m->rows < m->cols ? m->rows :
	    m->cols, m->rows, m->cols))
		return SPD_OK;
	if (rc != SPD_OK && rc != SPD_EUNSUPPORTED)
		return rc;
	rc = s->be->values(s->ctx, m, true, sv, eb);
	if (rc == SPD_EUNSUPPORTED)
		rc = SPD_ENONFINITE;	/* finite, but too large to square */
	return rc;
}

void
svd_panels_init(struct svd_panels *p, size_t rows, size_t cols,
    size_t max_elems, size_t min_b)
{
	p->trans = rows < cols;
	p->k = p->trans ? rows : cols;
	p->len = p->trans ? cols : rows;
	p->b = max_elems / p->k;
	if (p->b < min_b)
		p->b = min_b;
	if (p->b < 1)
		p->b = 1;
	if (p->b > p->len)
		p->b = p->len;
}

size_t
svd_panel_pack(const struct svd_panels *p, const void *data, size_t esz,
    size_t dsz, size_t j0, size_t n, svd_put_fn put, void *arg, void *dst)
{
	const unsigned char	*src = data;
	unsigned char		*d = dst;
	size_t			 i, bad = 0;

	if (!p->trans)
		return put(arg, src + j0 * p->k * esz, n * p->k, d);
	/* Row i of W (i < k) holds len elements; take [j0, j0 + n). */
	for (i = 0; i < p->k; i++)
		bad += put(arg, src + (i * p->len + j0) * esz, n,
		    d + i * n * dsz);
	return bad;
}

enum spd_err
svd_grow(void **p, size_t *cap, size_t n, size_t esz, struct spd_errbuf *eb)
{
	size_t	 bytes;
	void	*q;

	if (__builtin_mul_overflow(n, esz, &bytes))
		return spd_fail(eb, SPD_ENOMEM, "svd: %zu × %zu bytes overflow",
		    n, esz);
	if (bytes <= *cap)
		return SPD_OK;
	free(*p);
	*p = NULL;
	*cap = 0;
	q = malloc(bytes);
	if (q == NULL)
		return spd_fail(eb, SPD_ENOMEM,
		    "svd: cannot allocate %zu bytes", bytes);
	*p = q;
	*cap = bytes;
	return SPD_OK;
}

size_t
svd_count_nonfinite(const struct svd_matrix *m, float *buf, size_t cap)
{
	const unsigned char	*src = m->data;
	size_t			 n = m->rows * m->cols, off, b, bad = 0;
	size_t			 esz = dtype_bits(m->dtype) / 8;
	double			 d;

	if (m->dtype == DT_F64) {
		for (off = 0; off < n; off++) {
			memcpy(&d, src + off * esz, sizeof d);
			bad += !isfinite(d);
		}
		return bad;
	}
	for (off = 0; off < n; off += b) {
		b = n - off < cap ? n - off : cap;
		bad += tensor_to_f32(src + off * esz, m->dtype, b, buf);
	}
	return bad;
}

/* Ascending eigenvalues → descending singular values (svd_backend.h). */
enum spd_err
svd_from_eigen(const void *w, bool dbl, size_t k, float *sv,
    const char *solver, struct spd_errbuf *eb)
{
	double	l;
	size_t	i;

	for (i = 0; i < k; i++) {
		l = dbl ? ((const double *)w)[k - 1 - i] :
		    ((const float *)w)[k - 1 - i];
		if (isnan(l))
			return spd_fail(eb, SPD_EINTERNAL, "%s returned NaN",
			    solver);
		sv[i] = (float)sqrt(l > 0 ? l : 0);
	}
	return SPD_OK;
}

/* Linear-interpolated quantile q of the descending values sv[0..k). */
static double
svd_quantile(const float *sv, size_t k, double q)
{
	double	pos = q * (double)(k - 1), f = floor(pos), a, b;
	size_t	lo = (size_t)f, hi = lo + 1 < k ? lo + 1 : lo;

	/* Ascending index j is descending index k - 1 - j. */
	a = sv[k - 1 - lo];
	b = sv[k - 1 - hi];
	return a + (pos - f) * (b - a);
}

/*
 * Decides whether float32-route values need the float64 redo.
 * The float32 Gram route perturbs each eigenvalue λ = s² of G by about
 * u·‖G‖_F/√k (the largest error measured 2.3-4× that on flat, spiked and
 * rank-deficient spectra, k = 77..2048). Where s² is within a few such d
 * of zero, the computed s = √max(λ + δ, 0) is biased upward and the bias
 * adds up in the noise sum; elsewhere the errors are ~δ/2s with random
 * signs. On those spectra the estimate below was 2.2-120× the relative SNR
 * error measured against float64, so a matrix kept in float32 misses the
 * SNR by ≲ 1.4e-6. The Q₂₅ rule is DESIGN.md §6's (quartiles below
 * 1e-2·s₁ move τ).
 */
bool
svd_need_f64(const float *sv, size_t k, size_t rows, size_t cols)
{
	double	s1 = sv[0], d = 0, tau, e, es = 0, en = 0, ss = 0, sn = 0;
	size_t	i, nn = 0;

	if (!(s1 > 0))
		return false;
	if (svd_quantile(sv, k, 0.25) < 1e-2 * s1)
		return true;
	for (i = 0; i < k; i++)
		d += (double)sv[i] * sv[i] * sv[i] * sv[i] / (s1 * s1);
	d = SVD_GAMMA * SVD_U32 * s1 * sqrt(d / (double)k);
	tau = (svd_quantile(sv, k, 0.75) - svd_quantile(sv, k, 0.25)) /
	    1.349 * (1 + sqrt((double)k / (double)(rows > cols ? rows : cols)));
	for (i = 0; i < k; i++) {
		/* Bias only where s² is within a few d of zero. */
		e = (double)sv[i] * sv[i] < 4 * d ?
		    sqrt((double)sv[i] * sv[i] + d) - sv[i] : 0;
		if (sv[i] > tau) {
			ss += sv[i];
			es += e;
		} else {
			sn += sv[i];
			en += e;
			nn++;
		}
	}
	if (nn > 0 && sn == 0)
		return true;	/* zeros here may be tiny values in truth */
	return (ss > 0 ? es / ss : 0) + (nn > 0 ? en / sn : 0) > SVD_SNR_TOL;
}
