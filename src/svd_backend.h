/*
 * svd_backend.h (private to svd*.c): the vtable each compute backend fills.
 * svd.c picks a backend and owns the shared logic.
 */
#ifndef SPECTRUMD_SVD_BACKEND_H
#define SPECTRUMD_SVD_BACKEND_H

#include <stdbool.h>

#include "spectrumd/svd.h"

struct svd_backend {
	const char	*name;
	/* SPD_OK when usable on this host, else SPD_ENODEV and eb says why. */
	enum spd_err	(*probe)(struct spd_errbuf *eb);
	enum spd_err	(*ctx_new)(const struct svd_opts *o, void **ctx,
			    struct spd_errbuf *eb);
	void		(*ctx_free)(void *ctx);
	/*
	 * The min(rows, cols) singular values of m into sv, descending, by
	 * the backend's fast float32-Gram route (dbl false) or in float64.
	 * Errors as svd_values(), plus SPD_EUNSUPPORTED when the route cannot
	 * take m (finite values whose squares overflow it, or no fast route
	 * for m's dtype): svd.c then takes the float64 route.
	 */
	enum spd_err	(*values)(void *ctx, const struct svd_matrix *m,
			    bool dbl, float *sv, struct spd_errbuf *eb);
};

/*
 * True when the float32-route values sv (k of them, descending, finite) of a
 * rows × cols matrix may miss the SNR by more than its 1e-5 budget, so
 * svd_values() redoes the matrix in float64 (DESIGN.md §6). Pure.
 */
bool	svd_need_f64(const float *sv, size_t k, size_t rows, size_t cols);

/*
 * Writes the singular values √max(λ, 0), descending, of the k ascending
 * eigenvalues w (double when dbl, else float) into sv. Returns SPD_OK, or
 * SPD_EINTERNAL when the solver returned a NaN. In svd.c.
 */
enum spd_err	svd_from_eigen(const void *w, bool dbl, size_t k, float *sv,
		    const char *solver, struct spd_errbuf *eb);

extern const struct svd_backend svd_cpu_backend;
#ifdef HAVE_CUDA
extern const struct svd_backend svd_cuda_backend;
int	svd_cuda_count(void);
#endif

#endif
