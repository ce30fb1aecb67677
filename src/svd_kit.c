/*
 * svd_kit.c: what the svd backends share (svd_kit.h): panel geometry and
 * packing, host buffers, the host NaN/Inf count, eigenvalues → singular
 * values. Calls no backend and nothing of svd.c.
 */
#include "config.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/common.h"
#include "spectrumd/svd.h"
#include "spectrumd/tensor.h"
#include "svd_kit.h"

/* Sets up the panels of a rows × cols matrix (svd_kit.h). */
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

/* Packs one panel through put (svd_kit.h). */
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

/* Grows a host buffer, dropping its contents (svd_kit.h). */
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

/* Counts the NaN/Inf values of m on the host (svd_kit.h). */
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

/* Ascending eigenvalues → descending singular values (svd_kit.h). */
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
