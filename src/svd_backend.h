/*
 * svd_backend.h (private to svd*.c): the vtable each compute backend fills.
 * svd.c picks a backend and owns the shared logic.
 */
#ifndef SPECTRUMD_SVD_BACKEND_H
#define SPECTRUMD_SVD_BACKEND_H

#include <stdbool.h>

#include "spectrumd/svd.h"

/*
 * What a route did, for the error bound of docs/snr-error-bound.md: the
 * unit roundoffs of the Gram accumulation and of the eigen-solve (2^-24 or
 * 2^-53) and the computed trace of the Gram matrix. The stored values
 * must reach the Gram matrix exactly (F64 matrices take no float32 route).
 */
struct svd_route {
	double	ug;
	double	ue;
	double	tr;
};

struct svd_backend {
	const char	*name;
	/*
	 * SPD_OK when usable on this host, else SPD_ENODEV and eb says why:
	 * briefly for auto, every reason when named (asked for by name).
	 */
	enum spd_err	(*probe)(bool named, struct spd_errbuf *eb);
	enum spd_err	(*ctx_new)(const struct svd_opts *o, void **ctx,
			    struct spd_errbuf *eb);
	void		(*ctx_free)(void *ctx);
	/*
	 * The min(rows, cols) singular values of m into sv, descending, by
	 * the backend's fast float32-Gram route (dbl false) or in float64.
	 * Errors as svd_values(), plus SPD_EUNSUPPORTED when the route cannot
	 * take m (finite values whose squares overflow it, or no fast route
	 * for m's dtype, as F64): svd.c then takes the float64 route. *rt
	 * says what the route did.
	 */
	enum spd_err	(*values)(void *ctx, const struct svd_matrix *m,
			    bool dbl, float *sv, struct svd_route *rt,
			    struct spd_errbuf *eb);
};

/*
 * A bound δ on |λ̂ᵢ − sᵢ²| for every i (Weyl), from the route rt of a
 * matrix whose Gram matrix is k × k with inner dimension n and whose
 * largest computed eigenvalue is lmax; +inf when none holds. Pure.
 */
double	svd_route_delta(const struct svd_route *rt, size_t k, size_t n,
	    double lmax);

/*
 * An upper bound on the relative SNR error |SNR̂ − SNR| / SNR of the k
 * descending float values sv of a rows × cols matrix, when each came from
 * an eigenvalue within delta of the true sᵢ² and was rounded to float; 0
 * when exact, +inf when the edge rules may differ or nothing bounds it.
 * Pure. docs/snr-error-bound.md derives it.
 */
double	svd_snr_bound(const float *sv, size_t k, size_t rows, size_t cols,
	    double delta);

/*
 * Writes the singular values √max(λ, 0), descending, of the k ascending
 * eigenvalues w (double when dbl, else float) into sv. Returns SPD_OK, or
 * SPD_EINTERNAL when the solver returned a NaN. In svd.c.
 */
enum spd_err	svd_from_eigen(const void *w, bool dbl, size_t k, float *sv,
		    const char *solver, struct spd_errbuf *eb);

/*
 * A matrix's Gram matrix by panels of its longer side, for a backend that
 * stages the matrix (cuda). The row-major rows × cols matrix W is read as
 * column-major, as BLAS does: trans false (rows ≥ cols): A = Wᵀ is k × len
 * (k = cols), G = A·Aᵀ = WᵀW, and the panel [j0, j0 + n) is rows j0.. of
 * W, contiguous, column-major k × n with ld k. trans true (rows < cols):
 * A is len × k (k = rows, ld cols), G = Aᵀ·A = W·Wᵀ, and the panel is
 * columns j0.. of W, packed column-major n × k with ld n. Either way the
 * panel adds syrk(op = trans ? T : N, n = k, kdim = n, lda = trans ? n : k)
 * to G. Pure; tests/test_svd_panel.c checks the geometry against cblas.
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

extern const struct svd_backend svd_cpu_backend;
#ifdef HAVE_CUDA
extern const struct svd_backend svd_cuda_backend;
int	svd_cuda_count(void);
#endif

#endif
