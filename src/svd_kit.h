/*
 * svd_kit.h (private to the svd backends): the helpers svd_cpu.c and
 * svd_cuda.c share: panels of the longer side (geometry and packing), host
 * buffer growth, the host NaN/Inf count, eigenvalues → singular values.
 * The graph: svd.c → the backends → svd_kit.c; the kit calls neither.
 */
#ifndef SPECTRUMD_SVD_KIT_H
#define SPECTRUMD_SVD_KIT_H

#include <stdbool.h>
#include <stddef.h>

#include "spectrumd/common.h"
#include "spectrumd/svd.h"

/*
 * A matrix's Gram matrix by panels of its longer side. The row-major
 * rows × cols matrix W is read as column-major, as BLAS does: trans false
 * (rows ≥ cols): A = Wᵀ is k × len (k = cols), G = A·Aᵀ = WᵀW, and the
 * panel [j0, j0 + n) is rows j0.. of W, contiguous, column-major k × n
 * with ld k. trans true (rows < cols): A is len × k (k = rows, ld cols),
 * G = Aᵀ·A = W·Wᵀ, and the panel is columns j0.. of W, packed column-major
 * n × k with ld n. Either way the panel adds syrk(op = trans ? T : N,
 * n = k, kdim = n, lda = trans ? n : k) to G. Pure; tests/test_svd_panel.c
 * checks the geometry against cblas.
 */
struct svd_panels {
	size_t	k;		/* min(rows, cols): G is k × k */
	size_t	len;		/* max(rows, cols) */
	size_t	b;		/* panel width along len, 1 ≤ b ≤ len */
	bool	trans;		/* rows < cols */
};

/* Panels of about max_elems elements, at least min_b wide (capped at len). */
void	svd_panels_init(struct svd_panels *p, size_t rows, size_t cols,
	    size_t max_elems, size_t min_b);

/*
 * Puts the n elements at src (stored dtype) at dst, copied or converted;
 * returns how many were NaN/Inf, where the callee counts them.
 */
typedef size_t	(*svd_put_fn)(void *arg, const unsigned char *src, size_t n,
		    void *dst);

/*
 * Lays the n-wide panel at j0 of the row-major matrix data (elements of
 * esz bytes) out at dst as above, n × k elements of dsz bytes, through put
 * (each call a run of contiguous elements). Returns the sum of put's counts.
 */
size_t	svd_panel_pack(const struct svd_panels *p, const void *data,
	    size_t esz, size_t dsz, size_t j0, size_t n, svd_put_fn put,
	    void *arg, void *dst);

/*
 * Counts the NaN/Inf values of m on the host, converting at most cap
 * elements at a time into buf (F64 is checked as float64: values beyond
 * float32's range are not Inf there). For the rare matrix whose Gram
 * trace is not finite.
 */
size_t	svd_count_nonfinite(const struct svd_matrix *m, float *buf, size_t cap);

/*
 * Makes the host buffer *p hold n × esz bytes (malloc; contents are not
 * kept), for the backends' per-context buffers. SPD_OK or SPD_ENOMEM.
 */
enum spd_err	svd_grow(void **p, size_t *cap, size_t n, size_t esz,
		    struct spd_errbuf *eb);

/*
 * Writes the singular values √max(λ, 0), descending, of the k ascending
 * eigenvalues w (double when dbl, else float) into sv. Returns SPD_OK, or
 * SPD_EINTERNAL when the solver (named in the message) returned a NaN.
 */
enum spd_err	svd_from_eigen(const void *w, bool dbl, size_t k, float *sv,
		    const char *solver, struct spd_errbuf *eb);

#endif
