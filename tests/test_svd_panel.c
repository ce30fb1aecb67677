/*
 * test_svd_panel.c: the panel geometry both backends use (svd_kit.h).
 * A row-major matrix is packed panel by panel, each panel is added to the
 * Gram matrix with cblas_dsyrk using exactly the op, kdim and lda the
 * header documents (the cuda backend passes the same to cublas[SD]syrk),
 * and the result must equal WᵀW or W·Wᵀ computed directly. Shapes cover
 * one panel, several, a partial last one, width-1 panels and 1 × n.
 */
#include "config.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/common.h"
#include "svd_kit.h"
#include "tap.h"

/* svd_put_fn: copies doubles; counts the negative ones (to check sums). */
static size_t
put_copy(void *arg, const unsigned char *src, size_t n, void *dst)
{
	size_t	i, neg = 0;
	double	d;

	(void)arg;
	memcpy(dst, src, n * sizeof d);
	for (i = 0; i < n; i++) {
		memcpy(&d, src + i * sizeof d, sizeof d);
		neg += d < 0;
	}
	return neg;
}

/* Packs rows × cols panel by panel and compares the Gram matrices. */
static void
check(size_t rows, size_t cols, size_t max_elems, size_t min_b)
{
	struct svd_panels	 pl;
	size_t			 k, len, i, j, l, j0, n, npan = 0, neg = 0, want;
	double			*w, *pan, *g, err = 0, x;

	svd_panels_init(&pl, rows, cols, max_elems, min_b);
	k = rows < cols ? rows : cols;
	len = rows < cols ? cols : rows;
	w = malloc(rows * cols * sizeof *w);
	pan = malloc(pl.b * pl.k * sizeof *pan);
	g = calloc(k * k, sizeof *g);
	if (w == NULL || pan == NULL || g == NULL)
		abort();
	want = 0;
	for (i = 0; i < rows * cols; i++) {
		/* Distinct, exactly representable values; some negative. */
		w[i] = (double)((i * 7919) % 1009) - 300;
		want += w[i] < 0;
	}
	ok(pl.k == k && pl.len == len && pl.trans == (rows < cols) &&
	    pl.b >= 1 && pl.b <= len, "%zux%zu (max %zu, min %zu): k %zu, "
	    "len %zu, b %zu", rows, cols, max_elems, min_b, pl.k, pl.len,
	    pl.b);
	for (j0 = 0; j0 < len; j0 += n, npan++) {
		n = len - j0 < pl.b ? len - j0 : pl.b;
		neg += svd_panel_pack(&pl, w, sizeof *w, sizeof *w, j0, n,
		    put_copy, NULL, pan);
		cblas_dsyrk(CblasColMajor, CblasUpper, pl.trans ? CblasTrans :
		    CblasNoTrans, (int)k, (int)n, 1.0, pan,
		    pl.trans ? (int)n : (int)k, j0 > 0 ? 1.0 : 0.0, g, (int)k);
	}
	/* Direct: G[i][j] = Σ_l W[l][i]·W[l][j] (rows ≥ cols), else rows. */
	for (i = 0; i < k; i++)
		for (j = i; j < k; j++) {
			x = 0;
			for (l = 0; l < len; l++)
				x += pl.trans ? w[i * cols + l] * w[j * cols + l] :
				    w[l * cols + i] * w[l * cols + j];
			/* Column-major upper triangle: (i, j) at j·k + i. */
			if (fabs(g[j * k + i] - x) > err)
				err = fabs(g[j * k + i] - x);
		}
	ok(err == 0, "%zux%zu: %zu panel%s give the direct Gram (max diff "
	    "%g)", rows, cols, npan, npan == 1 ? "" : "s", err);
	ok(neg == want, "%zux%zu: put saw every element once (%zu negative, "
	    "want %zu)", rows, cols, neg, want);
	free(w);
	free(pan);
	free(g);
}

int
main(void)
{
	check(5, 3, 1000, 1);		/* one panel, rows ≥ cols */
	check(3, 5, 1000, 1);		/* one panel, rows < cols */
	check(40, 7, 70, 1);		/* 10-row panels, 4 of them */
	check(7, 40, 70, 1);		/* 10-column panels */
	check(43, 7, 70, 1);		/* a partial last panel */
	check(7, 43, 70, 1);
	check(9, 31, 1, 1);		/* width-1 panels */
	check(31, 9, 5, 4);		/* min_b wins over max_elems / k */
	check(1, 57, 16, 1);		/* a row */
	check(57, 1, 16, 1);		/* a column */
	check(64, 64, 1000, 1);		/* square: rows ≥ cols */
	return tap_done();
}
